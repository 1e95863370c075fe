"""The per-sample section: the hardest-to-forget samples, with thumbnails and flags.

Ordering: by ``difficulty_rank`` (1 = hardest) when ``samples.csv`` has it, else by the
first audited method's ``difficulty_rank.<method>`` (with its ``difficulty.<method>`` and
``flags.<method>``); otherwise by
the verdict attack's score under the first audited method, highest first (the forgotten
samples an attacker still recognises most as training data). The section says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from unlearn_audit.reports.formatting import MISSING, as_dict, fmt_general, fmt_value
from unlearn_audit.reports.images import png_data_uri
from unlearn_audit.reports.verdict import REFERENCE, methods_audited
from unlearn_audit.runfiles import (
    DIFFICULTY,
    DIFFICULTY_RANK,
    EPSILON,
    FEATURE,
    FLAGS,
    RESIDUAL,
    SAMPLES_FILE,
    ULIRA,
    ForgetImages,
    Samples,
    column,
    columns_for,
)

N_HARDEST = 20
# Per-model column families shown in a model's cell: (csv prefix, label).
FAMILIES = ((EPSILON, "\u03b5"), (ULIRA, "U-LiRA"), (RESIDUAL, "residual"))
MEANINGS = {
    "score": "the verdict attack's membership score (higher = more recognisable as training data)",
    "\u03b5": "the per-sample privacy loss against retraining",
    "U-LiRA": "the unlearning-aware LiRA score",
    "residual": "the realised residual membership",
}


@dataclass(frozen=True)
class _Difficulty:
    """Which difficulty columns the table shows: one shared set, or one method's."""

    rank: str = DIFFICULTY_RANK
    index: str = DIFFICULTY
    flags: str = FLAGS
    method: str | None = None


def _difficulty_columns(samples: Samples, methods: list[str]) -> _Difficulty:
    """The shared ``difficulty_rank`` if present, else the first audited method's own."""
    if DIFFICULTY_RANK in samples.numeric:
        return _Difficulty()
    for method in methods:
        if column(DIFFICULTY_RANK, method) in samples.numeric:
            return _Difficulty(
                *(column(p, method) for p in (DIFFICULTY_RANK, DIFFICULTY, FLAGS)), method
            )
    return _Difficulty()


def _order(
    samples: Samples, rows: np.ndarray, attack: str, methods: list[str], cols: _Difficulty
) -> tuple[np.ndarray, str]:
    """Forget rows ordered hardest first, and the sentence that says how."""
    rank = samples.numeric.get(cols.rank)
    if rank is not None and np.isfinite(rank[rows]).any():
        key = np.where(np.isfinite(rank[rows]), rank[rows], np.inf)
        order = rows[np.argsort(key, kind="mergesort")]
        under = f" learned for {cols.method}" if cols.method else ""
        return order, f"Ordered by the combined difficulty rank{under} (1 = hardest to forget)."
    for method in methods:
        scores = samples.numeric.get(column(attack, method))
        if scores is not None and np.isfinite(scores[rows]).any():
            key = np.where(np.isfinite(scores[rows]), -scores[rows], np.inf)
            order = rows[np.argsort(key, kind="mergesort")]
            return order, (
                f"{SAMPLES_FILE} has no difficulty rank, so the samples are ordered by the "
                f"{attack} membership score under {method}, highest first: the forgotten "
                "samples an attacker still recognises most as training data."
            )
    return rows, f"{SAMPLES_FILE} has neither a difficulty rank nor scores; shown in file order."


def class_name(label: str, classes: Any) -> str:
    """The class name of a label cell (an index into ``data.classes``), else the cell."""
    if isinstance(classes, list) and label.strip().lstrip("-").isdigit():
        position = int(label)
        if 0 <= position < len(classes):
            name = fmt_value(classes[position])
            return name if name == str(position) else f"{name} ({position})"
    return label or MISSING


def _model_cell(samples: Samples, row: int, model: str, attack: str) -> list[str]:
    """Short ``label value`` lines of one sample under one model."""
    lines = []
    for prefix, label in ((attack, "score"), *FAMILIES):
        values = samples.numeric.get(column(prefix, model))
        if values is not None:
            lines.append(f"{label} {fmt_general(values[row])}")
    return lines


def pool_index(samples: Samples, row: int) -> int | None:
    """The pool index of a row (``index`` column), or ``None`` if it is not an integer."""
    cells = samples.text.get("index")
    text = cells[row] if cells is not None else str(row)
    return int(text) if text.strip().lstrip("-").isdigit() else None


def _has_columns(samples: Samples, model: str, attack: str) -> bool:
    """Whether ``samples.csv`` has any per-sample column of ``model``."""
    prefixes = (attack, *(prefix for prefix, _ in FAMILIES))
    return any(column(prefix, model) in samples.numeric for prefix in prefixes)


def thumbnail_uri(images: ForgetImages | None, positions: dict[int, int], pool: int | None) -> str:
    """The PNG ``data:`` URI of a forget sample's image, or ``""`` when it was not stored.

    Args:
        images: The forget images of ``signals.npz``.
        positions: ``images.by_index()`` (pool index to position), computed once.
        pool: The sample's pool index.
    """
    if images is None or pool is None:
        return ""
    image = positions.get(pool)
    return png_data_uri(images.images[image]) if image is not None else ""


@dataclass(frozen=True)
class _Layout:
    """What every row of the table shows."""

    attack: str
    models: list[str]
    features: list[str]
    classes: Any
    images: ForgetImages | None
    positions: dict[int, int]
    difficulty: _Difficulty


def _row(samples: Samples, row: int, position: int, layout: _Layout) -> dict[str, Any]:
    """One table row: rank, thumbnail, sample, class, difficulty, features, models, flags."""
    pool = pool_index(samples, row)
    thumbnail = thumbnail_uri(layout.images, layout.positions, pool)
    cols = layout.difficulty
    rank, difficulty = samples.numeric.get(cols.rank), samples.numeric.get(cols.index)
    ids, flags = samples.text.get("id"), samples.text.get(cols.flags)
    labels = samples.text.get("label")
    return {
        "rank": fmt_general(rank[row]) if rank is not None else str(position),
        "thumbnail": thumbnail,
        "index": str(pool) if pool is not None else MISSING,
        "id": ids[row] if ids is not None and ids[row] != str(pool) else "",
        "label": class_name(labels[row], layout.classes) if labels is not None else MISSING,
        "difficulty": fmt_general(difficulty[row]) if difficulty is not None else "",
        "features": [
            fmt_general(samples.numeric[column(FEATURE, name)][row]) for name in layout.features
        ],
        "models": [_model_cell(samples, row, m, layout.attack) for m in layout.models],
        "flags": [f.strip() for f in (flags[row] if flags else "").split(";") if f.strip()],
    }


def hardest_samples(
    results: dict[str, Any],
    samples: Samples | None,
    images: ForgetImages | None,
    attack: str,
    limit: int = N_HARDEST,
) -> dict[str, Any] | None:
    """The per-sample section, or ``None`` when ``samples.csv`` has no forget rows.

    Args:
        results: Parsed ``results.json`` (models, class names).
        samples: The per-sample table.
        images: Thumbnails of the forget samples, if the run stored them.
        attack: The verdict attack (its score orders the table when there is no rank).
        limit: Number of samples shown.

    Returns:
        The rows (display strings) and what the table's columns are.
    """
    forget = samples.rows("forget") if samples is not None else np.zeros(0, dtype=int)
    if samples is None or forget.size == 0:
        return None
    methods = methods_audited(as_dict(results.get("models")))
    cols = _difficulty_columns(samples, methods)
    order, order_note = _order(samples, forget, attack, methods, cols)
    layout = _Layout(
        attack=attack,
        models=[m for m in ("original", *methods, REFERENCE) if _has_columns(samples, m, attack)],
        features=list(columns_for(samples.numeric, FEATURE)),
        classes=as_dict(results.get("data")).get("classes"),
        images=images,
        positions=images.by_index() if images is not None else {},
        difficulty=cols,
    )
    rows = [_row(samples, int(r), i, layout) for i, r in enumerate(order[:limit], start=1)]
    labels = {line.split(" ")[0] for row in rows for cell in row["models"] for line in cell}
    legend = [f"{label} {MEANINGS[label]}" for label in MEANINGS if label in labels]
    single = len(labels) == 1
    if single:  # one value per model: no need to label it in every cell
        legend = [MEANINGS[labels.pop()]]
        for row in rows:
            row["models"] = [[line.split(" ", 1)[1] for line in cell] for cell in row["models"]]
    return {
        "order_note": order_note,
        "legend": "; ".join(legend),
        "shown": len(rows),
        "total": int(forget.size),
        "features": layout.features,
        "models": layout.models,
        "has_difficulty": cols.index in samples.numeric,
        "has_flags": cols.flags in samples.text,
        "single": single,
        "thumbnails": any(row["thumbnail"] for row in rows),
        "rows": rows,
        "href": SAMPLES_FILE,
    }
