"""The audit plan: members, forget, retain, non-members and the shadow keep matrix.

All draws are seeded from the config's seed and recorded. The audit pool is
the whole dataset. The original model trains on a random half (the members);
the forget set is a subset of the members; retain = members - forget;
non-members are the other half. ``file:`` forget requests are placed among the
members first, so a user can name any pool sample to forget.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attacks.shadows import make_keep_matrix
from learning.data import Dataset


class PlanError(ValueError):
    """The forget request cannot be satisfied; the message says why."""


def derive_seed(seed: int, *labels: object) -> int:
    """A reproducible 31-bit seed for a named sub-task (``derive_seed(0, "shadow", 3)``)."""
    text = ":".join([str(seed), *map(str, labels)]).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class Plan:
    """Index sets into the pool (sorted int64 arrays) and the shadow keep matrix."""

    members: np.ndarray
    forget: np.ndarray
    retain: np.ndarray
    nonmembers: np.ndarray
    keep: np.ndarray
    forget_spec: str

    @property
    def n_pool(self) -> int:
        return int(self.members.size + self.nonmembers.size)

    def split_labels(self) -> np.ndarray:
        """``(n_pool,)`` strings: forget, retain or nonmember."""
        out = np.full(self.n_pool, "nonmember", dtype=object)
        out[self.retain] = "retain"
        out[self.forget] = "forget"
        return out

    def mask(self, idx: np.ndarray) -> np.ndarray:
        m = np.zeros(self.n_pool, dtype=bool)
        m[idx] = True
        return m

    def summary(self) -> dict[str, int | str]:
        return {
            "n_pool": self.n_pool,
            "n_members": int(self.members.size),
            "n_forget": int(self.forget.size),
            "n_retain": int(self.retain.size),
            "n_nonmembers": int(self.nonmembers.size),
            "forget_spec": self.forget_spec,
        }


def read_id_file(path: Path) -> np.ndarray:
    """Integers separated by whitespace or commas (``#`` starts a comment)."""
    if not path.is_file():
        raise PlanError(f"forget file {path} does not exist")
    text = "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
    tokens = [t for t in re.split(r"[\s,]+", text) if t]
    bad = [t for t in tokens if not re.fullmatch(r"-?\d+", t)]
    if bad:
        raise PlanError(f"forget file {path}: '{bad[0]}' is not an integer sample index")
    return np.array([int(t) for t in tokens], dtype=np.int64)


def _class_index(ds: Dataset, value: str) -> int:
    if value in ds.classes:
        return ds.classes.index(value)
    if re.fullmatch(r"\d+", value) and int(value) < ds.num_classes:
        return int(value)
    raise PlanError(
        f"forget spec 'class:{value}' names no class of {ds.name}; valid: 0..{ds.num_classes - 1}"
        f" or {', '.join(ds.classes[:10])}{'...' if ds.num_classes > 10 else ''}"
    )


def _file_forget(ids: np.ndarray, n: int, n_members: int, spec: str) -> np.ndarray:
    if ids.size == 0:
        raise PlanError(f"forget spec '{spec}': the file lists no sample")
    out = ids[(ids < 0) | (ids >= n)]
    if out.size:
        raise PlanError(
            f"forget spec '{spec}': {out.size} id(s) outside the pool 0..{n - 1} (first: {out[0]})"
        )
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise PlanError(
            f"forget spec '{spec}': {int((counts > 1).sum())} id(s) listed more than once "
            f"(first: {uniq[counts > 1][0]}); remove the duplicates"
        )
    if uniq.size >= n_members:
        raise PlanError(
            f"forget spec '{spec}': {uniq.size} ids leave no retain set among {n_members} members"
        )
    return uniq


def make_plan(ds: Dataset, spec: str, seed: int, n_shadows: int) -> Plan:
    """Split the pool and draw the forget set and keep matrix.

    Raises:
        PlanError: malformed spec, a forget set that is empty or not inside the members.
    """
    n = len(ds)
    n_members = n // 2
    rng = np.random.default_rng(derive_seed(seed, "split"))
    kind, _, arg = spec.partition(":")
    labels = ds.y.numpy()
    if kind == "file":
        forced = _file_forget(read_id_file(Path(arg)), n, n_members, spec)
        rest = rng.permutation(np.setdiff1d(np.arange(n), forced))
        members = np.concatenate([forced, rest[: n_members - forced.size]])
        forget = forced
    else:
        members = rng.permutation(n)[:n_members]
        if kind == "random":
            try:
                frac = float(arg)
            except ValueError:
                raise PlanError(f"forget spec '{spec}': '{arg}' is not a fraction") from None
            if not 0 < frac < 1:
                raise PlanError(f"forget spec '{spec}': the fraction must lie in (0, 1)")
            k = int(round(frac * n_members))
            if k == 0:
                raise PlanError(f"forget spec '{spec}' selects no sample of {n_members} members")
            forget = rng.permutation(members)[:k]
        elif kind == "class":
            cls = _class_index(ds, arg)
            forget = members[labels[members] == cls]
            if forget.size == 0:
                raise PlanError(f"forget spec '{spec}': no member has class {cls}")
            if forget.size == members.size:
                raise PlanError(f"forget spec '{spec}' would forget every member")
        else:
            raise PlanError(
                f"forget spec '{spec}' not understood; use random:FRACTION, class:K or file:PATH"
            )
    members = np.sort(members)
    forget = np.sort(forget)
    retain = np.setdiff1d(members, forget)
    nonmembers = np.setdiff1d(np.arange(n), members)
    keep = make_keep_matrix(n_shadows, n, derive_seed(seed, "keep"))
    return Plan(members, forget, retain, nonmembers, keep, spec)
