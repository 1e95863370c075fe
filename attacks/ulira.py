"""Unlearning-aware LiRA (U-LiRA).

Hayes, Shumailov, Triantafillou, Khalifa, Papernot, "Inexact Unlearning Needs
More Careful Evaluations to Avoid a False Sense of Privacy" (SaTML 2025;
arXiv 2403.01218, 2024). Population-level MIAs ask whether a sample was ever
trained on; after unlearning the right question is whether a model that
*trained on the sample and then unlearned it* can be told apart from a model
that *never trained on it* (the retrain-from-scratch ideal). U-LiRA answers it
per sample with LiRA's Gaussian likelihood-ratio test (Carlini et al., IEEE
S&P 2022) over shadow models of both kinds:

    score_i = mean_a [ log N(t_ia; mu_U_ia, s_U_ia^2) - log N(t_ia; mu_O_ia, s_O_ia^2) ],

where ``U`` are the shadow models that trained on sample ``i`` and then
unlearned it with the method under audit (``unlearned[k, i]``), ``O`` the
shadow models that never trained on it (``out[k, i]``), ``t`` the audited
model's signal (logit-scaled confidence, :mod:`attacks.signals`) and ``a``
the augmented queries. Higher = the sample looks "trained then unlearned"
rather than "never seen", i.e. residual membership; a perfect unlearner gives
scores with no power (AUC 0.5 between unlearned and retrained targets).

Estimation follows :mod:`attacks.lira` exactly (per-example ddof=1
variances floored at ``eps``, or with ``fixed_variance`` one pooled
within-sample variance per side and query; log-terms averaged over queries).
The masks are taken as given: the function does not assume how the shadow
bank was built (e.g. whether each shadow unlearns its own members intersected
with the audited forget set, or a random subset). A model may be on at most
one side for a sample; models on neither side (e.g. trained on the sample
and not asked to unlearn it) are ignored.
"""

from __future__ import annotations

import numpy as np

from unlearn_audit.attacks.lira import _prepare, _side_stats

__all__ = ["ulira"]


def ulira(
    target: np.ndarray,
    shadow: np.ndarray,
    unlearned: np.ndarray,
    out: np.ndarray,
    *,
    fixed_variance: bool = False,
    eps: float = 1e-6,
) -> np.ndarray:
    """U-LiRA scores (Hayes et al. 2024); higher = more likely trained-then-unlearned.

    Args:
        target: Audited (unlearned) model's signals ``(n,)`` or ``(n, A)``.
        shadow: Shadow models' signals ``(m, n)`` or ``(m, n, A)``.
        unlearned: Boolean ``(m, n)``: shadow ``k`` trained on sample ``i`` and
            then unlearned it.
        out: Boolean ``(m, n)``: shadow ``k`` never trained on sample ``i``.
        fixed_variance: One pooled variance per side and query instead of
            per-example variances (advisable with few shadow models).
        eps: Floor of every standard deviation; positive.

    Returns:
        float64 scores ``(n,)``.

    Raises:
        ValueError: On inconsistent shapes or dtypes, non-finite signals, a
            model on both sides for a sample, a sample with no model on a side
            (restrict the call to the samples both sides cover, e.g. the
            forget set), or a fixed variance that cannot be estimated.
    """
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be positive and finite, got {eps}")
    t, s, u = _prepare(target, shadow, unlearned)
    o = np.asarray(out)
    if o.dtype != np.bool_ or o.shape != u.shape:
        raise ValueError(f"out must be a boolean array of shape {u.shape}, got {o.dtype} {o.shape}")
    both = u & o
    if both.any():
        first = np.argwhere(both)[0]
        raise ValueError(
            f"{int(both.sum())} (model, sample) pairs are both unlearned and out "
            f"(first: model {first[0]}, sample {first[1]})"
        )
    mu_u, sd_u = _side_stats(s, u, "unlearned", fixed_variance, eps)
    mu_o, sd_o = _side_stats(s, o, "out (never trained)", fixed_variance, eps)
    z_u = (t - mu_u) / sd_u
    z_o = (t - mu_o) / sd_o
    llr = 0.5 * (z_o**2 - z_u**2) + np.log(sd_o) - np.log(sd_u)
    return np.asarray(llr.mean(axis=1), dtype=np.float64)
