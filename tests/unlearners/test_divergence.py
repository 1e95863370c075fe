"""Methods with an unbounded objective stop with DivergenceError instead of a NaN model."""

import copy

import pytest

from tests.unlearners.helpers import run
from unlearn_audit.learning import DivergenceError, Recipe

HUGE = Recipe(epochs=3, batch_size=16, lr=1e30, momentum=0.0, weight_decay=0.0)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("gradient_ascent", {}),
        ("neggrad_plus", {"forget_weight": 1.0}),
        ("scrub", {}),
        ("gradient_constraint", {}),
        ("gradient_constraint", {"variant": "matched"}),
    ],
)
def test_divergence_surfaces_as_divergence_error(name, params, classifier):
    s = copy.copy(classifier)
    s.recipe = HUGE
    with pytest.raises(DivergenceError, match=name):
        run(name, s, **params)


def test_contrastive_divergence_surfaces_too(encoder):
    s = copy.copy(encoder)
    s.recipe = HUGE
    with pytest.raises(DivergenceError):
        run("gradient_ascent", s)
