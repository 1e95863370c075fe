"""Number and value formatting for the report.

Templates do no arithmetic: every number is turned into display text here. Missing,
non-numeric or non-finite values are shown as an em dash.
"""

from __future__ import annotations

import json
import math
from typing import Any

MISSING = "\u2014"


def as_float(value: Any) -> float | None:
    """Returns ``value`` as a finite float, or ``None`` if it is not a finite number.

    Args:
        value: Any JSON value.

    Returns:
        The float, or ``None`` for missing, boolean, non-numeric or non-finite input.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _rounded(number: float, digits: int) -> float:
    """Rounds for display, mapping ``-0.0`` to ``0.0`` so nothing prints as ``-0.0``."""
    return round(number, digits) + 0.0


def fmt_pct(value: Any, digits: int = 1) -> str:
    """Formats a fraction as a percentage, e.g. ``0.953`` -> ``95.3%``."""
    number = as_float(value)
    if number is None:
        return MISSING
    return f"{_rounded(number * 100, digits):.{digits}f}%"


def fmt_pp(value: Any, digits: int = 1) -> str:
    """Formats a signed difference of fractions in percentage points, e.g. ``+1.5 pp``."""
    number = as_float(value)
    if number is None:
        return MISSING
    return f"{_rounded(number * 100, digits):+.{digits}f} pp"


def fmt_fixed(value: Any, digits: int = 3) -> str:
    """Formats a number with a fixed number of decimals, e.g. an AUC ``0.710``."""
    number = as_float(value)
    if number is None:
        return MISSING
    return f"{_rounded(number, digits):.{digits}f}"


def fmt_general(value: Any, digits: int = 3) -> str:
    """Formats a number with ``digits`` significant digits (for p-values and the like)."""
    number = as_float(value)
    if number is None:
        return MISSING
    return f"{number + 0.0:.{digits}g}"


def fmt_interval(value: Any, digits: int = 3) -> str:
    """Formats a two-element ``[lo, hi]`` list as ``[0.650, 0.770]``, else an empty string."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        return ""
    low, high = as_float(value[0]), as_float(value[1])
    if low is None or high is None:
        return ""
    return f"[{fmt_fixed(low, digits)}, {fmt_fixed(high, digits)}]"


def fmt_share(value: Any) -> str:
    """Formats a residual share as a whole percentage: ``0.118`` -> ``12%``, ``-1.04`` -> ``-104%``.

    Residual estimates are coarse (their intervals span tens of points), so no decimals.
    """
    number = as_float(value)
    if number is None:
        return MISSING
    return f"{_rounded(number * 100, 0):.0f}%"


def fmt_level(value: Any) -> str:
    """Formats an interval's level as a percentage without trailing zeros: ``95%``, ``98.33%``."""
    number = as_float(value)
    if number is None:
        return ""
    return f"{number * 100:.2f}".rstrip("0").rstrip(".") + "%"


def fmt_seconds(value: Any) -> str:
    """Formats a duration in seconds: two decimals below 10 s, one decimal above."""
    number = as_float(value)
    if number is None:
        return MISSING
    digits = 2 if abs(number) < 10 else 1
    return f"{number:.{digits}f} s"


def fmt_value(value: Any) -> str:
    """Formats an arbitrary JSON value as display text (strings verbatim, others as JSON)."""
    if value is None:
        return MISSING
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def fmt_pretty_json(value: Any) -> str:
    """Pretty-prints a JSON value with two-space indentation, keeping key order."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def text_list(value: Any) -> list[str]:
    """Normalises a reasons-like value into a list of non-empty strings.

    Args:
        value: A string, a list of values, or anything else.

    Returns:
        The strings; a lone string becomes a one-element list, other values are dropped.
    """
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list | tuple):
        return [item if isinstance(item, str) else fmt_value(item) for item in value]
    return []


def as_dict(value: Any) -> dict[str, Any]:
    """Returns ``value`` if it is a dict, else an empty dict (robust section access)."""
    return value if isinstance(value, dict) else {}
