"""Per-sample unlearning-difficulty features and the realised outcome they predict.

Every feature is computed once, from the original model and the shadow bank, for
each forget sample; higher always means *harder to forget* except where noted
(``margin``: higher = fitted more confidently, which the papers also link to
difficulty; its sign is learned by the index, see :mod:`unlearn_audit.difficulty.index`).

Sources:

* Memorization: Feldman & Zhang, "What Neural Networks Memorize and Why",
  NeurIPS 2020 (eq. 1, subsampled estimator); used as an unlearning-difficulty
  factor by Zhao, Triantafillou et al., "What makes unlearning hard and what to
  do about it", NeurIPS 2024.
* Entanglement: Zhao et al. 2024 (Sec. 4.1) measure how entangled the forget
  and retain sets are in embedding space; here a per-sample nearest-neighbour
  version (see :func:`entanglement`).
* Loss, margin, parameter-gradient norm and the Stein self-score: factors
  studied by Rizwan, Sarvmaili, Sajjad & Wu, "Towards Understanding the
  Feasibility of Machine Unlearning" (arXiv 2410.03043, v2 "Instance-Level
  Difficulty: A Missing Perspective in Machine Unlearning"), who propose a
  kernelized-Stein-discrepancy (KSD) based heuristic; the KSD itself is from
  Liu, Lee & Jordan, "A Kernelized Stein Discrepancy for Goodness-of-fit
  Tests", ICML 2016.
* Outcome: the unlearned model's signal placed within the never-trained (OUT)
  shadow distribution (:func:`residual_from_bank`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial.distance import cdist
from scipy.special import logsumexp
from torch import nn
from torch.func import functional_call, grad, vmap

__all__ = [
    "entanglement",
    "grad_norms",
    "loss_and_margin",
    "memorization",
    "residual_from_bank",
    "stein_self_score",
]


def memorization(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Feldman-Zhang memorization from a shadow bank: ``mean_IN - mean_OUT``.

    Feldman & Zhang (2020), eq. 1 with their subsampling estimator:
    ``mem(i) = E_{S∋i}[M_S(x_i)] - E_{S∌i}[M_S(x_i)]`` where ``M_S`` is the
    statistic of a model trained on ``S``. The paper uses correctness
    ``1[h_S(x_i) = y_i]``; any per-sample statistic works (true-class
    confidence, the logit-scaled signal), so this function takes it as given.
    The shadow bank's keep matrix plays the role of the random subsets.

    Args:
        values: ``(m, n)`` statistic of each shadow on each sample (0/1
            correctness, true-class confidence or signal).
        keep: ``(m, n)`` boolean, ``keep[j, i]`` = shadow ``j`` trained on ``i``.

    Returns:
        ``(n,)`` float64 memorization; 1 for a sample only ever fitted when IN
        (with correctness), 0 for one fitted (or missed) regardless.

    Raises:
        ValueError: Shapes differ, ``keep`` is not boolean, or a sample has no
            IN or no OUT shadow.
    """
    v = np.asarray(values, dtype=np.float64)
    k = np.asarray(keep)
    if k.dtype != np.bool_ or k.shape != v.shape or v.ndim != 2:
        raise ValueError(
            f"need values (m, n) and boolean keep of the same shape, "
            f"got {v.shape} and {k.dtype} {k.shape}"
        )
    n_in, n_out = k.sum(0), (~k).sum(0)
    if (n_in == 0).any() or (n_out == 0).any():
        raise ValueError("every sample needs at least one IN and one OUT shadow")
    return np.where(k, v, 0.0).sum(0) / n_in - np.where(k, 0.0, v).sum(0) / n_out


def loss_and_margin(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cross-entropy loss and logit margin of each sample.

    ``loss_i = logsumexp_c z_ic - z_{i,y_i}`` and
    ``margin_i = z_{i,y_i} - max_{c != y_i} z_ic`` (positive = correctly
    classified; Rizwan et al. study loss/confidence-type factors).

    Args:
        logits: ``(n, C)`` logits of the original model (identity view).
        labels: ``(n,)`` integer labels.

    Returns:
        ``(loss, margin)``, each ``(n,)`` float64.
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if z.ndim != 2 or y.shape != (z.shape[0],) or z.shape[1] < 2:
        raise ValueError(f"need logits (n, C>=2) and labels (n,), got {z.shape}, {y.shape}")
    rows = np.arange(z.shape[0])
    true = z[rows, y]
    others = z.copy()
    others[rows, y] = -np.inf
    return logsumexp(z, axis=1) - true, true - others.max(1)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Trainable parameters (frozen ones stay the module's own in ``functional_call``)."""
    return {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}


def grad_norms(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 256
) -> np.ndarray:
    """Per-sample L2 norm of the cross-entropy gradient w.r.t. all parameters.

    ``g_i = || ∇_θ ℓ(f_θ(x_i), y_i) ||_2`` over the concatenation of every
    trainable parameter, computed with ``torch.func``: ``vmap`` over ``grad``
    of a ``functional_call`` on one sample. The model is evaluated in
    ``eval()`` mode (batch-norm uses running statistics, dropout is off), so
    each sample's gradient does not depend on the others in its batch; the
    model's mode is restored afterwards.

    Args:
        model: The original model (logits out).
        x: ``(n, ...)`` inputs.
        y: ``(n,)`` labels.
        batch_size: Samples per vmapped chunk.

    Returns:
        ``(n,)`` float64 gradient norms.
    """
    params = _state(model)
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    device = next(model.parameters()).device

    def loss(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return F.cross_entropy(out, yi.unsqueeze(0))

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))
    was_training = model.training
    model.eval()
    out = []
    try:
        for s in range(0, x.shape[0], batch_size):
            xb, yb = x[s : s + batch_size].to(device), y[s : s + batch_size].to(device)
            g = per_sample(params, xb, yb)
            sq = sum(t.flatten(1).double().pow(2).sum(1) for t in g.values())
            out.append(torch.as_tensor(sq).sqrt().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros(0)


def _input_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``∇_x log p(y|x)`` per sample, ``(n, d)`` float64 (eval mode: samples independent)."""
    xi = x.detach().clone().requires_grad_(True)
    logp = F.log_softmax(model(xi), dim=1).gather(1, y.unsqueeze(1)).sum()
    (g,) = torch.autograd.grad(logp, xi)
    return g.flatten(1).double()


def stein_self_score(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    bandwidth: float | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Stein-kernel self term ``u_p(x, x)`` with the model's class-conditional score.

    The Stein kernel of Liu, Lee & Jordan (ICML 2016, eq. for ``u_q(x, x')``)
    for a score function ``s`` and base kernel ``k`` is
    ``u(x,x') = s(x)ᵀ k(x,x') s(x') + s(x)ᵀ ∇_{x'}k + ∇_x kᵀ s(x') + tr(∇_x ∇_{x'} k)``.
    With the RBF kernel ``k(x,x') = exp(-||x-x'||² / (2h²))`` and ``x' = x``:
    ``k = 1``, both gradient terms vanish and ``tr(∇_x ∇_{x'} k) = d / h²``, so

        ``u(x, x) = ||s(x)||² + d / h²``,

    the per-sample diagonal of the KSD Gram matrix. Rizwan et al. (arXiv
    2410.03043) use a model-parameterised KSD as a difficulty heuristic; we
    choose (their paper leaves the density open for a discriminative model)
    the score of the *label-conditional* model likelihood,
    ``s(x) = ∇_x log p_θ(y | x)``, with ``y`` the sample's label and ``x``
    flattened to ``d`` dimensions. We compute the self term only (no pairwise
    sum over samples), so the value is exact, not approximated.

    Bandwidth: ``h`` defaults to the median pairwise Euclidean distance of the
    given inputs (the median heuristic of Liu et al.); ``d / h²`` is the same
    constant for every sample, so the ranking depends on ``||s(x)||²`` only.

    Args:
        model: The original model (logits out), evaluated in ``eval()`` mode.
        x: ``(n, ...)`` inputs.
        y: ``(n,)`` labels.
        bandwidth: RBF bandwidth ``h > 0`` (None = median heuristic).
        batch_size: Samples per backward pass.

    Returns:
        ``(n,)`` float64 self-scores.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    sq = []
    try:
        for s in range(0, x.shape[0], batch_size):
            xb, yb = x[s : s + batch_size].to(device), y[s : s + batch_size].to(device)
            g = _input_scores(model, xb, yb)
            sq.append(g.pow(2).sum(1).cpu())
    finally:
        model.train(was_training)
    if not sq:
        return np.zeros(0)
    flat = x.detach().flatten(1).double().cpu().numpy()
    h = bandwidth if bandwidth is not None else _median_distance(flat)
    if not h > 0:
        raise ValueError(f"bandwidth must be > 0, got {h}")
    return torch.cat(sq).numpy() + flat.shape[1] / h**2


def _median_distance(flat: np.ndarray) -> float:
    """Median pairwise Euclidean distance (1.0 when fewer than 2 distinct points)."""
    d = cdist(flat, flat)[np.triu_indices(flat.shape[0], 1)]
    med = float(np.median(d)) if d.size else 0.0
    return med if med > 0 else 1.0


def _knn_mean(dist: np.ndarray, k: int) -> np.ndarray:
    """Mean of the ``k`` smallest finite entries per row (fewer if fewer; inf if none)."""
    if dist.shape[1] == 0:
        return np.full(dist.shape[0], np.inf)
    kk = min(k, dist.shape[1])
    part = np.partition(dist, kk - 1, axis=1)[:, :kk]
    ok = np.isfinite(part)
    n = ok.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(ok, part, 0.0).sum(1) / n, np.inf)


def entanglement(
    features: np.ndarray,
    labels: np.ndarray,
    forget_idx: np.ndarray,
    retain_idx: np.ndarray,
    *,
    k: int = 5,
) -> np.ndarray:
    """Per-sample entanglement of each forget sample with the retain set.

    Zhao et al. (NeurIPS 2024, Sec. 4.1) call forget and retain sets entangled
    when they are close in the model's embedding space (their score is a ratio
    of within- to between-set variance of whole sets). We choose a per-sample
    nearest-neighbour form: with ``a_i`` the mean Euclidean distance from
    forget sample ``i`` to its ``k`` nearest *same-class* retain samples and
    ``b_i`` the mean distance to its ``k`` nearest *other-class* retain samples,

        ``ent_i = b_i / (a_i + b_i)``  in ``[0, 1]``.

    This is a monotone transform of the ratio ``a_i / b_i`` (``1 / (1 + a/b)``)
    with higher = more entangled; it is 1 exactly when the ``k`` same-class
    neighbours coincide with the sample (a duplicate, with ``k = 1``), 0.5 when
    both classes are equally near, and 0 when the class has no retain sample
    (whole-class forgetting, also when no retain sample exists). Both distances
    0 give 0.5; no other-class retain sample gives 1.

    Args:
        features: ``(n, d)`` representations (e.g. penultimate-layer features of
            the original model) of the whole pool.
        labels: ``(n,)`` labels of the pool.
        forget_idx: Pool indices of the forget samples.
        retain_idx: Pool indices of the retain samples.
        k: Neighbours per side (fewer when fewer exist).

    Returns:
        ``(len(forget_idx),)`` float64 entanglement.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    z = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    lab = np.asarray(labels)
    f, r = np.asarray(forget_idx, dtype=np.int64), np.asarray(retain_idx, dtype=np.int64)
    out = np.empty(f.size)
    for s in range(0, f.size, 1024):
        fs = f[s : s + 1024]
        dist = cdist(z[fs], z[r])
        same = lab[fs][:, None] == lab[r][None, :]
        a = _knn_mean(np.where(same, dist, np.inf), k)
        b = _knn_mean(np.where(same, np.inf, dist), k)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = b / (a + b)
        out[s : s + 1024] = np.select(
            [np.isinf(a), np.isinf(b), a + b == 0], [0.0, 1.0, 0.5], default=ratio
        )
    return out


def residual_from_bank(
    target: np.ndarray, bank: np.ndarray, out_mask: np.ndarray | None = None
) -> np.ndarray:
    """Position of a model's signal within the never-trained (OUT) shadow distribution.

    ``r_i = (#{j: o_ji < t_i} + ½ #{j: o_ji = t_i}) / #{j}`` over the OUT shadows
    ``j`` of sample ``i`` (a mid-rank empirical CDF; ties count half, our
    choice). ``0.5`` is typical of retraining; near 1 the unlearned model still
    fits the sample better than any model that never saw it (residual
    membership). The U-LiRA ratio of :mod:`unlearn_audit.audit.forgetting` is an alternative
    outcome on another scale.

    Args:
        target: ``(k,)`` signal of the audited (unlearned) model per sample.
        bank: ``(m, k)`` shadow signals on the same samples.
        out_mask: ``(m, k)`` boolean, True where shadow ``j`` never trained on
            sample ``i`` (None = every row is OUT).

    Returns:
        ``(k,)`` float64 in ``[0, 1]``; NaN where a sample has no OUT shadow.
    """
    t = np.asarray(target, dtype=np.float64)
    o = np.asarray(bank, dtype=np.float64)
    mask = np.ones(o.shape, bool) if out_mask is None else np.asarray(out_mask, bool)
    if o.ndim != 2 or o.shape[1:] != t.shape or mask.shape != o.shape:
        raise ValueError(f"need target (k,), bank and mask (m, k); got {t.shape}, {o.shape}")
    below = ((o < t) & mask).sum(0) + 0.5 * ((o == t) & mask).sum(0)
    n = mask.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, below / n, np.nan)
