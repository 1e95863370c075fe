"""Evaluating an encoder: features, linear probe, weighted kNN and EncoderMI's signal.

* :func:`features` computes an encoder's representation (or projection) of a
  set of images in batches.
* :class:`LinearProbe` is multinomial logistic regression on standardised
  frozen features (the linear evaluation protocol of SimCLR, Sec. 4),
  fitted full-batch with L-BFGS from zero, so it is deterministic.
* :func:`knn_predict` is the weighted k-nearest-neighbour classifier of Wu,
  Xiong, Yu & Lin 2018 ("Unsupervised Feature Learning via Non-Parametric
  Instance Discrimination", CVPR, Sec. 3.4), the monitor of the MoCo/SimCLR
  reference code.
* :func:`query_features` projects seeded augmented views of every image, the same
  images for every model asked (the queries of the membership signals and of the
  difficulty features of an encoder).
* :func:`encodermi_similarity` is the membership feature of EncoderMI (Liu, Jia,
  Qu & Gong 2021, "EncoderMI: Membership Inference against Pre-trained
  Encoders in Contrastive Learning", ACM CCS, Sec. 4): an encoder trained on a
  sample maps its augmented views to more similar features.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_audit.learning.contrastive import representation
from unlearn_audit.learning.views import ViewAugment

FeatureFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]
QUERY_CHUNK = 256  # images per chunk of query views; part of the query seed schedule


def projection(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The encoder's output ``z = g(f(x))`` (the projection the loss was computed on)."""
    with torch.no_grad():
        return model(x).flatten(1)


@torch.no_grad()
def features(
    model: nn.Module, x: torch.Tensor, which: FeatureFn = representation, batch_size: int = 1024
) -> torch.Tensor:
    """``which(model, batch)`` over ``x`` in eval mode, float32 ``(n, d)`` on ``x``'s device."""
    model.eval()
    device = next(model.parameters()).device
    out = [
        which(model, x[s : s + batch_size].to(device)).float().to(x.device)
        for s in range(0, x.shape[0], batch_size)
    ]
    return torch.cat(out) if out else torch.zeros(0, 0, device=x.device)


def query_features(
    model: nn.Module,
    x: torch.Tensor,
    augment: ViewAugment,
    n_aug: int,
    seed: int,
    chunk: int = QUERY_CHUNK,
    rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """Projections ``(n, n_aug, d)`` (on ``x``'s device) of ``n_aug`` seeded views of each image.

    Chunk ``k`` of ``chunk`` images draws its views from a generator seeded
    with ``seed + k``, so the query images depend on ``seed`` and the data only:
    every model is asked about the very same images.

    With ``rows`` (indices into ``x``, each at most once), only those images are
    projected, ``(len(rows), n_aug, d)`` in the order of ``rows``, each with exactly
    the views a call on the whole of ``x`` gives it (a chunk's parameters are all
    drawn, the rows' are applied): a sample's views do not depend on which others
    are asked about.
    """
    out = []
    shape = tuple(x.shape[1:])
    want = None if rows is None else torch.as_tensor(rows, dtype=torch.long).cpu()
    got = []
    for k, start in enumerate(range(0, x.shape[0], chunk)):
        xb = x[start : start + chunk]
        if want is not None:
            local = want[(want >= start) & (want < start + xb.shape[0])] - start
            if local.numel() == 0:
                continue
        gen = torch.Generator().manual_seed(seed + k)
        params = augment.draw(xb.shape[0] * n_aug, gen, shape)
        if want is not None:
            params = params.take((local[:, None] * n_aug + torch.arange(n_aug)).flatten())
            xb = xb[local.to(x.device)]
            got.append(local + start)
        views = augment.apply(xb.repeat_interleave(n_aug, 0), params)
        out.append(features(model, views, projection).reshape(xb.shape[0], n_aug, -1))
    if want is None:
        return torch.cat(out)
    if not out:
        return torch.zeros(0, n_aug, 0, device=x.device)
    order = torch.cat(got)  # pool rows of the result, chunk by chunk
    by_row = torch.argsort(order)
    where = by_row[torch.searchsorted(order[by_row], want)]
    return torch.cat(out)[where.to(x.device)]


@dataclass(frozen=True)
class LinearProbe:
    """A linear classifier on standardised features: ``logits = ((h - mu) / sd) W^T + b``."""

    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor

    @classmethod
    def fit(
        cls,
        h: torch.Tensor,
        y: torch.Tensor,
        num_classes: int,
        l2: float = 1e-3,
        steps: int = 100,
    ) -> LinearProbe:
        """Minimise mean cross-entropy + ``l2/2 * ||W||^2`` with L-BFGS from zero weights."""
        h = h.float()
        mean, std = h.mean(0), h.std(0, unbiased=False).clamp_min(1e-6)
        hs = (h - mean) / std
        w = torch.zeros(num_classes, h.shape[1], device=h.device, requires_grad=True)
        b = torch.zeros(num_classes, device=h.device, requires_grad=True)
        opt = torch.optim.LBFGS(
            [w, b], lr=1.0, max_iter=steps, history_size=10, line_search_fn="strong_wolfe"
        )

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = F.cross_entropy(hs @ w.T + b, y) + 0.5 * l2 * (w * w).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(closure)
        return cls(mean, std, w.detach(), b.detach())

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return ((h.float() - self.mean) / self.std) @ self.weight.T + self.bias

    def accuracy(self, h: torch.Tensor, y: torch.Tensor) -> float:
        """Top-1 accuracy; NaN for an empty set."""
        if h.shape[0] == 0:
            return float("nan")
        return float((self.logits(h).argmax(1) == y).float().mean())


def knn_votes(
    query: torch.Tensor,
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.1,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted kNN class scores ``(q, num_classes)`` of ``query`` against a feature ``bank``.

    Wu et al. 2018, eq. 7: with cosine similarities ``s_j`` of a query to its ``k``
    most similar bank features ``N_k``, the score of class ``c`` is
    ``w_c = sum_{j in N_k, y_j = c} exp(s_j / T)``.

    Args:
        query: ``(q, d)`` features.
        bank: ``(b, d)`` features with labels ``bank_labels`` ``(b,)``.
        num_classes: Number of classes.
        k: Neighbours (clipped to the bank size).
        temperature: ``T`` of the vote weights.
        exclude: Optional ``(q,)`` bank row of each query to leave out (``-1``: none), e.g.
            the query itself when it is also in the bank (leave-one-out).
    """
    qn, bn = F.normalize(query.float(), dim=1), F.normalize(bank.float(), dim=1)
    sim = qn @ bn.T
    if exclude is not None:
        rows = torch.nonzero(exclude >= 0).flatten()
        sim[rows, exclude[rows]] = float("-inf")
    k = min(k, bank.shape[0] - (1 if exclude is not None else 0))
    top, idx = sim.topk(k, dim=1)
    weights = torch.where(torch.isfinite(top), (top / temperature).exp(), torch.zeros_like(top))
    votes = torch.zeros(query.shape[0], num_classes, device=query.device)
    votes.scatter_add_(1, bank_labels[idx], weights)
    return votes


def knn_predict(
    query: torch.Tensor,
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.1,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted kNN labels: ``argmax_c`` of :func:`knn_votes` (ties: the smaller class index).

    The arguments are those of :func:`knn_votes` (Wu et al. 2018, eq. 7).
    """
    return knn_votes(query, bank, bank_labels, num_classes, k, temperature, exclude).argmax(1)


def encodermi_similarity(feats: torch.Tensor) -> torch.Tensor:
    """Mean pairwise cosine similarity of each sample's ``A`` view features.

    EncoderMI (Liu et al. 2021, Sec. 4.2, its threshold-based variant
    EncoderMI-T): for a sample's features ``h_1..h_A`` of ``A`` augmented views,

        s = 2 / (A (A - 1)) sum_{a < b} cos(h_a, h_b).

    Computed as ``(||sum_a u_a||^2 - sum_a ||u_a||^2) / (A (A - 1))`` with
    ``u_a = h_a / ||h_a||`` (a zero feature vector counts as similarity 0).

    Args:
        feats: ``(n, A, d)`` features, ``A >= 2``.

    Returns:
        ``(n,)`` similarities in ``[-1, 1]`` (members score higher).
    """
    a = feats.shape[1]
    if a < 2:
        raise ValueError(f"EncoderMI needs at least 2 views per sample, got {a}")
    u = F.normalize(feats.double(), dim=2, eps=1e-12)
    total = u.sum(1)
    s = ((total * total).sum(1) - (u * u).sum((1, 2))) / (a * (a - 1))
    return s.clamp(-1.0, 1.0).float()


def instance_logit(
    feats: torch.Tensor,
    bank: torch.Tensor,
    own: torch.Tensor,
    temperature: float,
    chunk: int = 256,
) -> torch.Tensor:
    """Logit-scaled confidence of instance discrimination, per sample.

    Contrastive learning trains an instance classifier (Wu et al. 2018; Chen et
    al. 2020, eq. 1): given view ``a`` of sample ``i``, pick its other view ``b``
    among the other samples. With cosine similarities ``s``, temperature ``T``
    and a fixed bank of other samples' features ``u_j`` (``j != i``),

        p_ab = exp(s(v_a, v_b) / T) / (exp(s(v_a, v_b) / T) + sum_j exp(s(v_a, u_j) / T)),
        phi  = mean_{a != b} log(p_ab / (1 - p_ab))
             = mean_{a != b} s(v_a, v_b) / T - mean_a logsumexp_j s(v_a, u_j) / T,

    the analogue of the logit-scaled confidence of Carlini et al. (2022) for a
    classifier: members are told apart from other samples more confidently.

    Args:
        feats: ``(n, A, d)`` features of ``A >= 2`` views per sample.
        bank: ``(m, d)`` features of the negatives.
        own: ``(n,)`` bank row of each sample itself (left out), ``-1`` if not in the bank.
        temperature: ``T``.
        chunk: Samples per block of the computation (float64, on ``feats``' device).
    """
    a = feats.shape[1]
    b = F.normalize(bank.double(), dim=1)
    out = []
    for start in range(0, feats.shape[0], chunk):  # bounded memory: (chunk, A, m)
        u = F.normalize(feats[start : start + chunk].double(), dim=2)
        total = u.sum(1)
        pos = ((total * total).sum(1) - (u * u).sum((1, 2))) / (a * (a - 1)) / temperature
        neg = torch.einsum("nad,md->nam", u, b) / temperature
        o = own[start : start + chunk].to(u.device)
        rows = torch.nonzero(o >= 0).flatten()
        neg[rows, :, o[rows]] = float("-inf")
        out.append((pos - torch.logsumexp(neg, dim=2).mean(1)).float())
    return torch.cat(out)
