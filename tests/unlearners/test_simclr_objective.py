"""Every contrastive-capable method runs with the package's real SimCLR objective.

The other tests use a test double of the contrastive protocol; this one checks
that ``learning.contrastive.SimCLR`` (when present) satisfies the same protocol
as far as the unlearners are concerned.
"""

import copy

import pytest
import torch

from tests.unlearners.helpers import run
from unlearn_audit import unlearners

contrastive = pytest.importorskip("unlearn_audit.learning.contrastive")
views = pytest.importorskip("unlearn_audit.learning.views")

CONTRASTIVE = [n for n in unlearners.available() if "contrastive" in unlearners.get(n).paradigms]


@pytest.mark.parametrize("name", CONTRASTIVE)
def test_runs_with_simclr(name, encoder):
    s = copy.copy(encoder)
    s.objective = contrastive.SimCLR(views.ViewAugment(crop_scale=(0.6, 1.0), noise=0.05))
    params = {"variant": "matched"} if name == "gradient_constraint" else {}
    out = run(name, s, **params)
    assert all(torch.isfinite(v).all() for v in out.state_dict().values())
