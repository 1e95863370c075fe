"""Tests for attacks.shadows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearn_audit.attacks.shadows import check_keep_matrix, make_keep_matrix


@pytest.mark.parametrize("m", [2, 4, 16, 64])
@pytest.mark.parametrize("n", [2, 3, 101, 1000])
def test_every_sample_in_exactly_half(m: int, n: int) -> None:
    keep = make_keep_matrix(m, n, seed=7)
    assert keep.dtype == np.bool_
    assert keep.shape == (m, n)
    np.testing.assert_array_equal(keep.sum(axis=0), np.full(n, m // 2))
    check_keep_matrix(keep)


@pytest.mark.parametrize("n", [2, 7, 100, 1001])
def test_rows_hold_floor_or_ceil_half(n: int) -> None:
    keep = make_keep_matrix(16, n, seed=3)
    sizes = keep.sum(axis=1)
    assert set(sizes.tolist()) <= {n // 2, (n + 1) // 2}
    np.testing.assert_array_equal(sizes[0::2], np.full(8, n // 2))
    np.testing.assert_array_equal(keep[0::2], ~keep[1::2])


@settings(max_examples=30, deadline=None)
@given(
    small=st.integers(1, 8),
    extra=st.integers(0, 8),
    n=st.integers(2, 300),
    seed=st.integers(0, 2**31),
)
def test_growth_prefix_property(small: int, extra: int, n: int, seed: int) -> None:
    a = make_keep_matrix(2 * small, n, seed)
    b = make_keep_matrix(2 * (small + extra), n, seed)
    np.testing.assert_array_equal(a, b[: 2 * small])


def test_growth_16_to_64() -> None:
    np.testing.assert_array_equal(make_keep_matrix(16, 500, 1), make_keep_matrix(64, 500, 1)[:16])


def test_deterministic_and_seed_dependent() -> None:
    np.testing.assert_array_equal(make_keep_matrix(8, 200, 5), make_keep_matrix(8, 200, 5))
    assert not np.array_equal(make_keep_matrix(8, 200, 5), make_keep_matrix(8, 200, 6))


def test_pairs_are_distinct_draws() -> None:
    keep = make_keep_matrix(8, 200, 0)
    firsts = keep[0::2]
    assert len({row.tobytes() for row in firsts}) == 4


def test_does_not_collide_with_plain_seed_stream() -> None:
    # default_rng([seed, 0]) equals default_rng(seed); our design must avoid that stream.
    n, seed = 50, 11
    plain = np.zeros(n, dtype=bool)
    plain[np.random.default_rng(seed).permutation(n)[: n // 2]] = True
    assert not np.array_equal(make_keep_matrix(2, n, seed)[0], plain)


def test_marginal_inclusion_is_balanced() -> None:
    keep = make_keep_matrix(400, 10, seed=0)
    freq = keep[0::2].mean(axis=0)  # each first-of-pair row includes a sample w.p. 1/2
    assert np.all(np.abs(freq - 0.5) < 0.15)


@pytest.mark.parametrize(
    ("m", "n", "seed", "match"),
    [
        (3, 10, 0, "even"),
        (0, 10, 0, "even"),
        (-2, 10, 0, "even"),
        (4, 1, 0, "n_samples"),
        (4, 10, -1, "seed"),
        (4.0, 10, 0, "n_models"),
        (True, 10, 0, "n_models"),
    ],
)
def test_invalid_arguments(m: object, n: int, seed: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_keep_matrix(m, n, seed)  # type: ignore[arg-type]


def test_check_keep_matrix_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="boolean"):
        check_keep_matrix(np.ones((2, 3), dtype=int))
    with pytest.raises(ValueError, match="2-D"):
        check_keep_matrix(np.ones(3, dtype=bool))
    keep = np.array([[True, True, False], [False, True, False]])
    with pytest.raises(ValueError, match=r"1 of 3 samples have zero OUT.*\[1\]") as err:
        check_keep_matrix(keep)
    assert "zero IN models (first: [2])" in str(err.value)
