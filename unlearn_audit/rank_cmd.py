"""``unlearn-audit rank RUN_DIR``: the forget samples that are hardest to forget, as a table.

Reads the finished run directory only (``samples.csv``, and ``results.json`` for
the class names, the roles of the models and the summary line); nothing is
recomputed. A ``samples.csv`` that contradicts ``results.json`` (rows or columns
missing: :func:`reports.loading.samples_problems`) is an error. The columns it
needs are written by the audit when the difficulty index ran (``attack.ulira``
and ``difficulty.enabled``, see docs/difficulty.md): ``difficulty.<method>``,
``difficulty_rank.<method>``, ``residual.<method>``, ``flags.<method>`` and
``feature.<name>``.

Order: the method's difficulty rank (1 = largest predicted residual), or with
``--by`` a feature (largest value first), ``residual`` (the realised residual,
largest first) or ``index``. Ties and missing values: missing last, then the
smaller pool index first, so the order does not depend on the file's row order.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from unlearn_audit.audit.lock import RunLockedError, ensure_idle

RANK_PREFIX = "difficulty_rank."
SPECIAL = ("index", "residual")


class RankError(ValueError):
    """The run directory cannot be ranked; the message says what to fix."""


@dataclass
class Table:
    """The forget rows of ``samples.csv`` (text cells) and what the run knows about them."""

    rows: list[dict[str, str]]
    columns: list[str]
    results: dict[str, Any]

    def methods(self) -> list[str]:
        """Methods with a difficulty rank, in column order."""
        return [c[len(RANK_PREFIX) :] for c in self.columns if c.startswith(RANK_PREFIX)]

    def features(self) -> list[str]:
        """Feature names, in column order."""
        return [c.removeprefix("feature.") for c in self.columns if c.startswith("feature.")]


def load_table(run_dir: str | Path) -> Table:
    """Read ``RUN/samples.csv`` (forget rows) and ``RUN/results.json`` if present."""
    run = Path(run_dir)
    if not run.is_dir():
        raise RankError(f"{run}: no such run directory")
    path = run / "samples.csv"
    if not path.is_file():
        raise RankError(f"{path}: file not found (is this a finished run directory?)")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            columns = [c.strip() for c in next(reader, [])]
            body = [r for r in reader if r]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RankError(f"{path}: cannot read it ({exc})") from None
    results: dict[str, Any] = {}
    res_path = run / "results.json"
    if res_path.is_file():
        try:
            loaded = json.loads(res_path.read_text(encoding="utf-8"))
            results = loaded if isinstance(loaded, dict) else {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            results = {}  # the table stands without it
    from unlearn_audit.reports.loading import damaged, has_classes, samples_problems

    problem = damaged(samples_problems(results or None, columns, body, str(path)))
    if problem:
        raise RankError(problem)
    rows = [dict(zip(columns, r, strict=False)) for r in body]
    rows = [r for r in rows if r.get("split") == "forget"]
    table = Table(rows, columns, results)
    if not table.methods():
        cfg = results.get("config") or {}
        if not has_classes(results):
            why = (
                f"the difficulty features need a classifier, and this run audited "
                f"{cfg.get('paradigm')} encoders"
            )
        else:
            why = (
                "the audit ran without the difficulty index (it needs attack.ulira = true and "
                "difficulty.enabled = true); rerun the audit with them (cached models are reused)"
            )
        raise RankError(f"{path} has no difficulty columns: {why}")
    return table


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
        column, sign = RANK_PREFIX + method, 1.0
    elif by in SPECIAL:
        column, sign = ("difficulty." if by == "index" else "residual.") + method, -1.0
    else:
        column, sign = f"feature.{by}", -1.0

    def key(row: dict[str, str]) -> tuple[bool, float, int]:
        v = _number(row.get(column))
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
                _fmt(row.get(RANK_PREFIX + method)),
                _fmt(row.get(f"difficulty.{method}")),
                _fmt(row.get(f"residual.{method}")),
                *(_fmt(row.get(f"feature.{f}")) for f in feats),
                row.get(f"flags.{method}", "") or "",
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
        raise RankError(f"--top must be >= 1, got {top}")
    methods = table.methods()
    if method is not None and method not in methods:
        raise RankError(
            f"no difficulty columns for method '{method}'; methods with them: {', '.join(methods)}"
        )
    feats = table.features()
    if by is not None and by not in (*feats, *SPECIAL):
        raise RankError(
            f"unknown feature '{by}'; valid: {', '.join(feats)} (or {', '.join(SPECIAL)})"
        )
    if method is None and not isinstance(table.results.get("models"), dict):
        raise RankError(
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
    except (RankError, RunLockedError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    line = summary_line(table, chosen)
    if line:
        click.echo(line)
    how = f"by {by}, largest first" if by else "by difficulty rank, 1 = hardest"
    click.echo(f"{min(top, len(table.rows))} of {len(table.rows)} forget samples ({how})")
    for text in render(table, chosen, by, top):
        click.echo(text)
