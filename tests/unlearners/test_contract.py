"""The contract every registered unlearner keeps (parametrised over the registry)."""

import pytest
import torch

import unlearners
from learning import CrossEntropy, Recipe, make_generator, make_model
from learning.train import fit
from unlearners import Unlearner, UnlearnerError

CPU = torch.device("cpu")
RECIPE = Recipe(epochs=3, batch_size=16, lr=0.05)


@pytest.fixture(scope="module")
def trained():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(96, 1, 8, 8, generator=g)
    y = torch.randint(0, 3, (96,), generator=g)
    model = make_model("mlp", (1, 8, 8), 3, seed=0)
    fit(model, x, y, CrossEntropy().loss, RECIPE, make_generator(0, CPU))
    return model, (x[:16], y[:16]), (x[16:], y[16:])


def _run(name, trained, seed=0):
    model, forget, retain = trained
    return unlearners.create(name).unlearn(
        model,
        forget,
        retain,
        objective=CrossEntropy(),
        recipe=RECIPE,
        generator=make_generator(seed, CPU),
    )


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", unlearners.available())
def test_returns_new_model_and_never_mutates_input(name, trained):
    before = _state(trained[0])
    out = _run(name, trained)
    assert out is not trained[0]
    for k, v in trained[0].state_dict().items():
        assert torch.equal(v, before[k]), f"{name} mutated {k}"


@pytest.mark.parametrize("name", unlearners.available())
def test_deterministic_under_seed(name, trained):
    a, b = _run(name, trained, seed=3), _run(name, trained, seed=3)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(v, w), f"{name}: {k} differs between two runs with one seed"


def test_noop_is_bit_identical(trained):
    out = _run("noop", trained)
    for k, v in trained[0].state_dict().items():
        assert torch.equal(out.state_dict()[k], v)


@pytest.mark.parametrize("name", ["retrain", "finetune", "gradient_ascent"])
def test_methods_change_the_weights(name, trained):
    out = _run(name, trained)
    assert any(not torch.equal(out.state_dict()[k], v) for k, v in trained[0].state_dict().items())


def test_retrain_does_not_start_from_the_original(trained):
    model, forget, retain = trained
    # with zero epochs, retrain is a pure re-initialisation: far from the trained weights
    m = unlearners.create("retrain").unlearn(
        model,
        forget,
        retain,
        objective=CrossEntropy(),
        recipe=Recipe(epochs=0),
        generator=make_generator(0, CPU),
    )
    assert not torch.equal(m[1].weight, model[1].weight)


def test_gradient_ascent_raises_forget_loss(trained):
    model, forget, _ = trained
    out = _run("gradient_ascent", trained)
    ce = torch.nn.functional.cross_entropy
    with torch.no_grad():
        assert ce(out(forget[0]), forget[1]) > ce(model(forget[0]), forget[1])


def test_registry_errors_list_valid_names():
    with pytest.raises(UnlearnerError, match="valid: .*finetune.*noop"):
        unlearners.create("nope")
    with pytest.raises(UnlearnerError, match="unknown parameter"):
        unlearners.create("finetune", epoch=3)
    with pytest.raises(UnlearnerError, match="must be > 0"):
        unlearners.create("finetune", epochs=-1)


def test_register_rejects_a_name_clash():
    class Fake(Unlearner):
        name = "noop"

        def _unlearn(self, model, forget, retain, **kw):
            return model

    with pytest.raises(UnlearnerError, match="already registered"):
        unlearners.register(Fake)
