"""Helpers of the unlearner tests: a contrastive test double, tiny data, ``run``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from unlearn_audit.learning import CrossEntropy, Recipe, make_generator, make_model
from unlearn_audit.learning.train import fit
from unlearn_audit.unlearners._contrastive import nt_xent_pairs

CPU = torch.device("cpu")
RECIPE = Recipe(epochs=3, batch_size=16, lr=0.05)  # the unlearning recipe (retrain: 3 epochs)
TRAIN = Recipe(epochs=40, batch_size=16, lr=0.1)  # how the fixtures' originals are trained


@dataclass(frozen=True)
class NoisyViews:
    """Test double of a SimCLR objective: NT-Xent over two Gaussian-noise views.

    Follows the contrastive protocol the unlearners program against:
    ``views(x, g) -> (x1, x2)`` and ``loss(model, x, y, g)`` (``y`` ignored).
    """

    sigma: float = 0.1
    temperature: float = 0.5
    name: str = "noisy_views_ntxent"

    def views(
        self, x: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        def one() -> torch.Tensor:
            noise = torch.randn(x.shape, generator=generator, device=x.device)
            return x + self.sigma * noise

        return one(), one()

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        x1, x2 = self.views(x, generator)
        return nt_xent_pairs(model(x1), model(x2), self.temperature).mean()


@dataclass
class Setup:
    """A trained model with its objective and the data splits of a test."""

    model: nn.Module
    objective: object
    forget: tuple[torch.Tensor, torch.Tensor]
    retain: tuple[torch.Tensor, torch.Tensor]
    reference: tuple[torch.Tensor, torch.Tensor]
    recipe: Recipe = RECIPE


def make_data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """128 random 8x8 images with random labels among 3 classes: only memorisable.

    A model trained on part of it fits its members and is at chance elsewhere, so
    members and non-members differ as much as they can (a clear membership signal).
    """
    g = torch.Generator().manual_seed(seed)
    return torch.rand(128, 1, 8, 8, generator=g), torch.randint(0, 3, (128,), generator=g)


def split(x: torch.Tensor, y: torch.Tensor) -> tuple:
    """Forget (16), retain (80) and non-member reference (32) parts."""
    return (x[:16], y[:16]), (x[16:96], y[16:96]), (x[96:], y[96:])


def classifier_setup(seed: int) -> Setup:
    """The supervised original of classifier seed ``seed`` (data, model and training stream).

    The ``classifier`` fixture is seed 0; benchmarks/margins.py measures the unlearner tests
    over other seeds.
    """
    x, y = make_data(seed)
    forget, retain, reference = split(x, y)
    model = make_model("mlp", (1, 8, 8), 3, seed=seed, width=64)
    xm, ym = torch.cat([forget[0], retain[0]]), torch.cat([forget[1], retain[1]])
    fit(model, xm, ym, CrossEntropy().loss, TRAIN, make_generator(seed, CPU))
    return Setup(model, CrossEntropy(), forget, retain, reference)


def run(name: str, s: Setup, seed: int = 0, reference: bool = True, **params: object) -> nn.Module:
    """Unlearn ``s.model`` with the registered method ``name``."""
    from unlearn_audit import unlearners

    return unlearners.create(name, **params).unlearn(
        s.model,
        s.forget,
        s.retain,
        objective=s.objective,  # type: ignore[arg-type]
        recipe=s.recipe,
        generator=make_generator(seed, CPU),
        reference=s.reference if reference else None,
    )


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}
