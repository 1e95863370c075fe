"""The records section: forget records still recognisable as training data, one by one.

From schema_version 2, ``verdicts.<model>.evidence.records`` holds ``{"attack", "fdr",
"n_forget", "n_recognisable", "recognisable": [pool indices]}``: the forget records whose
p-value of "this record is a non-member" (its LiRA-offline test, calibrated on the model's
own non-members, ``samples.csv`` column ``pvalue.<model>``; docs/verdict.md) survives
the Benjamini-Hochberg procedure at false discovery rate ``fdr`` (``recognisable.<model>``
is 1 on them). The planted control's kept records are ``planted`` = 1.

The section has one count per judged model (methods first, then the controls) and, for
each model with any such record, the records themselves (most recognisable first) with
their thumbnails from ``signals.npz`` and their p-values. Runs without record evidence
(schema_version 1) have no such section.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from unlearn_audit.reports.formatting import (
    MISSING,
    as_dict,
    as_float,
    fmt_general,
    fmt_pct,
    fmt_value,
)
from unlearn_audit.reports.persample import class_name, pool_index, thumbnail_uri
from unlearn_audit.reports.verdict import CONTROLS, PLANTED, verdict_rows
from unlearn_audit.runfiles import (
    PLANTED_COLUMN,
    PVALUE,
    RECOGNISABLE,
    SAMPLES_FILE,
    ForgetImages,
    Samples,
    column,
)

N_LISTED = 24


def _count(value: Any) -> int | None:
    """A non-negative integer count, else ``None``."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else None


def _pools(value: Any) -> list[int]:
    """The integer pool indices of a ``recognisable`` list (anything else is dropped)."""
    if not isinstance(value, list):
        return []
    return [int(v) for v in value if isinstance(v, int) and not isinstance(v, bool)]


def _fdr_text(value: Any) -> str:
    """A false discovery rate as a percentage, e.g. ``0.1`` -> ``10%``."""
    number = as_float(value)
    return f"{fmt_general(number * 100)}%" if number is not None else MISSING


def _forget_rows(samples: Samples | None) -> dict[int, int]:
    """Pool index to ``samples.csv`` row, over the forget rows."""
    if samples is None:
        return {}
    out = {}
    for row in samples.rows("forget"):
        pool = pool_index(samples, int(row))
        if pool is not None:
            out[pool] = int(row)
    return out


class _Lookup:
    """What the record list shows of each pool index: thumbnail, class, p-value, planted."""

    def __init__(
        self, results: dict[str, Any], samples: Samples | None, images: ForgetImages | None
    ) -> None:
        self.samples = samples
        self.images = images
        self.positions = images.by_index() if images is not None else {}
        self.rows = _forget_rows(samples)
        self.classes = as_dict(results.get("data")).get("classes")

    def _cell(self, column: str, pool: int) -> float:
        """A numeric ``samples.csv`` cell of a forget record (NaN when absent)."""
        values = self.samples.numeric.get(column) if self.samples is not None else None
        row = self.rows.get(pool)
        return float(values[row]) if values is not None and row is not None else math.nan

    def item(self, model: str, pool: int) -> dict[str, Any]:
        """One listed record."""
        row = self.rows.get(pool)
        labels = self.samples.text.get("label") if self.samples is not None else None
        pvalue = self._cell(column(PVALUE, model), pool)
        return {
            "index": str(pool),
            "thumbnail": thumbnail_uri(self.images, self.positions, pool),
            "label": class_name(labels[row], self.classes) if labels and row is not None else "",
            "pvalue": fmt_general(pvalue) if np.isfinite(pvalue) else "",
            "sort": pvalue if np.isfinite(pvalue) else math.inf,
            "kept": model == PLANTED and self._cell(PLANTED_COLUMN, pool) == 1.0,
        }


def _judged(results: dict[str, Any]) -> list[str]:
    """Judged models in report order: methods first, then the controls."""
    verdicts = as_dict(results.get("verdicts"))
    return [row["model"] for row in verdict_rows(results)] + [c for c in CONTROLS if c in verdicts]


def _planted_note(results: dict[str, Any], items: list[dict[str, Any]]) -> str:
    """How many of the planted control's recognisable records it was in fact trained on."""
    n_planted = _count(as_dict(as_dict(results.get("power")).get("planted")).get("n_planted"))
    kept = sum(item["kept"] for item in items)
    trained = f"the {n_planted} records" if n_planted is not None else "the records"
    return (
        f"{kept} of these {len(items)} are among {trained} it was trained on (marked kept; "
        f"{SAMPLES_FILE} column {PLANTED_COLUMN}): the more, the better the per-record test "
        "points at what a model remembers."
    )


def _listing(
    results: dict[str, Any], model: str, pools: list[int], lookup: _Lookup, limit: int
) -> dict[str, Any]:
    """The listed records of one model, most recognisable (smallest p-value) first."""
    items = sorted(
        (lookup.item(model, p) for p in pools), key=lambda i: (i["sort"], int(i["index"]))
    )
    shown, more = items[:limit], len(items) - limit
    noun = "record" if len(items) == 1 else "records"
    columns = f"columns {column(PVALUE, model)} and {column(RECOGNISABLE, model)}"
    return {
        "model": model,
        "title": f"{len(items)} {noun} still recognisable",
        "records": shown,
        "thumbnails": any(i["thumbnail"] for i in shown),
        "note": _planted_note(results, items) if model == PLANTED else "",
        "more": (
            f"The {len(shown)} most recognisable are shown; {more} more are in "
            f"{SAMPLES_FILE} ({columns})."
            if more > 0
            else ""
        ),
    }


def records_section(
    results: dict[str, Any],
    samples: Samples | None,
    images: ForgetImages | None,
    limit: int = N_LISTED,
) -> dict[str, Any] | None:
    """The count table and the record lists, or ``None`` when no verdict records them.

    Args:
        results: Parsed ``results.json``.
        samples: The per-sample table (p-values, classes, planted records), if readable.
        images: Thumbnails of the forget samples, if the run stored them.
        limit: At most this many records are listed per model.
    """
    verdicts = as_dict(results.get("verdicts"))
    lookup = _Lookup(results, samples, images)
    rows, lists, how = [], [], set()
    for name in _judged(results):
        records = as_dict(as_dict(as_dict(verdicts[name]).get("evidence")).get("records"))
        found, total = _count(records.get("n_recognisable")), _count(records.get("n_forget"))
        if found is None or total is None:
            continue
        attack, fdr = fmt_value(records.get("attack")), _fdr_text(records.get("fdr"))
        how.add((attack, fdr))
        rows.append(
            {
                "model": name,
                "role": "control" if name in CONTROLS else "method",
                "count": f"{found} of {total}",
                "share": fmt_pct(found / total) if total else MISSING,
                "attack": attack,
                "fdr": fdr,
            }
        )
        pools = _pools(records.get("recognisable"))
        if pools:
            lists.append(_listing(results, name, pools, lookup, limit))
    if not rows:
        return None
    attack, fdr = next(iter(how)) if len(how) == 1 else ("", "")
    return {
        "rows": rows,
        "lists": lists,
        "per_row": len(how) > 1,
        "attack": attack,
        "fdr": fdr,
        "href": SAMPLES_FILE if samples is not None else "",
    }
