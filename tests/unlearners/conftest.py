"""Tiny trained models shared by the unlearner tests (built once for the package)."""

from __future__ import annotations

import pytest
import torch

from tests.unlearners.helpers import (
    CPU,
    TRAIN,
    NoisyViews,
    Setup,
    classifier_setup,
    make_data,
    split,
)
from unlearn_audit.learning import BYOL, make_generator, make_model
from unlearn_audit.learning.train import fit
from unlearn_audit.learning.views import ViewAugment


@pytest.fixture(scope="package", autouse=True)
def one_thread():
    """These tests run many tiny models: one thread is faster than two (no OpenMP
    hand-offs, no spinning on a loaded machine). The previous setting is restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="package")
def classifier(one_thread: None) -> Setup:
    return classifier_setup(0)


@pytest.fixture(scope="package")
def encoder(one_thread: None) -> Setup:
    x, y = make_data(1)
    forget, retain, reference = split(x, y)
    model = make_model("mlp", (1, 8, 8), 8, seed=1, width=64)
    objective = NoisyViews()
    xm, ym = torch.cat([forget[0], retain[0]]), torch.cat([forget[1], retain[1]])
    fit(model, xm, ym, objective.loss, TRAIN, make_generator(1, CPU))
    return Setup(model, objective, forget, retain, reference)


@pytest.fixture(scope="package")
def byol_encoder(one_thread: None) -> Setup:
    """The ``encoder`` fixture's data and model, trained with the package's BYOL."""
    x, y = make_data(1)
    forget, retain, reference = split(x, y)
    model = make_model("mlp", (1, 8, 8), 8, seed=1, width=64)
    objective = BYOL(ViewAugment(crop_scale=(1.0, 1.0), noise=0.1), predictor_hidden=32)
    xm, ym = torch.cat([forget[0], retain[0]]), torch.cat([forget[1], retain[1]])
    fit(model, xm, ym, objective.loss, TRAIN, make_generator(1, CPU))
    return Setup(model, objective, forget, retain, reference)


@pytest.fixture(scope="package")
def setups(classifier: Setup, encoder: Setup, byol_encoder: Setup) -> dict[str, Setup]:
    """A setup per case of the contract test: the two paradigms, and BYOL (a contrastive
    objective without negatives)."""
    return {"supervised": classifier, "contrastive": encoder, "byol": byol_encoder}
