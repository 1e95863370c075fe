"""``unlearn-audit rank RUN_DIR``: the forget samples that are hardest to forget, as a table.

Reads the finished run directory only (``samples.csv``, and ``results.json`` for
the class names, the roles of the models and the summary line); nothing is
recomputed; both are read through :mod:`unlearn_audit.runfiles`, whose
:class:`~unlearn_audit.runfiles.RunFileError` every failure raises. A ``samples.csv``
that contradicts ``results.json`` (rows or columns missing:
:func:`unlearn_audit.runfiles.samples_problems`) is an error. The columns it
needs are written by the audit when the difficulty index ran (``attack.ulira``
and ``difficulty.enabled``, see docs/difficulty.md): ``difficulty.<method>``,
``difficulty_rank.<method>``, ``residual.<method>``, ``flags.<method>`` and
``feature.<name>`` (a classifier's or an encoder's features: whatever the run has).

Order: the method's difficulty rank (1 = largest predicted residual), or with
``--by`` a feature (largest value first), ``residual`` (the realised residual,
largest first) or ``index``. Ties and missing values: missing last, then the
smaller pool index first, so the order does not depend on the file's row order.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from unlearn_audit.audit.lock import RunLockedError, ensure_idle
from unlearn_audit.runfiles import (
    DIFFICULTY,
    DIFFICULTY_RANK,
    FEATURE,
    FLAGS,
    RESIDUAL,
    RunFileError,
    column,
    columns_for,
    difficulty_recorded,
    has_difficulty,
    read_results,
    read_sample_rows,
    run_directory,
)

SPECIAL = ("index", "residual")


@dataclass
class Table:
    """The forget rows of ``samples.csv`` (text cells) and what the run knows about them."""

    rows: list[dict[str, str]]
    columns: list[str]
    results: dict[str, Any]

    def methods(self) -> list[str]:
        """Methods with a difficulty rank, in column order."""
        return list(columns_for(self.columns, DIFFICULTY_RANK))

    def features(self) -> list[str]:
        """Feature names, in column order."""
        return list(columns_for(self.columns, FEATURE))


def load_table(run_dir: str | Path) -> Table:
    """Read ``RUN/samples.csv`` (forget rows) and ``RUN/results.json`` if present."""
    run = run_directory(Path(run_dir))
    try:
        results = read_results(run, any_schema=True)
    except RunFileError:
        results = {}  # the table stands without it
    samples = read_sample_rows(run, results or None)
    path, columns = samples.path, samples.header
    rows = [dict(zip(columns, r, strict=False)) for r in samples.rows]
    rows = [r for r in rows if r.get("split") == "forget"]
    table = Table(rows, columns, results)
    if not table.methods():
        raise RunFileError(f"{path} has no difficulty columns: {_why_none(results)}")
    return table


def _why_none(results: dict[str, Any]) -> str:
    """Why a run has no difficulty columns, from what its results.json records."""
    cfg, block = results.get("config"), results.get("paradigm")
    paradigm = (block if isinstance(block, dict) else {}).get("name") or (
        cfg if isinstance(cfg, dict) else {}
    ).get("paradigm")
    if has_difficulty(results):
        return (
            "the audit ran without the difficulty index (it needs attack.ulira = true and "
            "difficulty.enabled = true); rerun the audit with them (cached models are reused)"
        )
    if difficulty_recorded(results):
        return f"this run's paradigm ({paradigm}) supplies no difficulty features"
    return (
        f"this run audited {paradigm} models without class logits and was written by a "
        "version of unlearn-audit that computed difficulty for classifiers only (its "
        "results.json has no paradigm.difficulty); rerun the audit with this version and "
        "attack.ulira = true for the encoder features"
    )


def _default_method(table: Table) -> str:
    """The first audited unlearner with a rank (the controls come last), else the first."""
    methods = table.methods()
    models = table.results.get("models") or {}
    for m in methods:
        if isinstance(models.get(m), dict) and models[m].get("role") == "unlearner":
            return m
    return methods[0]


def _number(cell: str | None) -> float:
    try:
        return float(cell) if cell not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _pool_index(row: dict[str, str]) -> int:
    try:
        return int(row.get("index", ""))
    except ValueError:
        return sys.maxsize


def order(table: Table, method: str, by: str | None) -> list[dict[str, str]]:
    """Forget rows hardest first by ``method``'s rank, or by ``by`` (largest first)."""
    if by is None:
        name, sign = column(DIFFICULTY_RANK, method), 1.0
    elif by in SPECIAL:
        name, sign = column(DIFFICULTY if by == "index" else RESIDUAL, method), -1.0
    else:
        name, sign = column(FEATURE, by), -1.0

    def key(row: dict[str, str]) -> tuple[bool, float, int]:
        v = _number(row.get(name))
        return (math.isnan(v), sign * v if not math.isnan(v) else 0.0, _pool_index(row))

    return sorted(table.rows, key=key)


def _fmt(cell: str | None) -> str:
    v = _number(cell)
    if math.isnan(v):
        return "-"
    return str(int(v)) if v.is_integer() and abs(v) < 1e9 else f"{v:.4g}"


def _label(cell: str, classes: Any) -> str:
    if isinstance(classes, list) and cell.lstrip("-").isdigit() and 0 <= int(cell) < len(classes):
        return str(classes[int(cell)])
    return cell


def summary_line(table: Table, method: str) -> str:
    """One line from ``results.json``'s ``difficulty`` block (empty if the run has none)."""
    entry = (table.results.get("difficulty") or {}).get(method)
    if not isinstance(entry, dict) or "spearman" not in entry:
        return ""
    sp = entry["spearman"]
    feats = {k: v for k, v in sp.get("features", {}).items() if v is not None}
    best = max(feats, key=lambda k: abs(feats[k])) if feats else None
    fe = entry.get("feasibility", {})
    parts = [f"{method}: {entry.get('n')} forget samples"]
    if sp.get("index") is not None:
        parts.append(f"Spearman of the index with the realised residual {sp['index']:.3f}")
    if best is not None:
        parts.append(f"best single feature {best} {feats[best]:+.3f}")
    if fe.get("share") is not None:
        parts.append(f"feasible {100 * fe['share']:.0f}% at bar {fe.get('bar')}")
    return "; ".join(parts)


def render(table: Table, method: str, by: str | None, top: int) -> list[str]:
    """The table's lines: header, then the ``top`` hardest forget samples."""
    feats = table.features()
    classes = (table.results.get("data") or {}).get("classes")
    head = ["#", "id", "label", "rank", "index", "residual", *feats, "flags"]
    body = []
    for pos, row in enumerate(order(table, method, by)[:top], start=1):
        body.append(
            [
                str(pos),
                row.get("id") or row.get("index", ""),
                _label(row.get("label", ""), classes),
                _fmt(row.get(column(DIFFICULTY_RANK, method))),
                _fmt(row.get(column(DIFFICULTY, method))),
                _fmt(row.get(column(RESIDUAL, method))),
                *(_fmt(row.get(column(FEATURE, f))) for f in feats),
                row.get(column(FLAGS, method), "") or "",
            ]
        )
    widths = [max(len(r[j]) for r in [head, *body]) for j in range(len(head) - 1)]
    lines = []
    for r in [head, *body]:
        cells = [
            c.ljust(w) if j == 2 else c.rjust(w)
            for j, (c, w) in enumerate(zip(r[:-1], widths, strict=True))
        ]
        lines.append("  ".join(cells) + ("  " + r[-1] if r[-1] else ""))
    return lines


def check_options(table: Table, method: str | None, by: str | None, top: int) -> str:
    """Validate ``--method``, ``--by`` and ``--top``; the method to show."""
    if top < 1:
        raise RunFileError(f"--top must be >= 1, got {top}")
    methods = table.methods()
    if method is not None and method not in methods:
        raise RunFileError(
            f"no difficulty columns for method '{method}'; methods with them: {', '.join(methods)}"
        )
    feats = table.features()
    if by is not None and by not in (*feats, *SPECIAL):
        raise RunFileError(
            f"unknown feature '{by}'; valid: {', '.join(feats)} (or {', '.join(SPECIAL)})"
        )
    if method is None and not isinstance(table.results.get("models"), dict):
        raise RunFileError(
            "results.json is missing or unreadable, so the audited unlearners cannot be told "
            f"from the controls; pass --method (one of: {', '.join(methods)})"
        )
    return method or _default_method(table)


@click.command()
@click.argument("run_dir", type=click.Path())
@click.option("--top", type=int, default=20, show_default=True, help="Samples to show.")
@click.option(
    "--by",
    help="Order by this feature (largest first), 'residual' (realised) or 'index' "
    "instead of the difficulty rank.",
)
@click.option("--method", help="The audited method (default: the first unlearner).")
def rank(run_dir: str, top: int, by: str | None, method: str | None) -> None:
    """Print the forget samples of RUN_DIR that are hardest to forget (docs/difficulty.md)."""
    try:
        ensure_idle(run_dir)
        table = load_table(run_dir)
        chosen = check_options(table, method, by, top)
    except (RunFileError, RunLockedError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    line = summary_line(table, chosen)
    if line:
        click.echo(line)
    how = f"by {by}, largest first" if by else "by difficulty rank, 1 = hardest"
    click.echo(f"{min(top, len(table.rows))} of {len(table.rows)} forget samples ({how})")
    for text in render(table, chosen, by, top):
        click.echo(text)
