"""Population (shadow-free) attacks on full prediction vectors, and the SVC "MIA-Efficacy".

These attacks threshold one statistic of the audited model's output on a
sample; no shadow model is needed. They take the full output vector (logits,
or probabilities with ``from_probs=True``) of shape ``(n, C)`` or ``(n, A, C)``
(A augmented queries, whose scores are averaged) and the labels ``(n,)``.
Higher score = more likely a member, as everywhere in :mod:`attacks`.

* confidence: ``p_y`` (Salem et al., NDSS 2019; Song & Mittal, USENIX Security
  2021, Sec. 3). Rank-equivalent to the loss attack, but ``p_y`` saturates at
  1.0 in floating point for very confident models, where the loss does not.
* entropy: the negative prediction entropy ``sum_i p_i log p_i`` (Salem et al.
  2019; Song & Mittal 2021, eq. for ``I_entr``); members get sharper outputs.
* modified entropy (Song & Mittal, "Systematic Evaluation of Privacy Risks of
  Machine Learning Models", USENIX Security 2021, Sec. 3.2, eq. 7):

      Mentr(p, y) = -(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i),

  which, unlike the entropy, is monotone in the true-class probability and
  large for confidently *wrong* outputs. The score is ``-Mentr``. Song & Mittal
  threshold it per class; we return the continuous score and leave the
  threshold to the ROC analysis (per-class thresholds are our omission).

Everything runs in float64 on log-probabilities taken directly from the logits
(``log_softmax``), and ``log(1 - p_i)`` is evaluated without cancellation
(see :func:`_log1m_softmax`), so confident models do not produce ``log 0``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

__all__ = [
    "confidence_attack",
    "entropy_attack",
    "modified_entropy_attack",
    "svc_mia_efficacy",
]


def _prepare(outputs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate; return float64 ``(n, A, C)`` outputs and int ``(n, 1)`` labels."""
    z = np.asarray(outputs, dtype=np.float64)
    lab = np.asarray(labels)
    if z.ndim == 2:
        z = z[:, None, :]
    if z.ndim != 3 or z.shape[-1] < 2:
        raise ValueError(f"outputs must have shape (n, C) or (n, A, C) with C >= 2, got {z.shape}")
    if z.shape[1] == 0:
        raise ValueError("outputs have zero augmentations")
    if not np.issubdtype(lab.dtype, np.integer) or lab.shape != (z.shape[0],):
        raise ValueError(
            f"labels must be an integer array of shape ({z.shape[0]},), got {lab.dtype} {lab.shape}"
        )
    if lab.size and (lab.min() < 0 or lab.max() >= z.shape[-1]):
        raise ValueError(f"labels must lie in [0, {z.shape[-1]}), got [{lab.min()}, {lab.max()}]")
    if np.isnan(z).any():
        raise ValueError("outputs contain NaN values")
    return z, lab.astype(np.intp)[:, None]


def _log_probs(z: np.ndarray, from_probs: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(log p, log(1 - p))`` of shape ``(n, A, C)``."""
    if from_probs:
        if z.min() < 0.0 or z.max() > 1.0:
            raise ValueError("probabilities must lie in [0, 1]")
        with np.errstate(divide="ignore"):
            return np.log(z), np.log1p(-z)
    logp = z - logsumexp(z, axis=-1, keepdims=True)
    return logp, _log1m_softmax(z, logp)


def _log1m_softmax(z: np.ndarray, logp: np.ndarray) -> np.ndarray:
    """``log(1 - softmax(z))`` for every class, without cancellation.

    For classes with ``p_i <= 1/2`` (all but at most the arg-max),
    ``log1p(-p_i)`` is accurate. For the arg-max class, ``1 - p_i`` is the sum
    of the other probabilities: ``logsumexp_{j != i} z_j - logsumexp_j z_j``
    (the trick of :mod:`attacks.signals`), which stays exact when ``p_i -> 1``.
    """
    with np.errstate(divide="ignore"):
        out = np.log1p(-np.exp(logp))
    top = np.argmax(z, axis=-1)[..., None]
    others = z.copy()
    np.put_along_axis(others, top, -np.inf, axis=-1)
    lse_all = logsumexp(z, axis=-1, keepdims=True)
    top_val = logsumexp(others, axis=-1, keepdims=True) - lse_all
    np.put_along_axis(out, top, top_val, axis=-1)
    return out


def _xlogy(p_log: np.ndarray, y_log: np.ndarray) -> np.ndarray:
    """``p * y`` with ``p = exp(p_log)``, taking ``0 * (-inf) = 0``."""
    p = np.exp(p_log)
    with np.errstate(invalid="ignore"):
        return np.where(p > 0.0, p * y_log, 0.0)


def confidence_attack(
    outputs: np.ndarray, labels: np.ndarray, *, from_probs: bool = False
) -> np.ndarray:
    """True-class confidence ``p_y``; higher = more likely a member.

    Args:
        outputs: Logits (or probabilities if ``from_probs``), ``(n, C)`` or ``(n, A, C)``.
        labels: True classes ``(n,)``.
        from_probs: ``outputs`` are probabilities rather than logits.

    Returns:
        float64 ``(n,)``: ``p_y``, averaged over augmented queries.

    Raises:
        ValueError: On bad shapes, labels, NaN outputs or probabilities outside [0, 1].
    """
    z, lab = _prepare(outputs, labels)
    logp, _ = _log_probs(z, from_probs)
    p_y = np.exp(np.take_along_axis(logp, lab[:, :, None], axis=-1)[..., 0])
    return np.asarray(p_y.mean(axis=1), dtype=np.float64)


def entropy_attack(
    outputs: np.ndarray, labels: np.ndarray, *, from_probs: bool = False
) -> np.ndarray:
    """Negative prediction entropy ``sum_i p_i log p_i``; higher = more likely a member.

    ``labels`` are only validated (the entropy ignores the label); they are
    required so every population attack has the same signature.

    Returns:
        float64 ``(n,)``, averaged over augmented queries.
    """
    z, _ = _prepare(outputs, labels)
    logp, _ = _log_probs(z, from_probs)
    neg_h = _xlogy(logp, logp).sum(axis=-1)
    return np.asarray(neg_h.mean(axis=1), dtype=np.float64)


def modified_entropy_attack(
    outputs: np.ndarray, labels: np.ndarray, *, from_probs: bool = False
) -> np.ndarray:
    """Negative modified entropy ``-Mentr`` (Song & Mittal 2021, eq. 7); higher = member.

    ``Mentr = -(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i)``.

    Returns:
        float64 ``(n,)``, averaged over augmented queries. A label with
        ``p_y = 0`` exactly (only possible with ``from_probs``) gives ``-inf``.
    """
    z, lab = _prepare(outputs, labels)
    logp, log1m = _log_probs(z, from_probs)
    idx = lab[:, :, None]
    logp_y = np.take_along_axis(logp, idx, axis=-1)[..., 0]
    one_minus_py = np.exp(np.take_along_axis(log1m, idx, axis=-1)[..., 0])
    with np.errstate(invalid="ignore"):
        true_term = np.where(one_minus_py > 0.0, -one_minus_py * logp_y, 0.0)
    wrong = -_xlogy(logp, log1m)
    np.put_along_axis(wrong, idx, 0.0, axis=-1)
    mentr = true_term + wrong.sum(axis=-1)
    return np.asarray(-mentr.mean(axis=1), dtype=np.float64)


def _as_features(x: np.ndarray, name: str) -> np.ndarray:
    f = np.asarray(x, dtype=np.float64)
    if f.ndim == 1:
        f = f[:, None]
    if f.ndim != 2 or f.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n,) or (n, d) with n >= 1, got {np.shape(x)}")
    if not np.isfinite(f).all():
        raise ValueError(f"{name} contains non-finite values")
    return f


def svc_mia_efficacy(
    retain_feat: np.ndarray,
    nonmember_feat: np.ndarray,
    forget_feat: np.ndarray,
    seed: int = 0,
    *,
    max_per_class: int | None = None,
) -> float:
    """SVC "MIA-Efficacy": the share of forget samples an RBF SVC calls non-members.

    From Jia et al., "Model Sparsity Can Simplify Machine Unlearning"
    (NeurIPS 2023), also reported by SalUn (Fan et al., ICLR 2024).

    An RBF support-vector classifier (``C = 3``, ``gamma = 'auto'``, i.e.
    ``1 / n_features``) is fitted on features of retain samples (label 1,
    "member") against non-member samples (label 0); it then predicts the
    forget samples, and MIA-Efficacy is the share predicted **non-member**.
    Unlike the attack scores of this package, *higher means better
    forgetting* (retraining gives a high value, a model that forgot nothing a
    low one).

    The feature is the caller's choice: the authors' evaluation code computes
    the classifier on several features (correctness, true-class confidence,
    entropy, modified entropy, the probability vector) and the papers report
    the one on the true-class confidence ``p_y`` (:func:`confidence_attack`
    of the model under evaluation); an earlier version of their code used the
    prediction entropy. The authors balance the two training classes by
    taking as many retain samples as there are test samples; we draw a
    uniformly random subsample of the larger class (seeded) to the size of the
    smaller one instead, optionally capped by ``max_per_class`` (the SVC's
    cost grows quadratically).

    Args:
        retain_feat: Features of retain samples, ``(n_r,)`` or ``(n_r, d)``.
        nonmember_feat: Features of non-members, ``(n_t,)`` or ``(n_t, d)``.
        forget_feat: Features of forget samples, ``(n_f,)`` or ``(n_f, d)``.
        seed: Seed of the balancing subsample.
        max_per_class: Optional cap on training samples per class.

    Returns:
        The share of forget samples the classifier predicts as non-members, in ``[0, 1]``.

    Raises:
        ValueError: On empty, non-finite or dimension-mismatched features.
    """
    from sklearn.svm import SVC

    r = _as_features(retain_feat, "retain_feat")
    t = _as_features(nonmember_feat, "nonmember_feat")
    f = _as_features(forget_feat, "forget_feat")
    if not r.shape[1] == t.shape[1] == f.shape[1]:
        raise ValueError(
            f"feature dimensions differ: retain {r.shape[1]}, non-member {t.shape[1]}, "
            f"forget {f.shape[1]}"
        )
    size = min(r.shape[0], t.shape[0])
    if max_per_class is not None:
        if max_per_class < 1:
            raise ValueError(f"max_per_class must be >= 1, got {max_per_class}")
        size = min(size, max_per_class)
    rng = np.random.default_rng(seed)
    r = r[np.sort(rng.permutation(r.shape[0])[:size])]
    t = t[np.sort(rng.permutation(t.shape[0])[:size])]
    clf = SVC(C=3.0, gamma="auto", kernel="rbf")
    clf.fit(np.concatenate([r, t]), np.r_[np.ones(size), np.zeros(size)])
    return float(np.mean(clf.predict(f) == 0))
