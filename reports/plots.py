"""Matplotlib figures rendered to inline SVG strings.

Figures are drawn on an explicitly attached Agg canvas (``FigureCanvasAgg``) rather than
through ``pyplot``, so no GUI backend is ever touched and the process-wide backend of
the caller is left alone. SVG output is made deterministic (fixed hash salt, no date)
and self-contained (text kept as ``<text>``, no external references, metadata removed).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FPR_MIN = 1e-3
_FLOOR = 1e-5  # zeros are drawn here, just outside the visible log axes
_METADATA_RE = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
_MAX_COLS = 3
BINS = 30


@dataclass(frozen=True)
class Curve:
    """One ROC curve to draw.

    Attributes:
        label: Legend text (any user string; mathtext ``$`` is neutralised).
        fpr: False-positive rates.
        tpr: True-positive rates.
        colour: A matplotlib colour.
    """

    label: str
    fpr: np.ndarray
    tpr: np.ndarray
    colour: str = "C0"


@dataclass(frozen=True)
class Series:
    """One distribution (histogram) or point cloud (scatter) in a panel.

    Attributes:
        label: Legend text.
        x: Values (histogram) or x coordinates (scatter).
        colour: A matplotlib colour.
        y: y coordinates (scatter only).
    """

    label: str
    x: np.ndarray
    colour: str = "C0"
    y: np.ndarray | None = None


@dataclass(frozen=True)
class Panel:
    """One subplot: a title and its series (or curves)."""

    title: str
    series: Sequence[Series | Curve]


def _plain(text: str) -> str:
    """Escapes ``$`` so matplotlib never interprets user text as mathtext."""
    return text.replace("$", r"\$")


def figure_to_svg(fig: Figure) -> str:
    """Serialises a figure to an SVG fragment suitable for inlining in HTML.

    The XML prolog, DOCTYPE and RDF metadata block are stripped, so the string starts
    with ``<svg``.

    Args:
        fig: The figure to serialise.

    Returns:
        The ``<svg ...>...</svg>`` markup.
    """
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "unlearn-audit-report"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    start = text.find("<svg")
    if start < 0:
        raise RuntimeError("matplotlib produced no <svg> element")
    return _METADATA_RE.sub("", text[start:], count=1).strip()


def _grid(n_panels: int, width: float = 4.3, height: float = 3.3) -> tuple[Figure, list[Axes]]:
    """A figure with ``n_panels`` subplots, at most three per row."""
    cols = max(1, min(n_panels, _MAX_COLS))
    rows = max(1, math.ceil(n_panels / cols))
    fig = Figure(figsize=(width * cols, height * rows))
    FigureCanvasAgg(fig)
    fig.subplots_adjust(wspace=0.28, hspace=0.42)
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n_panels)]
    return fig, axes


def roc_svg(panels: Sequence[Panel], ylabel: str = "True positive rate") -> str:
    """Draws log-log ROC panels, each with a chance diagonal, as inline SVG.

    Args:
        panels: One panel per comparison; their series are :class:`Curve` objects.
        ylabel: Label of the y axis.

    Returns:
        The SVG markup (see :func:`figure_to_svg`).
    """
    fig, axes = _grid(len(panels), 5.2, 4.2)
    chance = np.array([FPR_MIN, 1.0])
    for ax, panel in zip(axes, panels, strict=True):
        ax.plot(chance, chance, linestyle="--", color="0.55", linewidth=1.0, label="chance")
        for curve in panel.series:
            assert isinstance(curve, Curve)
            x = np.maximum(np.asarray(curve.fpr, dtype=float), _FLOOR)
            y = np.maximum(np.asarray(curve.tpr, dtype=float), _FLOOR)
            ax.plot(x, y, linewidth=1.5, color=curve.colour, label=_plain(curve.label))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.minorticks_off()
        ax.set_xlim(FPR_MIN, 1.0)
        ax.set_ylim(FPR_MIN, 1.0)
        ax.set_xlabel("False positive rate (non-members flagged)")
        ax.set_ylabel(ylabel)
        ax.set_title(_plain(panel.title), fontsize=10)
        ax.grid(True, which="major", linewidth=0.5, alpha=0.5)
        ax.legend(loc="lower right", fontsize=7.5, frameon=True)
    return figure_to_svg(fig)


def histogram_svg(panels: Sequence[Panel], xlabel: str, ylabel: str = "samples") -> str:
    """Draws overlaid step histograms, one panel per entry, sharing bins within a panel.

    Args:
        panels: Panels whose series are :class:`Series` (only ``x`` is used).
        xlabel: Label of every x axis.
        ylabel: Label of every y axis.

    Returns:
        The SVG markup.
    """
    fig, axes = _grid(len(panels))
    for ax, panel in zip(axes, panels, strict=True):
        values = [np.asarray(s.x, dtype=float) for s in panel.series if isinstance(s, Series)]
        pooled = np.concatenate(values) if values else np.zeros(1)
        edges = np.histogram_bin_edges(pooled, bins=BINS)
        for series, data in zip(panel.series, values, strict=True):
            ax.hist(
                data,
                bins=edges.tolist(),
                histtype="step",
                linewidth=1.6,
                color=series.colour,
                label=_plain(series.label),
            )
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(_plain(panel.title), fontsize=10)
        ax.grid(True, linewidth=0.5, alpha=0.4)
        ax.legend(fontsize=7.5, frameon=True)
    return figure_to_svg(fig)


def scatter_svg(panels: Sequence[Panel], xlabel: str, ylabel: str) -> str:
    """Draws one scatter plot per panel (series with both ``x`` and ``y``).

    Args:
        panels: Panels whose series are :class:`Series` with ``y`` set.
        xlabel: Label of every x axis.
        ylabel: Label of every y axis.

    Returns:
        The SVG markup.
    """
    fig, axes = _grid(len(panels))
    for ax, panel in zip(axes, panels, strict=True):
        for series in panel.series:
            if not isinstance(series, Series) or series.y is None:
                continue
            ax.scatter(
                series.x,
                series.y,
                s=12,
                alpha=0.75,
                color=series.colour,
                edgecolors="none",
                label=_plain(series.label),
            )
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(_plain(panel.title), fontsize=10)
        ax.grid(True, linewidth=0.5, alpha=0.4)
    return figure_to_svg(fig)
