"""Training loops on in-memory tensors.

One generic loop, :func:`fit`, runs any per-batch loss over a tensor dataset
with SGD or Adam, a cosine (or constant) learning-rate schedule, bf16 autocast
on CUDA, and a progress bar. Training objectives (cross-entropy now; SimCLR and
MoCo live beside it) are small objects whose ``loss(model, x, y, generator)``
does their own augmentation. A non-finite loss stops training with
:class:`DivergenceError` instead of silently producing a NaN model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import ClassVar, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from unlearn_audit.learning.augment import Augment

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss."""


@dataclass(frozen=True)
class Recipe:
    """How a model is trained.

    Attributes:
        epochs: Passes over the training set.
        batch_size: Samples per step (the last, smaller batch of an epoch is kept).
        lr: Peak learning rate.
        optimizer: ``sgd`` (with Nesterov momentum) or ``adam``.
        momentum: SGD momentum.
        weight_decay: L2 weight decay.
        schedule: ``cosine`` (decays to 0 over all steps) or ``constant``.
        augment: Use random-crop (and flip where allowed) augmentation.
    """

    epochs: int = 40
    batch_size: int = 64
    lr: float = 0.05
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    augment: bool = True

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got '{self.optimizer}'")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got '{self.schedule}'")
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs must be >= 0, batch_size >= 1 and lr > 0")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class Objective(Protocol):
    """A training objective: a mean loss over a batch, augmenting as it needs.

    The toolkit's objectives also declare their paradigm in a class attribute
    ``paradigm`` (``"supervised"``: ``model(x)`` gives class logits; ``"contrastive"``:
    an encoder trained on views), which the unlearners read
    (:func:`unlearners.paradigm_of`); an objective without it is told by its shape.
    """

    @property
    def name(self) -> str: ...

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor: ...


@dataclass(frozen=True)
class CrossEntropy:
    """Supervised cross-entropy on (optionally) augmented images."""

    paradigm: ClassVar[str] = "supervised"
    augment: Augment | None = None
    name: str = "cross_entropy"

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        if self.augment is not None:
            x = self.augment(x, generator)
        return F.cross_entropy(model(x), y)


class DeviceError(ValueError):
    """A device name that is malformed or not available here; the message lists those that are."""


def available_devices() -> list[str]:
    """The device names this machine can run on (``auto`` first)."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        names += ["cuda", *(f"cuda:{i}" for i in range(count))]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` are
    used as given when this machine has them.

    Raises:
        DeviceError: a malformed name, another device type, or a device this machine
            lacks (the message lists the available ones).
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    here = ", ".join(available_devices())
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(
            f"device '{name}' is not a device name; use auto, cpu, cuda, cuda:N or mps "
            f"(available here: {here})"
        ) from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(
            f"device '{name}': the audit runs on cpu, cuda or mps only (available here: {here})"
        )
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device '{name}' asked for, but CUDA is not available here (available: {here})"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device '{name}' asked for, but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s) (available: {here})"
            )
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError(
                f"device '{name}' asked for, but MPS (Apple GPU) is not available here "
                f"(available: {here})"
            )
    if device.type == "cpu" and device.index not in (None, 0):
        raise DeviceError(f"device '{name}': use 'cpu' (available here: {here})")
    return device


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    """A seeded generator on ``device`` (augmentation and shuffling draw from it)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


def make_optimizer(
    model: nn.Module, recipe: Recipe, lr: float | None = None
) -> torch.optim.Optimizer:
    lr = recipe.lr if lr is None else lr
    params = [p for p in model.parameters() if p.requires_grad]
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(
        params,
        lr=lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        nesterov=recipe.momentum > 0,
    )


def step_count(n: int, batch_size: int, epochs: float) -> int:
    """Optimizer steps :func:`fit` runs for ``epochs`` passes over ``n`` samples.

    ``ceil(n / batch_size)`` steps an epoch (the last, smaller batch is kept), times
    ``epochs`` (which may be fractional), rounded; 0 when there is nothing to train.
    The one step count of the package: ``fit``, the batched ensemble trainer
    (:func:`learning.ensemble.fit_ensemble`) and the unlearners' budgets use it.
    """
    if n <= 0:
        return 0
    return max(0, int(round(epochs * math.ceil(n / batch_size))))


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    recipe: Recipe,
    generator: torch.Generator,
    *,
    lr: float | None = None,
    epochs: float | None = None,
    progress: bool = False,
    desc: str = "train",
    after_step: Callable[[nn.Module], None] | None = None,
) -> nn.Module:
    """Minimise ``loss_fn`` over ``(x, y)`` in place and return ``model``.

    ``x`` and ``y`` must already live on the model's device. ``epochs`` may be
    fractional (e.g. 0.5 runs half an epoch's steps) and overrides the recipe.

    Raises:
        DivergenceError: the loss became NaN or infinite.
    """
    n = x.shape[0]
    total = step_count(n, recipe.batch_size, recipe.epochs if epochs is None else epochs)
    if total == 0:
        return model
    opt = make_optimizer(model, recipe, lr)
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
        if recipe.schedule == "cosine"
        else None
    )
    autocast = x.device.type == "cuda"
    model.train()
    step = 0
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=False, unit="step")
    while step < total:
        order = torch.randperm(n, generator=generator, device=x.device)
        for start in range(0, n, recipe.batch_size):
            if step >= total:
                break
            idx = order[start : start + recipe.batch_size]
            with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=autocast):
                loss = loss_fn(model, x[idx], y[idx], generator)
            if not torch.isfinite(loss):
                bar.close()
                raise DivergenceError(f"{desc}: loss became {loss.item()} at step {step + 1}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            if after_step is not None:
                after_step(model)
            step += 1
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    model.eval()
    return model


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    x: torch.Tensor,
    batch_size: int = 1024,
    views: Callable[[torch.Tensor], list[torch.Tensor]] | None = None,
) -> torch.Tensor:
    """Logits of ``model`` on ``x`` as float32 ``(n, A, C)`` on the CPU.

    ``views`` maps a batch to its ``A`` query views (default: the identity only).
    """
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size].to(device)
        vs = views(xb) if views is not None else [xb]
        out.append(torch.stack([model(v).float() for v in vs], dim=1).cpu())
    return torch.cat(out)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)``; NaN for an empty set."""
    if x.shape[0] == 0:
        return float("nan")
    logits = predict_logits(model, x, batch_size)[:, 0]
    return float((logits.argmax(1) == y.cpu()).float().mean())
