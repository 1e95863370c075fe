"""Reading the on-disk run directory contract (``results.json`` and ``samples.csv``).

This module knows only the file formats written by the audit pipeline; it never
imports the pipeline itself. ``results.json`` problems are fatal (:class:`ReportError`),
while ``samples.csv`` problems only cost the report its ROC plot.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples.csv"
SPLITS = ("forget", "retain", "nonmember")


class ReportError(Exception):
    """Raised when a run directory cannot be turned into a report.

    The message is always a single line naming the offending file and the problem.
    """


def _one_line(text: str) -> str:
    """Collapses whitespace (including newlines) so error messages stay on one line."""
    return " ".join(str(text).split())


def load_results(run_dir: Path) -> dict[str, Any]:
    """Loads and minimally validates ``RUN/results.json``.

    Args:
        run_dir: The run directory.

    Returns:
        The parsed top-level JSON object.

    Raises:
        ReportError: If the file is missing, unreadable, not valid JSON, not a JSON
            object, or declares a ``schema_version`` other than 1.
    """
    path = run_dir / RESULTS_FILE
    if not path.is_file():
        raise ReportError(_one_line(f"{path}: file not found (is this a run directory?)"))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(_one_line(f"{path}: cannot read file: {exc}")) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(
            _one_line(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")
        ) from exc
    if not isinstance(data, dict):
        raise ReportError(
            _one_line(f"{path}: top level must be a JSON object, got {type(data).__name__}")
        )
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ReportError(
            _one_line(f"{path}: unsupported schema_version {version!r} (expected {SCHEMA_VERSION})")
        )
    return data


@dataclass
class Samples:
    """Per-sample attack scores from ``samples.csv``.

    Attributes:
        split: One split label per row (``forget``, ``retain``, ``nonmember`` or other).
        scores: Score column name (``{attack}.{model}``) to float array (NaN when blank).
    """

    split: list[str]
    scores: dict[str, np.ndarray] = field(default_factory=dict)

    def columns_for(self, attack: str) -> dict[str, str]:
        """Maps model name to score column for every ``{attack}.{model}`` column.

        Args:
            attack: Attack name, e.g. ``lira_online``.

        Returns:
            Model name to column name, in file column order.
        """
        prefix = attack + "."
        return {col[len(prefix) :]: col for col in self.scores if col.startswith(prefix)}

    def split_scores(self, column: str, split: str) -> np.ndarray:
        """Returns the finite scores of one column restricted to one split.

        Args:
            column: Score column name.
            split: Split label to select.

        Returns:
            1-D float array without NaN or infinite values.
        """
        values = self.scores[column]
        mask = np.asarray(self.split, dtype=object) == split
        chosen = values[mask]
        return chosen[np.isfinite(chosen)]


def _to_float(text: str) -> float:
    """Parses a CSV cell as float; blank or unparsable cells become NaN."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return math.nan
    return value


def load_samples(run_dir: Path) -> tuple[Samples | None, str | None]:
    """Loads ``RUN/samples.csv`` leniently.

    Columns ``index``, ``label`` and ``split`` are the fixed columns; every other column
    whose name contains a dot is treated as a score column ``{attack}.{model}``; any
    other column is ignored.

    Args:
        run_dir: The run directory.

    Returns:
        ``(samples, None)`` on success, or ``(None, note)`` where ``note`` is a plain
        sentence explaining why no samples are available.
    """
    path = run_dir / SAMPLES_FILE
    if not path.is_file():
        return None, f"{SAMPLES_FILE} not found; the ROC plot is omitted."
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            if "split" not in header:
                return None, f"{SAMPLES_FILE} has no 'split' column; the ROC plot is omitted."
            score_cols = [c for c in header if "." in c and c not in ("index", "label", "split")]
            split: list[str] = []
            raw: dict[str, list[float]] = {c: [] for c in score_cols}
            for row in reader:
                split.append((row.get("split") or "").strip())
                for col in score_cols:
                    raw[col].append(_to_float(row.get(col) or ""))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return None, _one_line(
            f"{SAMPLES_FILE} could not be read ({exc}); the ROC plot is omitted."
        )
    scores = {c: np.asarray(v, dtype=float) for c, v in raw.items()}
    return Samples(split=split, scores=scores), None
