"""The audit plan: members, forget, retain, non-members and the shadow keep matrix.

All draws are seeded from the config's seed and recorded. The audit pool is
the whole dataset. The original model trains on a random half (the members);
the forget set is a subset of the members; retain = members - forget;
non-members are the other half, of which a seeded 10% is set aside as the
*public* set: third-party data that methods needing a non-member reference
(e.g. ``gradient_constraint``'s matched variant) may use, and that is never
used to evaluate membership or test accuracy. ``file:`` forget requests are placed among the
members first, so a user can name any pool sample to forget.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unlearn_audit.attacks.shadows import make_keep_matrix
from unlearn_audit.learning.data import Dataset

PUBLIC_FRACTION = 0.1  # of the non-members, set aside as third-party reference data


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
    warnings: tuple[str, ...] = ()
    public: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_pool(self) -> int:
        return int(self.members.size + self.nonmembers.size + self.public.size)

    def split_labels(self) -> np.ndarray:
        """``(n_pool,)`` strings: forget, retain or nonmember."""
        out = np.full(self.n_pool, "nonmember", dtype=object)
        out[self.public] = "public"
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
            "n_public": int(self.public.size),
            "forget_spec": self.forget_spec,
        }


def read_id_tokens(path: Path, what: str = "forget") -> list[str]:
    """Sample ids separated by whitespace or commas (``#`` starts a comment)."""
    if not path.is_file():
        raise PlanError(f"{what} file {path} does not exist")
    text = "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
    return [t for t in re.split(r"[\s,]+", text) if t]


def resolve_ids(tokens: list[str], ds: Dataset, spec: str) -> tuple[np.ndarray, list[str]]:
    """Map id tokens to sorted unique pool indices; duplicates become warnings.

    Tokens are matched against the dataset's ``ids`` array when it has one (as
    strings), else read as pool indices ``0..n-1``.

    Raises:
        PlanError: no id at all, or ids that name no sample (all of them counted).
    """
    n = len(ds)
    if not tokens:
        raise PlanError(f"'{spec}': the file lists no sample")
    if ds.ids is not None:
        lookup = {str(v): i for i, v in enumerate(ds.ids.tolist())}
        unknown = [t for t in tokens if t not in lookup]
        fix = "they must be values of the dataset's ids array"
        idx = [lookup.get(t, -1) for t in tokens]
    else:
        unknown = [t for t in tokens if not re.fullmatch(r"\d+", t) or int(t) >= n]
        fix = f"they must be sample indices 0..{n - 1}"
        idx = [int(t) if t not in unknown else -1 for t in tokens]
    if unknown:
        raise PlanError(
            f"'{spec}': {len(unknown)} id(s) name no sample (first: {', '.join(unknown[:3])}); "
            + fix
        )
    arr = np.array(idx, dtype=np.int64)
    uniq, counts = np.unique(arr, return_counts=True)
    warnings = []
    if (counts > 1).any():
        dup = [tokens[idx.index(int(i))] for i in uniq[counts > 1]]
        warnings.append(
            f"'{spec}': {len(dup)} id(s) listed more than once, counted once "
            f"(first: {', '.join(dup[:3])})"
        )
    return uniq, warnings


def _class_index(ds: Dataset, value: str) -> int:
    if value in ds.classes:
        return ds.classes.index(value)
    if re.fullmatch(r"\d+", value) and int(value) < ds.num_classes:
        return int(value)
    raise PlanError(
        f"forget spec 'class:{value}' names no class of {ds.name}; valid: 0..{ds.num_classes - 1}"
        f" or {', '.join(ds.classes[:10])}{'...' if ds.num_classes > 10 else ''}"
    )


def _members(
    ds: Dataset, members_spec: str, forced: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, list[str]]:
    """The original's training set: the user's id file, or a random half holding ``forced``."""
    n = len(ds)
    if members_spec:
        kind, _, arg = members_spec.partition(":")
        if kind != "file" or not arg:
            raise PlanError(f"members spec '{members_spec}' not understood; use file:PATH")
        members, warnings = resolve_ids(read_id_tokens(Path(arg), "members"), ds, members_spec)
        if members.size < 2 or members.size >= n:
            raise PlanError(
                f"members spec '{members_spec}': {members.size} members of {n}; at least 2 "
                "members and 1 non-member are needed"
            )
        return members, warnings
    n_members = n // 2
    if forced.size >= n_members:
        raise PlanError(
            f"the forget request names {forced.size} samples, which leaves no retain set "
            f"among {n_members} members"
        )
    rest = rng.permutation(np.setdiff1d(np.arange(n), forced))
    return np.concatenate([forced, rest[: n_members - forced.size]]), []


def _draw_forget(
    ds: Dataset, spec: str, members: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    kind, _, arg = spec.partition(":")
    if kind == "random":
        try:
            frac = float(arg)
        except ValueError:
            raise PlanError(f"forget spec '{spec}': '{arg}' is not a fraction") from None
        if not 0 < frac < 1:
            raise PlanError(f"forget spec '{spec}': the fraction must lie in (0, 1)")
        k = int(round(frac * members.size))
        if k == 0:
            raise PlanError(f"forget spec '{spec}' selects no sample of {members.size} members")
        return rng.permutation(members)[:k]
    if kind == "class":
        cls = _class_index(ds, arg)
        forget = members[ds.y.numpy()[members] == cls]
        if forget.size == 0:
            raise PlanError(f"forget spec '{spec}': no member has class {cls}")
        return forget
    raise PlanError(
        f"forget spec '{spec}' not understood; use random:FRACTION, class:K or file:PATH"
    )


def make_plan(ds: Dataset, spec: str, seed: int, n_shadows: int, members_spec: str = "") -> Plan:
    """Split the pool and draw the forget set and keep matrix.

    Raises:
        PlanError: malformed spec, a forget set that is empty or not inside the members.
    """
    n = len(ds)
    rng = np.random.default_rng(derive_seed(seed, "split"))
    warnings: list[str] = []
    forced = np.zeros(0, dtype=np.int64)
    if spec.startswith("file:"):
        forced, warnings = resolve_ids(read_id_tokens(Path(spec[5:])), ds, spec)
    members, more = _members(ds, members_spec, forced, rng)
    warnings += more
    if spec.startswith("file:"):
        outside = np.setdiff1d(forced, members)
        if outside.size:
            raise PlanError(
                f"forget spec '{spec}': {outside.size} sample(s) are not members of the original's "
                f"training set (first index: {outside[0]}); only trained samples can be forgotten"
            )
        forget = forced
    else:
        forget = _draw_forget(ds, spec, np.sort(members), rng)
    members, forget = np.sort(members), np.sort(forget)
    retain = np.setdiff1d(members, forget)
    if retain.size == 0:
        raise PlanError(f"forget spec '{spec}' would forget every member")
    outside = np.setdiff1d(np.arange(n), members)
    n_public = int(round(PUBLIC_FRACTION * outside.size)) if outside.size >= 20 else 0
    public = np.sort(rng.permutation(outside)[:n_public])
    nonmembers = np.setdiff1d(outside, public)
    keep = make_keep_matrix(n_shadows, n, derive_seed(seed, "keep"))
    return Plan(members, forget, retain, nonmembers, keep, spec, tuple(warnings), public)
