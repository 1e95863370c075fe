"""Methods written against the old ``_unlearn`` signature keep working (deprecated).

Until ``ForgetRequest`` and ``UnlearnContext`` existed, a method implemented

    _unlearn(self, model, forget, retain, *, objective, recipe, generator, progress,
             reference=None)

(``reference`` was added later, so older methods lack it). :func:`old_style`
tells such a class from a new one by its signature, once per class, and warns
once per class with a ``DeprecationWarning``; :func:`call_old` calls it the old
way, passing ``reference`` only if it accepts it.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
import warnings
import weakref
from typing import Any

from torch import nn

from unlearn_audit.unlearners.request import ForgetRequest, UnlearnContext

_OLD_NAMES = frozenset({"forget", "retain", "objective", "recipe", "generator", "progress"})


@dataclasses.dataclass(frozen=True)
class OldStyle:
    """A class whose ``_unlearn`` has the old signature."""

    takes_reference: bool


_seen: weakref.WeakKeyDictionary[type, OldStyle | None] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def detect(fn: Any) -> OldStyle | None:
    """``OldStyle`` when ``fn`` (an ``_unlearn``) has the old signature, else None.

    Old: it names a parameter of the old signature, or takes keyword-only or
    ``**`` parameters; the new one is exactly ``(self, model, request, ctx)``.
    """
    params = list(inspect.signature(fn).parameters.values())
    loose = any(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in params)
    if not loose and not _OLD_NAMES & {p.name for p in params}:
        return None
    return OldStyle(any(p.name == "reference" or p.kind is p.VAR_KEYWORD for p in params))


def old_style(cls: type) -> OldStyle | None:
    """What :func:`detect` says of ``cls._unlearn``, decided once per class.

    The first time a class is found old-style, one ``DeprecationWarning`` is issued.
    """
    with _lock:
        if cls in _seen:
            return _seen[cls]
        style = _seen[cls] = detect(cls._unlearn)  # type: ignore[attr-defined]
    if style is not None:
        warnings.warn(
            f"{cls.__module__}.{cls.__qualname__}._unlearn has the old signature "
            "(model, forget, retain, *, objective, recipe, generator, progress); it still "
            "runs, but write _unlearn(self, model, request, ctx) instead (docs/python-api.md)",
            DeprecationWarning,
            stacklevel=3,
        )
    return style


def call_old(
    method: object, style: OldStyle, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext
) -> nn.Module:
    """Call an old-style ``method._unlearn`` with the request and context spelled out."""
    extra = {"reference": request.reference} if style.takes_reference else {}
    fn: Any = method._unlearn  # type: ignore[attr-defined]
    out: nn.Module = fn(
        model,
        request.forget,
        request.retain,
        objective=ctx.objective,
        recipe=ctx.recipe,
        generator=ctx.generator,
        progress=ctx.progress,
        **extra,
    )
    return out
