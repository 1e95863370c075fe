"""The method interface: request and context, the fine-tuning template, old-style plugins."""

import copy
import warnings

import pytest
import torch
from torch import nn

from tests.unlearners.helpers import CPU, RECIPE, Setup, state
from unlearn_audit import unlearners
from unlearn_audit.learning import make_generator
from unlearn_audit.learning.models import reinitialize
from unlearn_audit.learning.train import fit
from unlearn_audit.unlearners import (
    FineTuneUnlearner,
    ForgetRequest,
    TuneParams,
    Tuning,
    UnlearnContext,
    Unlearner,
    UnlearnerError,
    paradigm_of,
    seed_from,
)


def audit_call(method: Unlearner, s: Setup, seed: int = 0) -> nn.Module:
    """``unlearn`` called as ``audit.production`` calls it (every keyword, ``reference`` too)."""
    return method.unlearn(
        s.model,
        s.forget,
        s.retain,
        objective=s.objective,
        recipe=s.recipe,
        generator=make_generator(seed, CPU),
        progress=False,
        reference=s.reference,
    )


def deprecations(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, DeprecationWarning)]


class NewRetrain(Unlearner):
    """Retrain on retain, written against the new hook."""

    name = "new_retrain"

    def _unlearn(self, model: nn.Module, request: ForgetRequest, ctx: UnlearnContext) -> nn.Module:
        reinitialize(model, seed_from(ctx.generator))
        return fit(model, *request.retain, ctx.objective.loss, ctx.recipe, ctx.generator)


def old_style_classes() -> tuple[type[Unlearner], type[Unlearner]]:
    """The same method written against the old signature, without and with ``reference``.

    Defined afresh per test: the shim warns once per class.
    """

    class OldRetrain(Unlearner):
        name = "old_retrain"

        def _unlearn(self, model, forget, retain, *, objective, recipe, generator, progress):
            reinitialize(model, seed_from(generator))
            return fit(model, *retain, objective.loss, recipe, generator)

    class OldWithReference(Unlearner):
        name = "old_with_reference"
        seen: list = []

        def _unlearn(
            self, model, forget, retain, *, objective, recipe, generator, progress, reference=None
        ):
            self.seen.append(reference)
            return model

    return OldRetrain, OldWithReference


def test_an_old_style_plugin_runs_like_the_new_one_and_warns_once_per_class(classifier):
    OldRetrain, OldWithReference = old_style_classes()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        old = [audit_call(OldRetrain(), classifier, seed=1) for _ in range(3)]
        audit_call(OldWithReference(), classifier)
        audit_call(OldWithReference(), classifier)
    messages = deprecations(record)
    assert len(messages) == 2, messages  # one per class, however many calls and instances
    assert "OldRetrain._unlearn has the old signature" in messages[0]
    assert "OldWithReference._unlearn has the old signature" in messages[1]
    new = audit_call(NewRetrain(), classifier, seed=1)
    for out in old:
        for k, v in new.state_dict().items():
            assert torch.equal(out.state_dict()[k], v), k
    # reference reaches an old method only when it accepts the keyword
    assert all(r is classifier.reference for r in OldWithReference.seen)


def test_new_style_and_built_in_methods_do_not_warn(classifier, encoder):
    from examples.finetune_method import RetainConfuse  # the docs' worked example

    built_in = [unlearners.get(n) for n in unlearners.available()]
    built_in = [cls for cls in built_in if cls.__module__.startswith("unlearn_audit.unlearners.")]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        audit_call(NewRetrain(), classifier)
        audit_call(RetainConfuse(), classifier)
        for cls in built_in:
            audit_call(cls(), classifier if "supervised" in cls.paradigms else encoder)
    assert deprecations(record) == []
    assert len(built_in) == 14
    assert RetainConfuse().max_steps(16, 80, RECIPE) == 2 * 5  # derived: 2 epochs over retain


def test_the_paradigm_is_decided_once_from_the_objective(classifier, encoder):
    assert paradigm_of(classifier.objective) == "supervised"
    assert paradigm_of(encoder.objective) == "contrastive"
    assert paradigm_of(None) == "supervised"  # a user's method called without an objective
    seen = []

    class Both(Unlearner):
        name = "both"
        paradigms = frozenset({"supervised", "contrastive"})

        def _unlearn(self, model, request, ctx):
            seen.append((ctx.paradigm, request.n_forget, request.n_retain, request.reference))
            return model

    audit_call(Both(), classifier)
    audit_call(Both(), encoder)
    assert seen == [
        ("supervised", 16, 80, classifier.reference),
        ("contrastive", 16, 80, encoder.reference),
    ]

    class OnlyContrastive(Both):
        name = "only_c"
        paradigms = frozenset({"contrastive"})

    with pytest.raises(UnlearnerError, match="only_c needs a contrastive objective"):
        audit_call(OnlyContrastive(), classifier)
    with pytest.raises(UnlearnerError, match="needs a supervised classifier"):
        audit_call(NewRetrain(), encoder)


def test_an_objective_declares_its_paradigm():
    """The toolkit's objectives say their paradigm; the shape (``views``) is only the
    fallback for an objective that declares none (a user's own)."""
    import dataclasses

    from unlearn_audit.learning import CrossEntropy
    from unlearn_audit.learning.contrastive import MoCo, SimCLR
    from unlearn_audit.learning.views import default_views

    views = default_views((1, 8, 8), False)
    assert paradigm_of(CrossEntropy()) == CrossEntropy.paradigm == "supervised"
    assert paradigm_of(SimCLR(views)) == paradigm_of(MoCo(views)) == "contrastive"
    # a class attribute, not a field: the objective's repr (part of every model's cache
    # key) and its fields are unchanged
    assert repr(CrossEntropy()) == "CrossEntropy(augment=None, name='cross_entropy')"
    assert "paradigm" not in {f.name for f in dataclasses.fields(SimCLR)}

    class Declared:  # the declaration wins over the shape
        paradigm = "supervised"

        def views(self, x, generator):
            return x, x

    assert paradigm_of(Declared()) == "supervised"

    class Odd:
        name = "odd"
        paradigm = "regression"

    with pytest.raises(ValueError, match="objective odd declares paradigm 'regression'"):
        paradigm_of(Odd())


class Ascend(FineTuneUnlearner):
    """Ascend on forget: only the training set, the loss and the epochs are given."""

    name = "ascend"
    Params = TuneParams
    trains_on = ("forget",)

    def tuning(self, model, request, ctx):
        return Tuning(lambda m, x, y, g: -ctx.objective.loss(m, x, y, g))


def test_the_template_derives_the_budget_and_runs_the_loop(classifier):
    method = Ascend(epochs=3.0, lr_scale=0.1)
    assert method.max_steps(16, 80, RECIPE) == 3 * 1  # 3 passes over 16 forget samples
    both = type("Both", (Ascend,), {"trains_on": ("forget", "retain")})(epochs=0.5)
    assert both.max_steps(16, 80, RECIPE) == 3  # round(0.5 * ceil(96 / 16))
    steps = []

    class Counting(Ascend):
        def tuning(self, model, request, ctx):
            return Tuning(super().tuning(model, request, ctx).loss, after_step=steps.append)

    out = audit_call(Counting(epochs=3.0, lr_scale=0.1), classifier)
    assert len(steps) == 3
    # the same run spelled out with fit
    ref = fit(
        copy.deepcopy(classifier.model),
        *classifier.forget,
        lambda m, x, y, g: -classifier.objective.loss(m, x, y, g),
        RECIPE,
        make_generator(0, CPU),
        lr=RECIPE.lr * 0.1,
        epochs=3.0,
    )
    for k, v in ref.state_dict().items():
        assert torch.equal(out.state_dict()[k], v), k


def test_the_template_refuses_a_set_its_budget_does_not_count_and_cleans_up(classifier):
    cleaned = []

    class Wrong(Ascend):
        def tuning(self, model, request, ctx):
            return Tuning(
                ctx.objective.loss, data=request.retain, cleanup=lambda: cleaned.append(1)
            )

    before = state(classifier.model)
    with pytest.raises(UnlearnerError, match="training set has 80 samples, its budget counts 16"):
        audit_call(Wrong(), classifier)
    assert cleaned == [1]
    assert all(torch.equal(v, before[k]) for k, v in classifier.model.state_dict().items())
