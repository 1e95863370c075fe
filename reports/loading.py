"""Reading the on-disk run directory contract: ``results.json``, ``samples.csv``, ``signals.npz``.

This module knows only the file formats written by the audit pipeline; it never
imports the pipeline itself. ``results.json`` problems are fatal (:class:`ReportError`);
``samples.csv`` and ``signals.npz`` problems only cost the report the sections built
from them, and come back as a plain sentence for the report's notes.
"""

from __future__ import annotations

import csv
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_VERSION = 2
# 1: the original contract; 2 adds the residual estimate, per-record evidence, the power
# block and the planted control (all optional for the report: a section without its data
# is left out).
SUPPORTED_SCHEMAS = (1, 2)
RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples.csv"
SIGNALS_FILE = "signals.npz"
TEXT_COLUMNS = ("index", "id", "label", "split", "flags")


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
            object, or declares a ``schema_version`` other than 1 or 2.
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
    version = data.get("schema_version", 1)
    if isinstance(version, bool) or version not in SUPPORTED_SCHEMAS:
        expected = " or ".join(str(v) for v in SUPPORTED_SCHEMAS)
        raise ReportError(
            _one_line(f"{path}: unsupported schema_version {version!r} (expected {expected})")
        )
    return data


@dataclass
class Samples:
    """The per-sample table of ``samples.csv``.

    Attributes:
        split: One split label per row (``forget``, ``retain``, ``nonmember`` or other).
        numeric: Every column other than the text columns, as floats (NaN when blank or
            not a number), in file column order. Names look like ``{attack}.{model}``,
            ``signal.{model}``, ``epsilon.{model}``, ``feature.{name}``, ``difficulty`` or
            ``difficulty.{method}``, ``difficulty_rank[.{method}]``, ``residual.{method}``.
        text: The text columns present (``index``, ``id``, ``label``, ``flags``,
            ``flags.{method}``), verbatim.
    """

    split: np.ndarray
    numeric: dict[str, np.ndarray] = field(default_factory=dict)
    text: dict[str, list[str]] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        """Number of data rows."""
        return int(self.split.size)

    def columns_for(self, prefix: str) -> dict[str, str]:
        """Maps suffix to column name for every numeric ``{prefix}.{suffix}`` column.

        Args:
            prefix: Column family, e.g. an attack name (``lira_online``) or ``epsilon``.

        Returns:
            Suffix (usually a model name) to column name, in file column order.
        """
        start = prefix + "."
        return {c[len(start) :]: c for c in self.numeric if c.startswith(start)}

    def rows(self, split: str) -> np.ndarray:
        """Row positions of one split, in file order."""
        return np.flatnonzero(self.split == split)

    def split_scores(self, column: str, split: str) -> np.ndarray:
        """Returns the finite values of one numeric column restricted to one split.

        Args:
            column: Numeric column name.
            split: Split label to select.

        Returns:
            1-D float array without NaN or infinite values.
        """
        chosen = self.numeric[column][self.split == split]
        return chosen[np.isfinite(chosen)]


def is_text_column(name: str) -> bool:
    """Whether a ``samples.csv`` column holds text (identifiers, split, flags)."""
    return name in TEXT_COLUMNS or name.startswith("flags.")


def _floats(cells: list[str]) -> np.ndarray:
    """Parses CSV cells as floats; blank or unparsable cells become NaN."""
    try:
        return np.asarray(cells, dtype=float)
    except ValueError:
        out = np.full(len(cells), np.nan)
        for i, cell in enumerate(cells):
            try:
                out[i] = float(cell)
            except ValueError:
                continue
        return out


def load_samples(run_dir: Path) -> tuple[Samples | None, str | None]:
    """Loads ``RUN/samples.csv`` leniently.

    ``index``, ``id``, ``label``, ``split``, ``flags`` and ``flags.<method>`` are kept as
    text; every other column is parsed as numbers.

    Args:
        run_dir: The run directory.

    Returns:
        ``(samples, None)`` on success, or ``(None, note)`` where ``note`` is a plain
        sentence explaining why no per-sample data is available.
    """
    path = run_dir / SAMPLES_FILE
    lost = "the plots and the per-sample table are omitted"
    if not path.is_file():
        return None, f"{SAMPLES_FILE} not found; {lost}."
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            body = [row for row in reader if row]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return None, _one_line(f"{SAMPLES_FILE} could not be read ({exc}); {lost}.")
    if "split" not in header:
        return None, f"{SAMPLES_FILE} has no 'split' column; {lost}."
    width = len(header)
    columns: list[list[str]] = [[] for _ in header]
    for row in body:
        cells = row[:width] + [""] * (width - len(row))
        for j, cell in enumerate(cells):
            columns[j].append(cell.strip())
    text = {name: columns[j] for j, name in enumerate(header) if is_text_column(name)}
    numeric = {
        name: _floats(columns[j]) for j, name in enumerate(header) if not is_text_column(name)
    }
    split = np.asarray(text.pop("split"), dtype=object)
    return Samples(split=split, numeric=numeric, text=text), None


@dataclass(frozen=True)
class ForgetImages:
    """Images of the forget samples from ``signals.npz``.

    Attributes:
        images: ``(k, c, h, w)`` floats in ``[0, 1]`` (``c`` is 1 or 3).
        index: ``(k,)`` pool indices of the images.
    """

    images: np.ndarray
    index: np.ndarray

    def by_index(self) -> dict[int, int]:
        """Pool index to position in :attr:`images`."""
        return {int(pool): pos for pos, pool in enumerate(self.index)}


def load_forget_images(run_dir: Path) -> tuple[ForgetImages | None, str | None]:
    """Loads ``forget_images`` and ``forget_index`` from ``RUN/signals.npz`` (no pickles).

    Args:
        run_dir: The run directory.

    Returns:
        ``(images, None)``; ``(None, None)`` when the file or the arrays are simply absent;
        ``(None, note)`` when they are present but unusable.
    """
    path = run_dir / SIGNALS_FILE
    if not path.is_file():
        return None, None
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "forget_images" not in npz.files or "forget_index" not in npz.files:
                return None, None
            images = np.asarray(npz["forget_images"], dtype=float)
            index = np.asarray(npz["forget_index"])
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        return None, _one_line(f"{SIGNALS_FILE} could not be read ({exc}); no thumbnails.")
    ok = (
        images.ndim == 4
        and images.shape[1] in (1, 3)
        and index.ndim == 1
        and index.size == images.shape[0]
        and np.issubdtype(index.dtype, np.integer)
    )
    if not ok:
        return None, (
            f"{SIGNALS_FILE}: forget_images {images.shape} / forget_index {index.shape} do not "
            "have the shapes (k, c, h, w) / (k,) with c 1 or 3; no thumbnails."
        )
    clean = np.clip(np.nan_to_num(images, nan=0.0), 0.0, 1.0)
    return ForgetImages(images=clean, index=index.astype(np.int64)), None
