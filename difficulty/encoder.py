"""The difficulty features of a contrastive encoder (SimCLR, MoCo, BYOL; docs/difficulty.md).

An encoder gives features, not class logits, so a classifier's loss, logit margin and
Stein score do not exist for it. :class:`EncoderFeatures` is the
:class:`~unlearn_audit.difficulty.rows.FeatureSet` the ``contrastive`` paradigm supplies
instead, all on the representation ``h`` (the input of the projection head) or the
projection ``z`` the encoder was trained on:

* ``memorization`` and ``lira`` from the shadow bank (:mod:`unlearn_audit.difficulty.rows`),
  of the paradigm's membership signal as it is (Feldman & Zhang, NeurIPS 2020, eq. 1;
  their statistic is correctness, any per-sample statistic works);
* ``alignment``: EncoderMI's mean pairwise cosine similarity of the projections of
  augmented views (Liu, Jia, Qu & Gong, ACM CCS 2021, Sec. 4.2): an encoder that trained
  on a sample maps its views closer together, the encoder's counterpart of a
  classifier's confidence;
* ``grad_norm``: the norm of the per-sample gradient of the encoder's own training loss
  (NT-Xent against fixed negatives, or BYOL's), the factor Rizwan et al. (arXiv
  2410.03043) study as a parameter-gradient norm;
* ``entanglement``: Zhao et al. (NeurIPS 2024, Sec. 4.1), per sample, in ``h`` (L2
  normalised, so distances follow the cosine similarity the encoder was trained on);
* ``knn_margin``: the weighted-kNN vote share of the true class minus that of the best
  other class among the retained samples (Wu et al. 2018's kNN monitor,
  :func:`~unlearn_audit.learning.probe.knn_votes`): the dataset's labels, which the
  encoder never saw, read off its representation;
* ``density``: the mean cosine similarity to the ``k`` nearest pool samples (a sample
  in a dense region is fitted by models that never saw it).

Every random draw comes from a fixed seed (:data:`ALIGNMENT_SEED`, :data:`GRAD_SEED`,
:data:`NEGATIVE_SEED`): every model is asked about the same negatives, and about the
same views of a sample for ``alignment``; ``grad_norm``'s views are drawn per chunk of
the samples described, so a sample's two views there differ between its audited row
and its shadow rows (augmentation noise, the same distribution in both).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.difficulty.features import entanglement
from unlearn_audit.difficulty.rows import BANK_FEATURES, ENTANGLEMENT_K, PoolData, grad_chunk
from unlearn_audit.learning.contrastive import representation
from unlearn_audit.learning.probe import encodermi_similarity, features, knn_votes, query_features
from unlearn_audit.learning.train import Objective, make_generator
from unlearn_audit.learning.views import ViewAugment
from unlearn_audit.unlearners.gradient_constraint import encoder_grad_norms

#: Feature names, in the order of the ``feature.<name>`` columns and the index.
ENCODER_FEATURES = (
    *BANK_FEATURES,
    "alignment",
    "grad_norm",
    "entanglement",
    "knn_margin",
    "density",
)
#: Seeds of the views ``alignment`` and ``grad_norm`` query, and of the fixed negatives.
ALIGNMENT_SEED = 31_415
GRAD_SEED = 27_182
NEGATIVE_SEED = 16_180
#: Temperature of the kNN votes (Wu et al. 2018; the utility's kNN uses the same).
KNN_TEMPERATURE = 0.1
#: Queries per block of the density's similarity matrix.
BLOCK = 1024


def alignment(
    model: nn.Module,
    x: torch.Tensor,
    rows: np.ndarray,
    augment: ViewAugment,
    views: int,
    seed: int,
) -> np.ndarray:
    """EncoderMI's alignment of images ``x[rows]``: ``2/(A(A-1)) Σ_{a<b} cos(z_a, z_b)``.

    ``z_1..z_A`` are the projections of ``A = views`` augmentations drawn from ``seed``
    for the whole of ``x`` (:func:`~unlearn_audit.learning.probe.query_features` with
    ``rows``: a sample gets the same views from every model, whichever other samples are
    described with it; Liu et al. 2021, Sec. 4.2,
    :func:`~unlearn_audit.learning.probe.encodermi_similarity`).

    Returns:
        ``(len(rows),)`` float64 in ``[-1, 1]``.
    """
    feats = query_features(model, x, augment, views, seed, rows=torch.as_tensor(rows))
    return encodermi_similarity(feats).double().cpu().numpy()


def knn_margin(
    query: torch.Tensor,
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    k: int,
    temperature: float = KNN_TEMPERATURE,
) -> np.ndarray:
    """Weighted-kNN vote share of the true class minus that of the best other class.

    With the class scores ``w_c = Σ_{j ∈ N_k, y_j = c} exp(s_j / T)`` of
    :func:`~unlearn_audit.learning.probe.knn_votes` (Wu et al. 2018, eq. 7: the ``k``
    bank features of largest cosine similarity ``s_j``),

        ``margin_i = (w_{y_i} - max_{c ≠ y_i} w_c) / Σ_c w_c``  in ``[-1, 1]``:

    1 when every neighbour carries the sample's label, -1 when all carry one other.

    Args:
        query: ``(q, d)`` features of the described samples, labels ``labels`` ``(q,)``.
        bank: ``(b, d)`` features of the retained samples, labels ``bank_labels``.
        num_classes: Number of classes.
        k: Neighbours (clipped to the bank size).
        temperature: ``T`` of the votes.

    Returns:
        ``(q,)`` float64; NaN when the bank is empty.
    """
    if bank.shape[0] == 0:
        return np.full(query.shape[0], np.nan)
    votes = knn_votes(query, bank, bank_labels, num_classes, k=k, temperature=temperature)
    share = votes.double() / votes.double().sum(1, keepdim=True)
    y = labels.to(share.device).long()[:, None]
    true = share.gather(1, y)[:, 0]
    other = share.scatter(1, y, float("-inf")).max(1).values
    return (true - other).cpu().numpy()


def local_density(query: torch.Tensor, pool: torch.Tensor, own: torch.Tensor, k: int) -> np.ndarray:
    """Mean cosine similarity of each query to its ``k`` most similar pool samples.

    Args:
        query: ``(q, d)`` features.
        pool: ``(n, d)`` features of the whole pool.
        own: ``(q,)`` row of each query in ``pool`` (left out: a sample is not its own
            neighbour).
        k: Neighbours (clipped to ``n - 1``).

    Returns:
        ``(q,)`` float64 in ``[-1, 1]``; NaN when the pool has no other sample.
    """
    kk = min(k, pool.shape[0] - 1)
    if kk < 1:
        return np.full(query.shape[0], np.nan)
    qn, pn = F.normalize(query.double(), dim=1), F.normalize(pool.double(), dim=1)
    out = []
    for s in range(0, query.shape[0], BLOCK):
        sim = qn[s : s + BLOCK] @ pn.T
        rows = torch.arange(sim.shape[0], device=sim.device)
        sim[rows, own[s : s + BLOCK].to(sim.device)] = float("-inf")
        out.append(sim.topk(kk, dim=1).values.mean(1).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)


def encoder_grad_norm(
    model: nn.Module,
    x: torch.Tensor,
    objective: Objective,
    negatives: torch.Tensor,
    *,
    seed: int = GRAD_SEED,
    batch_size: int = 256,
) -> np.ndarray:
    """``‖∇_θ ℓ_i‖₂`` of each sample's own training loss, over every trainable parameter.

    ``ℓ_i`` is NT-Xent of the sample's two views against the two views of the fixed
    ``negatives`` (SimCLR, MoCo: as many negatives as a training batch gives), or its
    symmetrised BYOL loss (:func:`~unlearn_audit.unlearners.gradient_constraint.encoder_grad_norms`,
    which ``gradient_constraint`` uses). Eval mode, so the samples of a chunk do not
    interact; chunk ``c`` draws its views from a generator seeded ``seed + c``.

    Returns:
        ``(n,)`` float64.
    """
    norms = encoder_grad_norms(objective, "all", negatives)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.enable_grad():
            for c, s in enumerate(range(0, x.shape[0], batch_size)):
                xb = x[s : s + batch_size].to(device)
                dummy = torch.zeros(xb.shape[0], dtype=torch.long, device=device)
                g = make_generator(seed + c, device)
                out.append(norms(model, xb, dummy, g, False).detach().double().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros(0)


@dataclass(frozen=True, eq=False)
class EncoderFeatures:
    """The seven features of an encoder (see the module docstring).

    Attributes:
        objective: The encoder's training objective (its views and its loss).
        augment: The view distribution ``alignment`` draws from.
        views: Views per sample of ``alignment``.
        k: Neighbours of ``knn_margin`` and ``density``.
        negatives: Fixed negative images of the NT-Xent ``grad_norm`` (a training batch
            has ``batch_size - 1``), drawn outside the audit's forget set.
    """

    objective: Objective
    augment: ViewAugment
    views: int = 10
    k: int = 20
    negatives: int = 127

    names = ENCODER_FEATURES
    tamed = ("grad_norm",)

    def confidence(self, signal: np.ndarray) -> np.ndarray:
        """The signal as it is (any membership signal of an encoder; no class confidence)."""
        return np.asarray(signal, dtype=np.float64)

    def negative_images(self, pool: PoolData) -> torch.Tensor:
        """``negatives`` pool images outside the forget set, drawn from :data:`NEGATIVE_SEED`."""
        outside = np.setdiff1d(np.arange(pool.x.shape[0]), pool.forget)
        chosen = np.random.default_rng(NEGATIVE_SEED).permutation(outside)[: self.negatives]
        return pool.x[torch.as_tensor(np.sort(chosen), device=pool.x.device)]

    def model_features(
        self, model: nn.Module, pool: PoolData, forget: np.ndarray, retain: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Alignment, gradient norm, entanglement, kNN margin and density of ``forget``.

        Args:
            model: A trained encoder (the original, or a shadow for its own rows).
            pool: The pool.
            forget: Pool indices of the samples to describe (that the model trained on).
            retain: Pool indices of the model's other training samples (entanglement and
                the kNN bank).
        """
        was_training = model.training
        try:
            h = F.normalize(features(model, pool.x, representation), dim=1)
            f = torch.as_tensor(forget, device=h.device)
            r = torch.as_tensor(retain, device=h.device)
            y = pool.y.to(h.device)
            xf = pool.x[torch.as_tensor(forget, device=pool.x.device)]
            return {
                "alignment": alignment(
                    model, pool.x, forget, self.augment, self.views, ALIGNMENT_SEED
                ),
                "grad_norm": encoder_grad_norm(
                    model,
                    xf,
                    self.objective,
                    self.negative_images(pool),
                    batch_size=grad_chunk(model),
                ),
                "entanglement": entanglement(
                    h.double().cpu().numpy(), pool.labels, forget, retain, k=ENTANGLEMENT_K
                ),
                "knn_margin": knn_margin(
                    h[f], h[r], y[r], y[f], int(pool.labels.max()) + 1, self.k
                ),
                "density": local_density(h[f], h, f, self.k),
            }
        finally:
            model.train(was_training)
