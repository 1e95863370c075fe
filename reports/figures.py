"""The report's plots, built from ``samples.csv`` columns (no training, no audit internals).

- ROC: log-log, one curve per model, forget vs non-members and retain vs non-members.
- Signal: histograms of the forget samples' ``signal.<model>`` under the original, each
  unlearned model and the retrained reference.
- Epsilon: histogram of the per-sample ``epsilon.<model>`` of the forget set.
- Difficulty: the combined ``difficulty`` index against the realised ``residual.<model>``,
  with Spearman's rank correlation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unlearn_audit.reports.formatting import as_dict
from unlearn_audit.reports.plots import Curve, Panel, Series, histogram_svg, roc_svg, scatter_svg
from unlearn_audit.reports.roc import roc_auc, roc_curve
from unlearn_audit.reports.verdict import REFERENCE, methods_audited
from unlearn_audit.runfiles import DIFFICULTY, EPSILON, RESIDUAL, SIGNAL, Samples, has_classes

ORIGINAL = "original"


def colours(results: dict[str, Any], samples: Samples) -> dict[str, str]:
    """A fixed colour per model, shared by every plot (original dark grey, reference blue)."""
    names = list(as_dict(results.get("models")))
    for column in samples.numeric:
        suffix = column.partition(".")[2]
        if suffix and suffix not in names:
            names.append(suffix)
    palette = ["C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9"]
    out = {ORIGINAL: "0.25", REFERENCE: "C0"}
    others = [n for n in names if n not in out]
    out.update({name: palette[i % len(palette)] for i, name in enumerate(others)})
    return out


def _model_order(results: dict[str, Any], available: dict[str, str]) -> list[str]:
    """Models with a column, in results.json order first."""
    order = [m for m in as_dict(results.get("models")) if m in available]
    return order + [m for m in available if m not in order]


def roc_figure(results: dict[str, Any], samples: Samples, attack: str) -> str:
    """Log-log ROC panels of ``attack`` (forget and retain vs non-members), or ``""``."""
    columns = samples.columns_for(attack)
    palette = colours(results, samples)
    panels = []
    for split, title in (("forget", "forget set"), ("retain", "retain set")):
        curves = []
        for model in _model_order(results, columns):
            positive = samples.split_scores(columns[model], split)
            negative = samples.split_scores(columns[model], "nonmember")
            if positive.size == 0 or negative.size == 0:
                continue
            fpr, tpr = roc_curve(positive, negative)
            label = f"{model} (AUC {roc_auc(fpr, tpr):.3f})"
            curves.append(Curve(label, fpr, tpr, palette.get(model, "C7")))
        if curves:
            panels.append(Panel(f"{attack}: {title} vs non-members", curves))
    return roc_svg(panels, "True positive rate (members flagged)") if panels else ""


def signal_figure(results: dict[str, Any], samples: Samples) -> str:
    """Per method: forget-set signal under original, the method and the reference, or ``""``."""
    columns = samples.columns_for(SIGNAL)
    palette = colours(results, samples)
    methods = [m for m in methods_audited(as_dict(results.get("models"))) if m in columns]
    panels = []
    for method in methods:
        series = []
        for model, label in ((ORIGINAL, "original"), (method, method), (REFERENCE, "retrained")):
            values = samples.split_scores(columns[model], "forget") if model in columns else None
            if values is not None and values.size:
                series.append(Series(label, values, palette.get(model, "C7")))
        if len(series) > 1:
            panels.append(Panel(f"{method}: forget set", series))
    if not panels:
        return ""
    axis = "signal (logit-scaled confidence)"
    if not has_classes(results):
        axis = "membership signal"
    return histogram_svg(panels, axis, "forget samples")


def epsilon_figure(results: dict[str, Any], samples: Samples) -> str:
    """Histogram of the forget set's per-sample epsilon per model, or ``""``."""
    columns = samples.columns_for(EPSILON)
    palette = colours(results, samples)
    series = []
    for model in _model_order(results, columns):
        values = samples.split_scores(columns[model], "forget")
        if values.size:
            series.append(Series(model, values, palette.get(model, "C7")))
    if not series:
        return ""
    return histogram_svg(
        [Panel("per-sample \u03b5 of the forget set", series)], "\u03b5", "forget samples"
    )


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks ``1..n`` of ``values``, ties sharing the mean of their positions."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size, dtype=float)
    ranks[order] = np.arange(1, values.size + 1, dtype=float)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman's rank correlation (Pearson on average ranks), ``None`` if undefined."""
    if x.size < 3:
        return None
    rx, ry = average_ranks(x) - (x.size + 1) / 2, average_ranks(y) - (y.size + 1) / 2
    denom = float(np.sqrt(np.sum(rx * rx) * np.sum(ry * ry)))
    return float(np.sum(rx * ry) / denom) if denom > 0 else None


def difficulty_figure(results: dict[str, Any], samples: Samples) -> str:
    """Per method: difficulty index vs realised residual membership on the forget set."""
    shared = samples.numeric.get(DIFFICULTY)  # one index for every model (older runs)
    per_model = samples.columns_for(DIFFICULTY)  # the index learned for each method
    columns = {
        m: c
        for m, c in samples.columns_for(RESIDUAL).items()
        if shared is not None or m in per_model
    }
    if not columns:
        return ""
    palette = colours(results, samples)
    rows = samples.rows("forget")
    panels = []
    for model in _model_order(results, columns):
        index = samples.numeric[per_model[model]] if model in per_model else shared
        assert index is not None
        x, y = index[rows], samples.numeric[columns[model]][rows]
        keep = np.isfinite(x) & np.isfinite(y)
        if not keep.any():
            continue
        rho = spearman(x[keep], y[keep])
        title = f"{model}: Spearman \u03c1 = {rho:.2f}" if rho is not None else model
        panels.append(Panel(title, [Series(model, x[keep], palette.get(model, "C7"), y[keep])]))
    if not panels:
        return ""
    return scatter_svg(panels, "difficulty index (predicted)", "residual membership (realised)")
