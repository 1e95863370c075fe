"""Model architectures: ``mlp``, a small ``cnn`` and ``resnet18``.

Every builder takes the input shape and the number of outputs and returns an
``nn.Module`` mapping ``(n, c, h, w)`` to logits ``(n, num_outputs)``.
Initialisation is seeded through :func:`make_model`'s ``seed`` so the same
seed always gives the same weights.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class ModelError(ValueError):
    """An unknown or unusable architecture."""


def _mlp(shape: tuple[int, int, int], num_outputs: int, width: int = 256) -> nn.Module:
    c, h, w = shape
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(c * h * w, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, num_outputs),
    )


def _cnn(shape: tuple[int, int, int], num_outputs: int, width: int = 32) -> nn.Module:
    """Two conv blocks and a linear head; pooling adapts to 8x8 up to 32x32 inputs."""
    c, h, w = shape
    pool = 2 if min(h, w) >= 16 else 1
    return nn.Sequential(
        nn.Conv2d(c, width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(pool),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * width * 4, 128),
        nn.ReLU(),
        nn.Linear(128, num_outputs),
    )


def _resnet18(shape: tuple[int, int, int], num_outputs: int) -> nn.Module:
    """torchvision's ResNet-18 with the small-image stem (3x3 conv, no max-pool)."""
    from torchvision.models import resnet18

    model = resnet18(num_classes=num_outputs)
    model.conv1 = nn.Conv2d(shape[0], 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


ARCHS: dict[str, Callable[..., nn.Module]] = {
    "mlp": _mlp,
    "cnn": _cnn,
    "resnet18": _resnet18,
}


def available_archs() -> list[str]:
    """Names accepted by :func:`make_model`."""
    return sorted(ARCHS)


def make_model(
    arch: str, shape: tuple[int, int, int], num_outputs: int, seed: int = 0, **kwargs: object
) -> nn.Module:
    """Build a freshly initialised model with seeded weights.

    Args:
        arch: One of :func:`available_archs`, or ``package.module:factory``: a user's
            function called as ``factory(**kwargs)`` that returns an ``nn.Module``
            mapping ``(n, *shape)`` images to ``(n, num_outputs)`` logits.
        shape: Input shape ``(c, h, w)``.
        num_outputs: Number of logits (classes).
        seed: Seed of the weight initialisation (the global RNG is left untouched).
        **kwargs: Extra keyword arguments of the builder (e.g. ``width``).

    Raises:
        ModelError: unknown architecture, bad kwargs, or a factory whose model does not map
            the data's images to ``num_outputs`` logits.
    """
    if ":" in arch:
        from unlearn_audit.learning.checkpoints import CheckpointError, load_factory

        try:
            factory = load_factory(arch)
        except CheckpointError as exc:
            raise ModelError(str(exc)) from exc
        return _checked(arch, lambda: factory(**kwargs), shape, num_outputs, seed)
    if arch not in ARCHS:
        raise ModelError(
            f"unknown model '{arch}'; valid: {', '.join(available_archs())} "
            "or package.module:factory"
        )
    return _checked(
        arch, lambda: ARCHS[arch](shape, num_outputs, **kwargs), shape, num_outputs, seed
    )


def _checked(
    arch: str, build: Callable[[], object], shape: tuple[int, int, int], num_outputs: int, seed: int
) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = build()
        except TypeError as exc:
            raise ModelError(f"model '{arch}': {exc} (check [model] kwargs)") from exc
    if not isinstance(model, nn.Module):
        raise ModelError(f"model '{arch}' returned {type(model).__name__}, not a torch nn.Module")
    if ":" in arch:  # a user's factory: check that it fits the data once
        with torch.no_grad():
            try:
                out = model.eval()(torch.zeros(2, *shape))
            except Exception as exc:
                raise ModelError(
                    f"model '{arch}' cannot take images of shape {shape}: {exc}"
                ) from exc
        if tuple(out.shape) != (2, num_outputs):
            raise ModelError(
                f"model '{arch}' outputs shape {tuple(out.shape)[1:]} per sample; the data has "
                f"{num_outputs} classes, so it must output ({num_outputs},) logits"
            )
    return model


def reinitialize(model: nn.Module, seed: int) -> nn.Module:
    """Reset every parameter of ``model`` in place with a seeded initialisation."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    return model
