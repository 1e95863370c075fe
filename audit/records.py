"""Per-record evidence: which forget records are still recognisable as training data.

For each forget record, a one-sided p-value of "a non-member" from its LiRA-offline
test against the OUT shadows, calibrated on the model's own non-members
(:func:`record_pvalues`), and the records still recognisable at a false discovery
rate by Benjamini & Hochberg (1995) (docs/verdict.md). Carlini et al. 2022 (LiRA) for
the scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri, ndtri_exp

RECORD_ATTACK = "lira_offline"  # its score is mean_a log Phi(z_a): a one-sided OUT test


def record_pvalues(forget_scores: np.ndarray, nonmember_scores: np.ndarray) -> np.ndarray:
    """One-sided p-values of "this record is a non-member", calibrated on the model's non-members.

    The inputs are LiRA-offline scores ``log Phi(z)`` (Carlini et al. 2022: ``z``
    standardises the model's signal on a record by the OUT shadows' mean and
    spread on it). ``z`` is recovered as ``scipy.special.ndtri_exp(score)``
    (stable in both tails), then re-standardised by the median and a spread of the *model's own*
    non-members' ``z``, so a model whose signals all moved (trained on fewer
    samples than the shadows, fine-tuned) is read against itself:
    ``p_i = Phi(-(z_i - median) / s)``, where the spread ``s`` is the largest of
    ``1.4826 MAD``, the SD and the spread that puts the non-members' own 99th
    percentile at the normal's: conservative where their tail is heavier than
    normal (it was, on Fashion-MNIST, with the MAD alone). It is exact when a forgotten
    record's ``z`` is exchangeable with the non-members' and near normal; the
    share of non-members below 1% is recorded by the tests as the check.
    Continuous p-values, unlike ranks among a few hundred non-members, can reach
    the Benjamini-Hochberg thresholds of a large request.
    """
    z_f = ndtri_exp(np.asarray(forget_scores, dtype=np.float64))
    z_n = ndtri_exp(np.asarray(nonmember_scores, dtype=np.float64))
    z_n = z_n[np.isfinite(z_n)]
    if z_n.size < 2:  # no usable non-member: no record can be told from one
        return np.ones(z_f.shape, dtype=np.float64)
    centre = float(np.median(z_n))
    spread = max(
        1.4826 * float(np.median(np.abs(z_n - centre))),  # the bulk
        float(np.std(z_n)),  # heavier tails than normal widen it
        (float(np.quantile(z_n, 0.99)) - centre) / float(ndtri(0.99)),  # the upper tail itself
    )
    spread = spread if np.isfinite(spread) and spread > 0 else 1.0
    return np.asarray(ndtr(-(z_f - centre) / spread), dtype=np.float64)


def benjamini_hochberg(pvalues: np.ndarray, fdr: float) -> np.ndarray:
    """Boolean mask of the discoveries of the Benjamini-Hochberg step-up procedure at ``fdr``."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    if m == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(p, kind="stable")
    below = p[order] <= fdr * np.arange(1, m + 1) / m
    out = np.zeros(m, dtype=bool)
    if below.any():
        k = int(np.flatnonzero(below)[-1])
        out[order[: k + 1]] = True
    return out


@dataclass(frozen=True)
class RecordEvidence:
    """Per forget record: the p-value of "forgotten" and whether it is still recognisable."""

    attack: str
    fdr: float
    pvalues: np.ndarray
    recognisable: np.ndarray

    def to_dict(self, forget_index: np.ndarray) -> dict[str, Any]:
        return {
            "attack": self.attack,
            "fdr": self.fdr,
            "n_forget": int(self.pvalues.size),
            "n_recognisable": int(self.recognisable.sum()),
            "recognisable": [int(i) for i in np.asarray(forget_index)[self.recognisable]],
        }


def record_evidence(
    attack: str, scores: np.ndarray, is_forget: np.ndarray, fdr: float
) -> RecordEvidence:
    """p-values and BH discoveries of one model's forget records under ``attack``."""
    y = np.asarray(is_forget, dtype=bool)
    p = record_pvalues(scores[y], scores[~y])
    return RecordEvidence(attack, fdr, p, benjamini_hochberg(p, fdr))
