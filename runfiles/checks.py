"""What "consistent" means: ``samples.csv`` and ``signals.npz`` against ``results.json``.

:func:`samples_problems` and :func:`signals_problems` are the one place that says it;
the readers (:mod:`runfiles.read`) raise :class:`~runfiles.errors.RunFileError` with
:func:`~runfiles.errors.damaged` of what they find. What ``results.json`` does not state
is not checked (a bare ``samples.csv``, a signal bank without a ``results.json``).
"""

from __future__ import annotations

from typing import Any

from unlearn_audit.runfiles.names import (
    BASE_COLUMNS,
    DIFFICULTY,
    DIFFICULTY_RANK,
    EPSILON,
    FLAGS,
    PLANTED_COLUMN,
    PVALUE,
    RECOGNISABLE,
    RESIDUAL,
    SAMPLES_FILE,
    SIGNALS_FILE,
    SPLIT_COLUMN,
    SPLIT_COUNTS,
    ULIRA,
    column,
)


def _count(block: Any, key: str) -> int | None:
    """An integer count from a results.json block (None when absent or not an int)."""
    value = block.get(key) if isinstance(block, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dicts(value: Any) -> dict[str, dict[str, Any]]:
    """The entries of a results.json block that are objects (others are ignored)."""
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, dict)}


def _listing(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _split_problems(file: str, split: list[str], data: Any) -> list[str]:
    problems = []
    for label, key in SPLIT_COUNTS:
        want = _count(data, key)
        have = sum(1 for s in split if s == label)
        if want is not None and have != want:
            problems.append(f"{file} has {have} {label} rows but results.json says {want}")
    return problems


def expected_columns(results: dict[str, Any]) -> list[str]:
    """The ``samples.csv`` columns that ``results.json`` says the audit wrote.

    One ``<attack>.<model>`` per scored attack, ``pvalue.<model>`` and
    ``recognisable.<model>`` per model with record evidence, ``planted`` with the
    planted control, ``ulira.``/``epsilon.<method>`` per U-LiRA bank and the
    difficulty columns per method with a difficulty index.
    """
    cols = list(BASE_COLUMNS)
    for model, per_attack in _dicts(results.get("attacks")).items():
        cols += [column(attack, model) for attack in per_attack]
    for model, verdict in _dicts(results.get("verdicts")).items():
        if isinstance(_dicts(verdict).get("evidence", {}).get("records"), dict):
            cols += [column(PVALUE, model), column(RECOGNISABLE, model)]
    if isinstance(_dicts(results.get("power")).get("planted"), dict):
        cols.append(PLANTED_COLUMN)
    for method, entry in _dicts(results.get("forgetting")).items():
        if "n_bank" in entry:
            cols += [column(ULIRA, method), column(EPSILON, method)]
    for method, entry in _dicts(results.get("difficulty")).items():
        if "spearman" in entry:
            cols += [column(p, method) for p in (DIFFICULTY, DIFFICULTY_RANK, RESIDUAL)]
            cols.append(column(FLAGS, method))
    return list(dict.fromkeys(cols))


def samples_problems(
    results: dict[str, Any] | None,
    header: list[str],
    rows: list[list[str]],
    file: str = SAMPLES_FILE,
) -> list[str]:
    """What in a ``samples.csv`` (its header and data rows) contradicts ``results.json``.

    Checks the row count against ``data.n_pool``, the split counts against
    ``data.n_forget`` (and the other counts), that every row has as many cells as the
    header and that the ``index`` column numbers the rows ``0..n-1``, and that every
    column :func:`expected_columns` names is there. What ``results.json`` does not
    state is not checked. Returns one phrase per problem, each naming ``file`` (empty:
    consistent).
    """
    if not isinstance(results, dict):
        return []  # nothing to check against (a bare samples.csv is read leniently)
    data = results.get("data")
    problems = []
    dup = sorted({c for c in header if header.count(c) > 1})
    if dup:
        problems.append(f"{file} has the columns {_listing(dup)} more than once")
    n_pool = _count(data, "n_pool")
    if n_pool is not None and len(rows) != n_pool:
        problems.append(
            f"{file} has {len(rows)} rows but results.json says the pool has {n_pool} samples"
        )
    ragged = [i for i, row in enumerate(rows) if len(row) != len(header)]
    if ragged:
        first = ragged[0]
        problems.append(
            f"{file} has {len(ragged)} row(s) without the header's {len(header)} cells "
            f"(the first: row {first + 1}, {len(rows[first])} cells)"
        )
    if SPLIT_COLUMN in header and (n_pool is None or len(rows) == n_pool):
        j = header.index(SPLIT_COLUMN)
        problems += _split_problems(file, [r[j] if j < len(r) else "" for r in rows], data)
    if "index" in header and not ragged:
        j = header.index("index")
        if sorted(r[j].strip() for r in rows) != sorted(str(i) for i in range(len(rows))):
            problems.append(f"{file} has an index column that is not 0..{len(rows) - 1}")
    missing = [c for c in expected_columns(results) if c not in header]
    if missing:
        problems.append(f"{file} lacks the column(s) {_listing(missing)} that results.json implies")
    return problems


def signals_problems(
    results: dict[str, Any] | None,
    n_samples: int,
    model_names: list[str] | None = None,
    n_shadows: int | None = None,
    split: list[str] | None = None,
    file: str = SIGNALS_FILE,
) -> list[str]:
    """What in a run's ``signals.npz`` contradicts ``results.json`` (see :func:`samples_problems`).

    Checks the samples per model against ``data.n_pool``, the split counts, the target
    models (the rows after the shadows) against the models ``results.json`` scored and
    the shadow count against ``config.attack.shadows``.
    """
    if not isinstance(results, dict):
        return []
    data = results.get("data")
    problems = []
    n_pool = _count(data, "n_pool")
    if n_pool is not None and n_samples != n_pool:
        problems.append(
            f"{file} has {n_samples} samples per model but results.json says the pool has {n_pool}"
        )
    if split is not None and (n_pool is None or len(split) == n_pool):
        problems += _split_problems(file, split, data)
    want = _count(_dicts(results.get("config")).get("attack"), "shadows")
    if n_shadows is not None and want is not None and n_shadows != want:
        problems.append(f"{file} has {n_shadows} shadow models but results.json says {want}")
    scored = list(_dicts(results.get("attacks")))
    if model_names is not None and n_shadows is not None and scored:
        targets = model_names[n_shadows:]
        missing = [m for m in scored if m not in targets]
        extra = [m for m in targets if m not in scored]
        if missing:
            problems.append(
                f"{file} has no signals of {_listing(missing)} (results.json scored them)"
            )
        if extra:
            problems.append(f"{file} has signals of {_listing(extra)}, unknown to results.json")
    return problems
