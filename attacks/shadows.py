"""Shadow-model membership design (which shadow model trains on which sample).

LiRA (Carlini et al., IEEE S&P 2022, Sec. IV) trains shadow models on random
halves of the candidate pool so that every sample is IN for about half of the
shadow models and OUT for the rest. The paper draws each shadow's half
independently; we instead use *complementary pairs*, an exactly balanced design
(our choice, not the paper's) which gives:

* every sample is IN for exactly ``n_models / 2`` models (no sample is left
  without IN or OUT models, however few shadows are trained), and
* a growth-prefix property: the first ``2k`` rows of a larger bank equal a bank
  of ``2k`` models with the same seed, so enlarging a bank reuses old shadows.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_keep_matrix", "make_keep_matrix", "unlearning_request"]

# Domain tag mixed into the seed so that keep-matrix draws never coincide with
# ``np.random.default_rng(seed)`` used elsewhere for the same seed. (A plain
# ``default_rng([seed, 0])`` would: NumPy's SeedSequence pads entropy with zeros,
# so ``[seed, 0]`` and ``seed`` give identical streams.)
_KEEP_TAG = 0x6B656570  # "keep"


def _pair_generator(seed: int, pair: int) -> np.random.Generator:
    """Independent generator for complementary pair ``pair`` (any bank size)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_KEEP_TAG, pair)))


def make_keep_matrix(n_models: int, n_samples: int, seed: int) -> np.ndarray:
    """Boolean IN/OUT design for a bank of shadow models built from complementary pairs.

    For pair ``j`` (models ``2j`` and ``2j + 1``) a uniformly random subset
    ``H_j`` of exactly ``floor(n_samples / 2)`` samples is drawn from a generator
    seeded by ``(seed, j)`` only; model ``2j`` keeps ``H_j`` and model ``2j + 1``
    keeps its complement. Hence ``keep.sum(axis=0) == n_models // 2`` for every
    sample, rows hold ``floor(n/2)`` or ``ceil(n/2)`` samples, and
    ``make_keep_matrix(16, n, s)`` equals ``make_keep_matrix(64, n, s)[:16]``.

    Args:
        n_models: Number of shadow models; even and at least 2.
        n_samples: Number of candidate samples; at least 2.
        seed: Non-negative integer seed.

    Returns:
        Boolean array of shape ``(n_models, n_samples)``; ``keep[k, i]`` is True
        when sample ``i`` is in shadow model ``k``'s training set.

    Raises:
        ValueError: If ``n_models`` is odd or < 2, ``n_samples`` < 2, or ``seed``
            is negative.
    """
    for name, value in (("n_models", n_models), ("n_samples", n_samples), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if n_models < 2 or n_models % 2 != 0:
        raise ValueError(
            f"n_models must be an even number >= 2 (shadows come in complementary IN/OUT "
            f"pairs), got {n_models}"
        )
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2, got {n_samples}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    half = n_samples // 2
    keep = np.zeros((n_models, n_samples), dtype=bool)
    for j in range(n_models // 2):
        chosen = _pair_generator(int(seed), j).permutation(n_samples)[:half]
        keep[2 * j, chosen] = True
        keep[2 * j + 1] = ~keep[2 * j]
    return keep


def check_keep_matrix(keep: np.ndarray) -> None:
    """Validate a keep matrix for use by shadow-model attacks.

    Args:
        keep: Candidate keep matrix, expected boolean with shape
            ``(n_models, n_samples)``.

    Raises:
        ValueError: If ``keep`` is not a 2-D boolean array, or some samples have
            no IN model or no OUT model (the message gives counts and the first
            offending sample indices).
    """
    arr = np.asarray(keep)
    if arr.dtype != np.bool_:
        raise ValueError(f"keep must be a boolean array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"keep must be 2-D (n_models, n_samples), got shape {arr.shape}")
    n_in = arr.sum(axis=0)
    n_out = arr.shape[0] - n_in
    problems = []
    for side, counts in (("IN", n_in), ("OUT", n_out)):
        bad = np.flatnonzero(counts == 0)
        if bad.size:
            problems.append(
                f"{bad.size} of {arr.shape[1]} samples have zero {side} models "
                f"(first: {bad[:5].tolist()})"
            )
    if problems:
        raise ValueError("invalid keep matrix: " + "; ".join(problems))


def unlearning_request(
    trained: np.ndarray, forget: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A shadow model's unlearning request, sized and labelled like the audited one.

    U-LiRA (Hayes et al. 2024) asks each shadow model to unlearn the audited
    forget samples it trained on, ``trained ∩ forget``; with a balanced keep
    matrix that is about half of the audited request. A method whose work
    scales with the request (gradient ascent takes ``epochs · |forget| /
    batch`` steps) would then unlearn less on a shadow than on the audited
    model, and the "trained then unlearned" distribution would not be the
    audited model's. Our choice: pad the request with samples the shadow
    trained on that are *not* audited forget samples, drawn at random per label
    so the request has the audited one's size and label counts (a class-wise
    forget request stays within its class). Where a label has too few such
    samples the request is padded as far as it goes. The padding samples are
    never scored: U-LiRA reads the bank on the audited forget samples only.

    Args:
        trained: Pool indices the shadow model trained on.
        forget: The audited forget indices.
        labels: Label of every pool sample.
        rng: Generator of the padding draw.

    Returns:
        Sorted pool indices to unlearn: ``trained ∩ forget`` plus the padding.
    """
    trained, forget = np.asarray(trained), np.asarray(forget)
    own = np.intersect1d(trained, forget)
    spare = np.setdiff1d(trained, forget)
    extra = []
    for c in np.unique(labels[forget]):
        want = int((labels[forget] == c).sum() - (labels[own] == c).sum())
        pool = spare[labels[spare] == c]
        if want > 0 and pool.size:
            extra.append(rng.choice(pool, size=min(want, pool.size), replace=False))
    return np.sort(np.concatenate([own, *extra])).astype(np.int64)
