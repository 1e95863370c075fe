"""Matplotlib figures rendered to inline SVG strings.

The figure is drawn on an explicitly attached Agg canvas (``FigureCanvasAgg``) rather
than through ``pyplot``, so no GUI backend is ever touched and the process-wide backend
of the caller is left alone. SVG output is made deterministic (fixed hash salt, no date)
and self-contained (text kept as ``<text>``, no external references, metadata removed).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FPR_MIN = 1e-3
_FLOOR = 1e-5  # zeros are drawn here, just outside the visible log axes
_METADATA_RE = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)


@dataclass(frozen=True)
class Curve:
    """One ROC curve to draw.

    Attributes:
        label: Legend text (any user string; mathtext ``$`` is neutralised).
        fpr: False-positive rates.
        tpr: True-positive rates.
    """

    label: str
    fpr: np.ndarray
    tpr: np.ndarray


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


def roc_svg(curves: Sequence[Curve], title: str) -> str:
    """Draws log-log ROC curves with a chance diagonal and returns them as inline SVG.

    Args:
        curves: The curves, one per model, drawn in order.
        title: Plot title (user text allowed).

    Returns:
        The SVG markup (see :func:`figure_to_svg`).
    """
    fig = Figure(figsize=(6.4, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    chance = np.array([FPR_MIN, 1.0])
    ax.plot(chance, chance, linestyle="--", color="0.55", linewidth=1.0, label="chance")
    for curve in curves:
        x = np.maximum(np.asarray(curve.fpr, dtype=float), _FLOOR)
        y = np.maximum(np.asarray(curve.tpr, dtype=float), _FLOOR)
        ax.plot(x, y, linewidth=1.5, label=_plain(curve.label))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(FPR_MIN, 1.0)
    ax.set_ylim(FPR_MIN, 1.0)
    ax.set_xlabel("False positive rate (non-members flagged)")
    ax.set_ylabel("True positive rate (forget set flagged)")
    ax.set_title(_plain(title), fontsize=10)
    ax.grid(True, which="major", linewidth=0.5, alpha=0.5)
    ax.legend(loc="lower right", fontsize=8, frameon=True)
    return figure_to_svg(fig)
