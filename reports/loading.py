"""Reading the on-disk run directory contract: ``results.json``, ``samples.csv``, ``signals.npz``.

This module knows only the file formats written by the audit pipeline; it never
imports the pipeline itself. ``results.json`` problems are fatal (:class:`ReportError`);
a missing or unreadable ``samples.csv`` or ``signals.npz`` only costs the report the
sections built from them, and comes back as a plain sentence for the report's notes.
A ``samples.csv`` that contradicts ``results.json`` (rows or columns missing) is fatal:
the run directory is damaged. :func:`samples_problems` and :func:`signals_problems`
are the one place that says what "consistent" means; ``unlearn-audit rank`` and
``unlearn-audit attack`` call them too.
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


DAMAGED = "the run directory is damaged; rerun the audit (its cached models are reused)"
BASE_COLUMNS = ("index", "id", "label", "split")
# split label in samples.csv / signals.npz -> the count results.json's ``data`` gives it
SPLIT_COUNTS = (
    ("forget", "n_forget"),
    ("retain", "n_retain"),
    ("nonmember", "n_nonmembers"),
    ("public", "n_public"),
)


def _one_line(text: str) -> str:
    """Collapses whitespace (including newlines) so error messages stay on one line."""
    return " ".join(str(text).split())


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
        cols += [f"{attack}.{model}" for attack in per_attack]
    for model, verdict in _dicts(results.get("verdicts")).items():
        if isinstance(_dicts(verdict).get("evidence", {}).get("records"), dict):
            cols += [f"pvalue.{model}", f"recognisable.{model}"]
    if isinstance(_dicts(results.get("power")).get("planted"), dict):
        cols.append("planted")
    for method, entry in _dicts(results.get("forgetting")).items():
        if "n_bank" in entry:
            cols += [f"ulira.{method}", f"epsilon.{method}"]
    for method, entry in _dicts(results.get("difficulty")).items():
        if "spearman" in entry:
            cols += [f"{p}.{method}" for p in ("difficulty", "difficulty_rank", "residual")]
            cols.append(f"flags.{method}")
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
    if "split" in header and (n_pool is None or len(rows) == n_pool):
        j = header.index("split")
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


def damaged(problems: list[str]) -> str | None:
    """The one-line error for a list of problems (None when there is none)."""
    if not problems:
        return None
    return _one_line("; ".join(problems) + f": {DAMAGED}")


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


def has_classes(results: dict[str, Any]) -> bool:
    """Whether the run's models give per-class logits (a classifier, not an encoder).

    The one reader of the paradigm's capability: results.json's ``paradigm.has_classes``,
    which the audit writes from the paradigm's declaration (``audit/paradigms.py``). A
    run written before that key reads its paradigm's name (``paradigm.name``, else
    ``config.paradigm``, else ``supervised``): then only ``supervised`` has classes.
    """
    block = results.get("paradigm")
    block = block if isinstance(block, dict) else {}
    if isinstance(flag := block.get("has_classes"), bool):
        return flag
    config = results.get("config")
    name = block.get("name") or (config if isinstance(config, dict) else {}).get("paradigm")
    return name in (None, "supervised")


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


def _results_if_any(run_dir: Path) -> dict[str, Any] | None:
    try:
        return load_results(run_dir)
    except ReportError:
        return None


def load_samples(
    run_dir: Path, results: dict[str, Any] | None = None
) -> tuple[Samples | None, str | None]:
    """Loads ``RUN/samples.csv`` and checks it against ``results.json``.

    ``index``, ``id``, ``label``, ``split``, ``flags`` and ``flags.<method>`` are kept as
    text; every other column is parsed as numbers.

    Args:
        run_dir: The run directory.
        results: The parsed ``results.json`` (default: read from ``run_dir`` if valid).

    Returns:
        ``(samples, None)`` on success, or ``(None, note)`` where ``note`` is a plain
        sentence explaining why no per-sample data is available (no file, unreadable).

    Raises:
        ReportError: The file contradicts ``results.json`` (:func:`samples_problems`):
            the run directory is damaged.
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
    known = results if results is not None else _results_if_any(run_dir)
    problem = damaged(samples_problems(known, header, body, str(path)))
    if problem:
        raise ReportError(problem)
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
