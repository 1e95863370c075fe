"""The one reader of a run directory: ``results.json``, ``samples.csv``, ``signals.npz``.

Every reader of the toolkit goes through here: the report (:mod:`reports`),
``unlearn-audit rank`` and ``unlearn-audit attack``. Each failure raises
:class:`~runfiles.errors.RunFileError` with one line naming the file and the problem.
``results.json`` problems are fatal; for the report a missing or unreadable
``samples.csv`` or ``signals.npz`` only costs the sections built from them and comes
back as a plain sentence for its notes. A ``samples.csv`` or a run's ``signals.npz``
that contradicts ``results.json`` (:mod:`runfiles.checks`) is fatal for every reader:
the run directory is damaged.
"""

from __future__ import annotations

import csv
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unlearn_audit.runfiles.checks import samples_problems, signals_problems
from unlearn_audit.runfiles.errors import RunFileError, damaged, one_line
from unlearn_audit.runfiles.names import (
    RESULTS_FILE,
    SAMPLES_FILE,
    SIGNALS_FILE,
    SPLIT_COLUMN,
    SUPPORTED_SCHEMAS,
    columns_for,
    is_text_column,
)


def run_directory(path: str | Path) -> Path:
    """``path`` as a run directory (raises :class:`RunFileError` when there is no such folder)."""
    run = Path(path)
    if not run.is_dir():
        raise RunFileError(f"{path}: no such run directory")
    return run


def read_results(run_dir: Path, *, any_schema: bool = False) -> dict[str, Any]:
    """Loads and minimally validates ``RUN/results.json``.

    Args:
        run_dir: The run directory.
        any_schema: Accept any ``schema_version`` (the commands read only the blocks
            that every schema has).

    Returns:
        The parsed top-level JSON object.

    Raises:
        RunFileError: If the file is missing, unreadable, not valid JSON, not a JSON
            object, or declares a ``schema_version`` other than 1 or 2.
    """
    path = run_dir / RESULTS_FILE
    if not path.is_file():
        raise RunFileError(one_line(f"{path}: file not found (is this a run directory?)"))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFileError(one_line(f"{path}: cannot read file: {exc}")) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunFileError(
            one_line(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")
        ) from exc
    if not isinstance(data, dict):
        raise RunFileError(
            one_line(f"{path}: top level must be a JSON object, got {type(data).__name__}")
        )
    version = data.get("schema_version", 1)
    if not any_schema and (isinstance(version, bool) or version not in SUPPORTED_SCHEMAS):
        expected = " or ".join(str(v) for v in SUPPORTED_SCHEMAS)
        raise RunFileError(
            one_line(f"{path}: unsupported schema_version {version!r} (expected {expected})")
        )
    return data


def results_if_any(run_dir: Path, *, any_schema: bool = False) -> dict[str, Any] | None:
    """``RUN/results.json`` when it is there and valid, else None (nothing to check against)."""
    try:
        return read_results(run_dir, any_schema=any_schema)
    except RunFileError:
        return None


# -- samples.csv ------------------------------------------------------------------------
def _paradigm(results: dict[str, Any]) -> dict[str, Any]:
    block = results.get("paradigm")
    return block if isinstance(block, dict) else {}


def has_classes(results: dict[str, Any]) -> bool:
    """Whether the run's models give per-class logits (a classifier, not an encoder).

    The one reader of the paradigm's capability: results.json's ``paradigm.has_classes``,
    which the audit writes from the paradigm's declaration (``audit/paradigms.py``). A
    run written before that key reads its paradigm's name (``paradigm.name``, else
    ``config.paradigm``, else ``supervised``): then only ``supervised`` has classes.
    """
    block = _paradigm(results)
    if isinstance(flag := block.get("has_classes"), bool):
        return flag
    config = results.get("config")
    name = block.get("name") or (config if isinstance(config, dict) else {}).get("paradigm")
    return name in (None, "supervised")


def difficulty_recorded(results: dict[str, Any]) -> bool:
    """Whether results.json records ``paradigm.difficulty`` (runs written before it do not)."""
    return isinstance(_paradigm(results).get("difficulty"), bool)


def has_difficulty(results: dict[str, Any]) -> bool:
    """Whether the run's paradigm supplies per-sample difficulty features.

    results.json's ``paradigm.difficulty``, which the audit writes from the paradigm's
    ``difficulty_features``. A run written before that key falls back to
    :func:`has_classes`: its audit computed difficulty for classifiers only.
    """
    if difficulty_recorded(results):
        return bool(_paradigm(results)["difficulty"])
    return has_classes(results)


def _csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header (names stripped) and the non-empty data rows of a CSV file."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        return header, [row for row in reader if row]


def _refuse_damaged(
    results: dict[str, Any] | None, header: list[str], body: list[list[str]], path: Path
) -> None:
    problem = damaged(samples_problems(results, header, body, str(path)))
    if problem:
        raise RunFileError(problem)


@dataclass(frozen=True)
class SampleRows:
    """``samples.csv`` as text, checked against ``results.json``.

    Attributes:
        path: The file.
        header: The column names, in file order.
        rows: The data rows, one list of cells (verbatim) per pool sample.
    """

    path: Path
    header: list[str]
    rows: list[list[str]]


def read_sample_rows(run_dir: Path, results: dict[str, Any] | None = None) -> SampleRows:
    """Reads ``RUN/samples.csv`` as text, for a command that cannot do without it.

    Args:
        run_dir: The run directory.
        results: The parsed ``results.json`` to check the file against (None: not checked).

    Raises:
        RunFileError: The file is missing or unreadable, or contradicts ``results.json``.
    """
    path = run_dir / SAMPLES_FILE
    if not path.is_file():
        raise RunFileError(f"{path}: file not found (is this a finished run directory?)")
    try:
        header, body = _csv(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RunFileError(f"{path}: cannot read it ({exc})") from None
    _refuse_damaged(results, header, body, path)
    return SampleRows(path, header, body)


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
        return columns_for(self.numeric, prefix)

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


def read_samples(
    run_dir: Path, results: dict[str, Any] | None = None
) -> tuple[Samples | None, str | None]:
    """Loads ``RUN/samples.csv`` for the report and checks it against ``results.json``.

    ``index``, ``id``, ``label``, ``split``, ``flags`` and ``flags.<method>`` are kept as
    text; every other column is parsed as numbers.

    Args:
        run_dir: The run directory.
        results: The parsed ``results.json`` (default: read from ``run_dir`` if valid).

    Returns:
        ``(samples, None)`` on success, or ``(None, note)`` where ``note`` is a plain
        sentence explaining why no per-sample data is available (no file, unreadable).

    Raises:
        RunFileError: The file contradicts ``results.json`` (:func:`samples_problems`):
            the run directory is damaged.
    """
    path = run_dir / SAMPLES_FILE
    lost = "the plots and the per-sample table are omitted"
    if not path.is_file():
        return None, f"{SAMPLES_FILE} not found; {lost}."
    try:
        header, body = _csv(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return None, one_line(f"{SAMPLES_FILE} could not be read ({exc}); {lost}.")
    if SPLIT_COLUMN not in header:
        return None, f"{SAMPLES_FILE} has no '{SPLIT_COLUMN}' column; {lost}."
    known = results if results is not None else results_if_any(run_dir)
    _refuse_damaged(known, header, body, path)
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
    split = np.asarray(text.pop(SPLIT_COLUMN), dtype=object)
    return Samples(split=split, numeric=numeric, text=text), None


# -- signals.npz ------------------------------------------------------------------------
def read_signals(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of a signal bank ``.npz`` (a run's ``signals.npz`` or the user's own).

    Loaded with ``allow_pickle=False``. Raises :class:`RunFileError` when the file is
    missing or is not a readable ``.npz`` archive.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise RunFileError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise RunFileError(f"{path}: not a readable .npz file ({exc})") from None


def check_run_signals(path: str | Path, data: dict[str, np.ndarray], n_samples: int) -> None:
    """A run directory's ``signals.npz`` must agree with the ``results.json`` beside it.

    A file of another name, without ``n_shadows``, or without a ``results.json`` beside
    it is a plain signal bank and is not checked. Raises :class:`RunFileError` naming
    what contradicts ``results.json`` (:func:`signals_problems`).
    """
    run = Path(path).parent
    if Path(path).name != SIGNALS_FILE or "n_shadows" not in data:
        return
    if not (run / RESULTS_FILE).is_file():
        return
    results = read_results(run, any_schema=True)
    names = [str(x) for x in data["model_names"]] if "model_names" in data else None
    split = [str(x) for x in data["split"]] if "split" in data else None
    problem = damaged(
        signals_problems(results, n_samples, names, int(data["n_shadows"]), split, str(path))
    )
    if problem:
        raise RunFileError(problem)


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


def read_forget_images(run_dir: Path) -> tuple[ForgetImages | None, str | None]:
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
        return None, one_line(f"{SIGNALS_FILE} could not be read ({exc}); no thumbnails.")
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
