"""scrub and bad_teacher: distillation loss, schedule and direction of the update."""

import copy

import pytest
import torch
import torch.nn.functional as F

from learning import make_generator
from learning.models import reinitialize
from tests.unlearners.helpers import CPU, RECIPE, run
from unlearners import create, distill, seed_from
from unlearners._common import distill_kl
from unlearners.distill import ScrubParams


def test_distill_kl_golden_value():
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[2.0, 0.0]])
    p = torch.softmax(t / 2, 1)[0]  # teacher at T = 2
    expected = 4 * float((p * (p / 0.5).log()).sum())  # T^2 KL(p || uniform)
    assert distill_kl(s, t, 2.0).item() == pytest.approx(expected, rel=1e-6)
    assert distill_kl(t, t, 4.0).item() == pytest.approx(0.0, abs=1e-7)


def test_scrub_schedule_validation_and_budget():
    with pytest.raises(ValueError, match="max_epochs"):
        ScrubParams(epochs=2, max_epochs=3)
    assert create("scrub", epochs=4, max_epochs=2).max_steps(16, 80, RECIPE) == 2 * 1 + 4 * 5


def test_scrub_runs_max_passes_on_forget_in_the_first_epochs_only(classifier, monkeypatch):
    calls = []
    real_fit = distill.fit

    def spy(model, x, y, loss_fn, *args, **kwargs):
        calls.append((x.shape[0], kwargs["desc"]))
        return real_fit(model, x, y, loss_fn, *args, **kwargs)

    monkeypatch.setattr(distill, "fit", spy)
    run("scrub", classifier, epochs=3, max_epochs=2)
    n_f, n_r = classifier.forget[0].shape[0], classifier.retain[0].shape[0]
    assert calls == [
        (n_f, "scrub max 1"),
        (n_r, "scrub min 1"),
        (n_f, "scrub max 2"),
        (n_r, "scrub min 2"),
        (n_r, "scrub min 3"),
    ]


def test_scrub_max_steps_push_the_student_from_the_teacher_on_forget(classifier):
    s = classifier

    def d_forget(out):
        with torch.no_grad():
            return distill_kl(out(s.forget[0]), s.model(s.forget[0]), 4.0).item()

    with_max = d_forget(run("scrub", s, lr_scale=0.5, max_epochs=1))
    without = d_forget(run("scrub", s, lr_scale=0.5, max_epochs=0))
    assert with_max > 2 * without


def test_bad_teacher_pulls_forget_outputs_to_the_random_teacher(classifier):
    s = classifier
    out = run("bad_teacher", s, epochs=5.0, lr_scale=1.0)
    # the incompetent teacher is the first draw of the method's generator
    bad = reinitialize(copy.deepcopy(s.model), seed_from(make_generator(0, CPU))).eval()

    def kl_to_bad(m, x):
        return F.kl_div(
            F.log_softmax(m(x), 1), F.log_softmax(bad(x), 1), log_target=True, reduction="batchmean"
        ).item()

    with torch.no_grad():
        assert kl_to_bad(out, s.forget[0]) < 0.5 * kl_to_bad(s.model, s.forget[0])
        assert kl_to_bad(out, s.retain[0]) > kl_to_bad(out, s.forget[0])
