"""The contract every registered unlearner keeps (parametrised over the registry).

A method added to the registry is covered here without touching this file: each
(method, paradigm) pair it declares runs on a tiny trained model of that
paradigm (a classifier with cross-entropy, an encoder with a contrastive test
double), and every contrastive method that does not need negatives runs on an
encoder trained with the package's BYOL (case ``byol``: an objective with a
per-model target network and predictor, and no negatives); the others must
refuse it. Budget: a method never runs more optimizer steps than its
``max_steps`` allows, counted with a global optimizer-step hook.
"""

import time

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from tests.unlearners.helpers import CPU, RECIPE, run, state
from unlearn_audit import unlearners
from unlearn_audit.learning import Recipe, make_generator
from unlearn_audit.unlearners import Unlearner, UnlearnerError


def accepts_byol(name: str) -> bool:
    """A contrastive method that does not need InfoNCE negatives runs on BYOL encoders."""
    cls = unlearners.get(name)
    return "contrastive" in cls.paradigms and not cls.needs_negatives


CASES = [
    pytest.param(name, paradigm, id=f"{name}-{paradigm}")
    for name in unlearners.available()
    for paradigm in sorted(unlearners.get(name).paradigms)
] + [
    pytest.param(name, "byol", id=f"{name}-byol")
    for name in unlearners.available()
    if accepts_byol(name)
]
REFUSALS = [
    pytest.param(name, paradigm, id=f"{name}-{paradigm}")
    for name in unlearners.available()
    for paradigm in ("supervised", "contrastive")
    if paradigm not in unlearners.get(name).paradigms
] + [
    pytest.param(name, "byol", id=f"{name}-byol")
    for name in unlearners.available()
    if not accepts_byol(name)
]
SECONDS = 15.0  # per run on the tiny models, with room for a loaded 2-core machine


class StepCounter:
    """Counts every optimizer step taken while active (any optimizer)."""

    def __enter__(self) -> "StepCounter":
        self.steps = 0

        def hook(opt: torch.optim.Optimizer, args: object, kwargs: object) -> None:
            self.steps += 1

        self.handle = register_optimizer_step_post_hook(hook)
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.remove()


@pytest.mark.parametrize(("name", "paradigm"), CASES)
def test_new_model_untouched_input_within_budget_and_fast(name, paradigm, setups):
    s = setups[paradigm]
    before = state(s.model)
    t0 = time.perf_counter()
    with StepCounter() as counter:
        out = run(name, s)
    took = time.perf_counter() - t0
    assert out is not s.model
    for k, v in s.model.state_dict().items():
        assert torch.equal(v, before[k]), f"{name} mutated the input's {k}"
        assert out.state_dict()[k].data_ptr() != v.data_ptr(), f"{name} shares {k} with its input"
    assert all(torch.isfinite(v).all() for v in out.state_dict().values())
    assert not out.training
    budget = unlearners.create(name).max_steps(s.forget[0].shape[0], s.retain[0].shape[0], s.recipe)
    assert counter.steps <= budget, f"{name}: {counter.steps} optimizer steps > budget {budget}"
    assert took < SECONDS, f"{name} took {took:.1f}s on a tiny model"


@pytest.mark.parametrize(("name", "paradigm"), CASES)
def test_deterministic_under_seed_and_reference_ignored(name, paradigm, setups):
    """Same seed, same weights; default-parameter methods ignore ``reference``."""
    s = setups[paradigm]
    a = run(name, s, seed=3, reference=True)
    b = run(name, s, seed=3, reference=False)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(v, w), f"{name}: {k} differs between two runs with one seed"


@pytest.mark.parametrize(("name", "paradigm"), REFUSALS)
def test_methods_refuse_a_paradigm_they_do_not_declare(name, paradigm, setups):
    with pytest.raises(UnlearnerError, match="needs a"):
        run(name, setups[paradigm])


TRAINING = [n for n in unlearners.available() if unlearners.create(n).max_steps(16, 80, RECIPE) > 0]


@pytest.mark.parametrize("name", TRAINING)
def test_training_methods_change_the_weights(name, classifier, encoder):
    s = classifier if "supervised" in unlearners.get(name).paradigms else encoder
    out = run(name, s)
    assert any(not torch.equal(out.state_dict()[k], v) for k, v in s.model.state_dict().items())


def test_noop_is_bit_identical(classifier):
    out = run("noop", classifier)
    for k, v in classifier.model.state_dict().items():
        assert torch.equal(out.state_dict()[k], v)


def test_budget_is_the_step_count_of_fit(classifier):
    """The budgets are tight, not just upper bounds, for the fit-based methods."""
    s = classifier
    nf, nr = s.forget[0].shape[0], s.retain[0].shape[0]
    for name, expected in {
        "retrain": 3 * 5,  # 3 recipe epochs x ceil(80 / 16)
        "finetune": 5 * 5,
        "gradient_ascent": 2 * 1,
        "gradient_constraint": 8 * 1,
        "scrub": 1 * 1 + 3 * 5,
        "ssd": 0,
    }.items():
        with StepCounter() as counter:
            run(name, s)
        assert counter.steps == expected == unlearners.create(name).max_steps(nf, nr, s.recipe)


def test_retrain_does_not_start_from_the_original(classifier):
    model = classifier.model
    # with zero epochs, retrain is a pure re-initialisation: far from the trained weights
    m = unlearners.create("retrain").unlearn(
        model,
        classifier.forget,
        classifier.retain,
        objective=classifier.objective,
        recipe=Recipe(epochs=0),
        generator=make_generator(0, CPU),
    )
    assert not torch.equal(m[1].weight, model[1].weight)


def test_gradient_ascent_raises_forget_loss(classifier):
    out = run("gradient_ascent", classifier)
    x, y = classifier.forget
    ce = torch.nn.functional.cross_entropy
    with torch.no_grad():
        assert ce(out(x), y) > ce(classifier.model(x), y)


def test_registry_errors_list_valid_names():
    with pytest.raises(UnlearnerError, match="valid: .*finetune.*noop"):
        unlearners.create("nope")
    with pytest.raises(UnlearnerError, match="unknown parameter"):
        unlearners.create("finetune", epoch=3)
    with pytest.raises(UnlearnerError, match="must be > 0"):
        unlearners.create("finetune", epochs=-1)


@pytest.mark.parametrize("name", unlearners.available())
def test_params_have_defaults_and_docs(name):
    cls = unlearners.get(name)
    method = unlearners.create(name)  # every parameter has a default
    assert cls.summary and cls.__doc__
    docs = " ".join(c.__doc__ or "" for c in cls.Params.__mro__)  # inherited fields too
    for field in method.describe()["params"]:
        assert f"{field}:" in docs, f"{name}: parameter {field} is undocumented"


def test_register_rejects_a_name_clash():
    class Fake(Unlearner):
        name = "noop"

        def _unlearn(self, model, forget, retain, **kw):
            return model

        def max_steps(self, n_forget, n_retain, recipe):
            return 0

    with pytest.raises(UnlearnerError, match="already registered"):
        unlearners.register(Fake)


def test_a_method_written_before_reference_existed_still_runs(classifier):
    class Old(Unlearner):  # the pre-``reference`` signature, no budget declared
        name = "old_style"

        def _unlearn(self, model, forget, retain, *, objective, recipe, generator, progress):
            return model

    method = Old()
    out = method.unlearn(
        classifier.model,
        classifier.forget,
        classifier.retain,
        objective=classifier.objective,
        recipe=RECIPE,
        generator=make_generator(0, CPU),
        reference=classifier.reference,
    )
    assert torch.equal(out[1].weight, classifier.model[1].weight)
    with pytest.raises(NotImplementedError, match="declares no budget"):
        method.max_steps(16, 80, RECIPE)
