"""One identity per model (audit.specs): keys hold every input, and nothing else builds one."""

import numpy as np

from unlearn_audit import run_audit, unlearners
from unlearn_audit.audit.config import from_dict
from unlearn_audit.audit.plan import derive_seed, make_plan
from unlearn_audit.audit.specs import Specs
from unlearn_audit.learning.data import load_dataset

BASE = {"data": "fingerprint", "arch": "mlp"}
TINY = {
    "data": {"limit": 240},
    "train": {"epochs": 2},
    "unlearn": {"methods": ["finetune"]},
    "attack": {"shadows": 4, "ulira": False},
    "verdict": {"n_boot": 100, "planted_fraction": 0.0},
}


def _plan(spec: str, seed: int = 0):
    ds = load_dataset("digits", None, 240)
    return make_plan(ds, spec, seed, 4, "")


def test_a_shadow_spec_is_its_keep_row_and_its_seed():
    plan, specs = _plan("random:0.1"), Specs(BASE, 7)
    for k in range(4):
        s = specs.shadow(plan, k)
        assert np.array_equal(s.idx, np.flatnonzero(plan.keep[k]))
        assert s.seed == derive_seed(7, "shadow", k) and s.label == "shadow"
        assert s.key == specs.train("shadow", s.idx, s.seed).key
    assert len({specs.shadow(plan, k).key for k in range(4)}) == 4


def test_keys_follow_every_input():
    plan = _plan("random:0.1")
    specs = Specs(BASE, 0)
    ft = unlearners.create("finetune")
    original = specs.original(plan)
    key = specs.unlearned(ft, original, plan).key
    assert specs.unlearned(unlearners.create("finetune"), original, plan).key == key
    assert specs.unlearned(unlearners.create("finetune", epochs=3.0), original, plan).key != key
    cnn = Specs({**BASE, "arch": "cnn"}, 0)
    assert cnn.unlearned(ft, cnn.original(plan), plan).key != key  # another original
    other = Specs(BASE, 1)
    assert other.original(plan).key != original.key


def test_another_forget_request_is_another_unlearned_model():
    """Same seed, same members, same original: a larger request must not reuse the
    model that unlearned the smaller one (it once did: the key lacked the request)."""
    small, large = _plan("random:0.1"), _plan("random:0.2")
    assert np.array_equal(small.members, large.members)
    specs, ft = Specs(BASE, 0), unlearners.create("finetune")
    assert specs.original(small).key == specs.original(large).key
    a = specs.unlearned(ft, specs.original(small), small)
    b = specs.unlearned(ft, specs.original(large), large)
    assert a.key != b.key and not np.array_equal(a.forget, b.forget)


def test_an_audit_of_another_request_in_the_same_run_directory_unlearns_again(tmp_path):
    run, logs = tmp_path / "run", []
    first = run_audit(from_dict(TINY), run, progress=False, log=logs.append, render_report=False)
    assert "  finetune: cached" not in logs
    logs.clear()
    again = run_audit(from_dict(TINY), run, progress=False, log=logs.append, render_report=False)
    assert "  finetune: cached" in logs  # the same request: nothing is redone
    logs.clear()
    larger = {**TINY, "forget": {"spec": "random:0.2"}}
    res = run_audit(from_dict(larger), run, progress=False, log=logs.append, render_report=False)
    assert "  finetune: cached" not in logs and "loading the original model (cached)" in logs
    ckpt = [r.results["models"]["finetune"]["checkpoint"] for r in (first, again, res)]
    assert ckpt[0] == ckpt[1] != ckpt[2]
    assert (run / ckpt[2]).is_file()
