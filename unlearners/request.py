"""What a method is asked (:class:`ForgetRequest`) and what it works with (:class:`UnlearnContext`).

:meth:`unlearners.Unlearner.unlearn` builds both from its arguments and hands them
to the method's ``_unlearn(model, request, ctx)``. The paradigm of the objective
is decided here, once (:func:`paradigm_of`), and every method reads it from
``ctx.paradigm``.
"""

from __future__ import annotations

import dataclasses

import torch

from unlearn_audit.learning.train import Objective, Recipe

Data = tuple[torch.Tensor, torch.Tensor]
PARADIGMS = frozenset({"supervised", "contrastive"})


@dataclasses.dataclass(frozen=True)
class ForgetRequest:
    """The data of one unlearning request: ``(x, y)`` tensors on the model's device.

    Attributes:
        forget: The samples to forget.
        retain: The samples to keep.
        reference: Optional non-member ("third-party") data, never trained on by the
            original model. Only methods that say so use it (``gradient_constraint``
            with ``variant="matched"`` requires it); every other method ignores it.
    """

    forget: Data
    retain: Data
    reference: Data | None = None

    @property
    def n_forget(self) -> int:
        return int(self.forget[0].shape[0])

    @property
    def n_retain(self) -> int:
        return int(self.retain[0].shape[0])


@dataclasses.dataclass(frozen=True)
class UnlearnContext:
    """How the original was trained, and the method's source of randomness.

    Attributes:
        objective: The training objective the model was trained with.
        recipe: The training recipe of the original model (methods scale from it).
        generator: Seeded generator on the model's device; every draw comes from it.
        paradigm: ``supervised`` (``model(x)`` returns logits) or ``contrastive``
            (an encoder trained with a view-based objective): :func:`paradigm_of`.
        progress: Show a progress bar.
    """

    objective: Objective
    recipe: Recipe
    generator: torch.Generator
    paradigm: str
    progress: bool = False


def paradigm_of(objective: object) -> str:
    """The paradigm ``objective`` declares in its ``paradigm`` attribute.

    The toolkit's objectives declare it: :class:`learning.CrossEntropy` is
    ``supervised``, :class:`learning.SimCLR` and :class:`learning.MoCo` are
    ``contrastive``. An objective that declares none (a user's own, or None) is read
    by its shape, as before the declaration existed: ``contrastive`` when it has a
    ``views(x, generator)`` method (the protocol of :mod:`unlearners._contrastive`),
    else ``supervised``.

    Raises:
        ValueError: the objective declares a paradigm other than ``supervised`` and
            ``contrastive``.
    """
    declared = getattr(objective, "paradigm", None)
    if declared is None:  # undeclared: the fallback for user objectives
        return "contrastive" if callable(getattr(objective, "views", None)) else "supervised"
    if not isinstance(declared, str) or declared not in PARADIGMS:
        name = getattr(objective, "name", type(objective).__name__)
        raise ValueError(
            f"objective {name} declares paradigm {declared!r}; unlearners know "
            f"{', '.join(sorted(PARADIGMS))}"
        )
    return declared
