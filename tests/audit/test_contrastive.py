"""The contrastive paradigm: config, objective, signals, utility, and a tiny end-to-end audit."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from unlearn_audit.audit.config import AttackConfig, ConfigError, ContrastiveConfig, from_dict
from unlearn_audit.audit.contrastive import (
    QUERY_SEED,
    Contrastive,
    fisher_z,
    negative_bank,
    query_features,
)
from unlearn_audit.audit.paradigms import get_paradigm
from unlearn_audit.audit.plan import make_plan
from unlearn_audit.learning import Recipe, load_dataset, make_model
from unlearn_audit.learning.contrastive import MoCo, SimCLR
from unlearn_audit.learning.data import Dataset
from unlearn_audit.learning.probe import encodermi_similarity

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


DIGITS = load_dataset("digits", limit=120)


def test_config_table_and_its_errors():
    cfg = from_dict({"paradigm": "contrastive", "contrastive": {"method": "moco", "epochs": 5}})
    p = get_paradigm("contrastive", cfg)
    assert isinstance(p, Contrastive) and p.settings.method == "moco"
    assert p.recipe(cfg.train) == Recipe(**{**cfg.train.to_dict(), "epochs": 5, "batch_size": 128})
    keep = Contrastive(ContrastiveConfig(batch_size=0))
    assert keep.recipe(cfg.train) == cfg.train  # 0 keeps [train]
    assert from_dict({}).contrastive == ContrastiveConfig()  # supervised configs are unchanged
    with pytest.raises(ConfigError, match=r"\[contrastive\].*method must be"):
        from_dict({"contrastive": {"method": "swav"}})
    assert from_dict({"contrastive": {"method": "byol"}}).contrastive.method == "byol"
    with pytest.raises(ConfigError, match="contrastive.views"):
        from_dict({"contrastive": {"views": "ten"}})


def test_objective_model_size_and_moco_queue():
    p = Contrastive(ContrastiveConfig(proj_dim=16))
    assert p.num_outputs(DIGITS) == 16
    assert isinstance(p.objective(DIGITS, Recipe()), SimCLR)
    moco = Contrastive(ContrastiveConfig(method="moco", batch_size=0)).objective(
        DIGITS, Recipe(batch_size=8)
    )
    assert isinstance(moco, MoCo) and moco.queue_size == 24  # a quarter of 120, whole batches
    assert callable(getattr(moco, "views", None))  # what contrastive unlearners call


def test_fisher_z_is_finite_and_monotone():
    s = np.array([-1.0, -0.5, 0.0, 0.9, 0.999, 1.0], dtype=np.float32)
    z = fisher_z(s)
    assert np.isfinite(z).all() and (np.diff(z) > 0).all() and z[2] == 0.0


class _Invariant(nn.Module):
    """Ignores its input: every view of every image maps to the same features."""

    def __init__(self) -> None:
        super().__init__()
        self.v = nn.Parameter(torch.tensor([1.0, 2.0, 3.0, 4.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.v.expand(x.shape[0], 4) + 0 * x.flatten(1)[:, :1]


def test_encodermi_signal_of_an_invariant_encoder_is_exactly_one():
    p = Contrastive(ContrastiveConfig(signal="encodermi", views=4))
    feats = query_features(_Invariant(), DIGITS.x, p.augment(DIGITS), 4, QUERY_SEED)
    assert torch.equal(encodermi_similarity(feats), torch.ones(120))
    sig = p.signals(_Invariant(), DIGITS, DIGITS.x, 2)
    assert sig.shape == (120, 2) and sig.dtype == np.float32
    assert np.all(sig == 1.0)


@pytest.mark.parametrize("signal", ["instance", "encodermi", "probe"])
def test_signals_are_the_same_queries_for_every_call(signal):
    model = make_model("mlp", DIGITS.shape, 8, seed=0, width=32)
    p = Contrastive(ContrastiveConfig(signal=signal, views=3))
    a = p.signals(model, DIGITS, DIGITS.x, 2)
    assert a.shape == (120, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, p.signals(model, DIGITS, DIGITS.x, 2))
    if signal != "probe":  # the query seed differs per column
        assert not np.array_equal(a[:, 0], a[:, 1])


def test_negative_bank_is_fixed_and_indexes_itself():
    rows, own = negative_bank(50, size=20)
    again, _ = negative_bank(50, size=20)
    np.testing.assert_array_equal(rows, again)
    assert rows.size == 20 and (own >= 0).sum() == 20
    assert (own[torch.as_tensor(rows)] == torch.arange(20)).all()


def test_utility_keys_and_a_perfect_encoder():
    # features = the label one-hot: probe and kNN are perfect on every part
    y = torch.arange(60) % 3
    x = torch.nn.functional.one_hot(y, 3).float()[:, None, None, :].expand(60, 1, 3, 3).clone()
    ds = Dataset("toy", x, y, ("a", "b", "c"))
    plan = make_plan(ds, "random:0.2", 0, 4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(9, 9), nn.Linear(9, 4))
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(9))
        model[1].bias.zero_()
    u = Contrastive().utility(model, x, y, plan)
    parts = ("forget", "retain", "test")
    assert set(u) == {f"{k}_{p}_acc" for k in ("probe", "knn") for p in parts} | {
        f"{p}_acc" for p in parts
    }
    assert all(v == 1.0 for v in u.values())


TINY = {
    "paradigm": "contrastive",
    "data": {"limit": 200},
    "train": {"epochs": 2, "batch_size": 64},
    "unlearn": {"methods": ["finetune"]},
    "attack": {"shadows": 4, "attacks": ["loss", "lira_online"]},
    "verdict": {"n_boot": 200},
    "contrastive": {"views": 3, "proj_dim": 16},
    "model": {"kwargs": {"width": 32}},
}


def test_run_audit_end_to_end_on_an_encoder(tmp_path):
    from unlearn_audit import run_audit

    table = json.loads(json.dumps(TINY))
    if "ulira" in AttackConfig.__dataclass_fields__:
        table["attack"]["ulira"] = False
    res = run_audit(
        from_dict(table), tmp_path / "run", progress=False, log=lambda m: None, render_report=False
    )
    r = res.results
    assert set(r["models"]) >= {"original", "reference", "noop", "retrain", "finetune"}
    assert r["paradigm"]["name"] == "contrastive" and r["paradigm"]["has_classes"] is False
    assert r["paradigm"]["difficulty"] is True and r["difficulty"] == {}  # ulira is off
    for entry in r["models"].values():
        u = entry["utility"]
        assert u["test_acc"] == u["probe_test_acc"] and 0 <= u["knn_forget_acc"] <= 1
    assert set(r["verdicts"]) >= {"noop", "retrain", "finetune"}
    with np.load(tmp_path / "run" / "signals.npz") as z:
        assert z["signals"].shape[1:] == (200, 1) and np.isfinite(z["signals"]).all()


@pytest.fixture(scope="module")
def difficulty_run(tmp_path_factory):
    """The tiny encoder audit with U-LiRA on: difficulty from the encoder's features."""
    from unlearn_audit import run_audit

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    table = json.loads(json.dumps(TINY))
    table["attack"]["ulira"] = True
    out = tmp_path_factory.mktemp("encoder-difficulty") / "run"
    try:
        res = run_audit(from_dict(table), out, progress=False, log=lambda m: None)
    finally:
        torch.set_num_threads(n)
    return out, res.results


def test_an_encoder_audit_learns_the_difficulty_index_on_its_shadows(difficulty_run):
    import csv

    from unlearn_audit.difficulty import ENCODER_FEATURES

    out, r = difficulty_run
    assert r["paradigm"]["difficulty"] is True and r["paradigm"]["has_classes"] is False
    n_forget = r["data"]["n_forget"]
    assert set(r["difficulty"]) == {"noop", "retrain", "finetune"}
    for entry in r["difficulty"].values():
        assert entry["n"] == n_forget and entry["n_fit"] == 2 * n_forget  # IN 2 of 4 shadows
        assert list(entry["spearman"]["features"]) == list(ENCODER_FEATURES)
        assert list(entry["weights"]) == list(ENCODER_FEATURES)
        assert 0 <= entry["feasibility"]["share"] <= 1
    with (out / "samples.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    forget = [row for row in rows if row["split"] == "forget"]
    for name in ENCODER_FEATURES:
        assert all(row[f"feature.{name}"] != "" for row in forget)
        assert all(row[f"feature.{name}"] == "" for row in rows if row["split"] != "forget")
    ranks = sorted(int(row["difficulty_rank.finetune"]) for row in forget)
    assert ranks == list(range(1, n_forget + 1))
    assert {float(row["residual.finetune"]) for row in forget} <= {0, 0.25, 0.5, 0.75, 1}
    html = (out / "report.html").read_text()
    assert "finetune: Spearman" in html  # the difficulty figure
    assert "Ordered by the combined difficulty rank learned for finetune" in html


def test_rank_prints_the_hardest_samples_of_an_encoder_audit(difficulty_run):
    import csv

    from click.testing import CliRunner

    from unlearn_audit.cli import main
    from unlearn_audit.difficulty import ENCODER_FEATURES

    out, _ = difficulty_run
    res = CliRunner().invoke(main, ["rank", str(out), "--top", "5"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("finetune: ") and "Spearman of the index" in lines[0]
    assert lines[1].startswith("5 of ")
    assert lines[2].split()[:6] == ["#", "id", "label", "rank", "index", "residual"]
    assert lines[2].split()[6:13] == list(ENCODER_FEATURES)
    with (out / "samples.csv").open(newline="") as fh:
        forget = [row for row in csv.DictReader(fh) if row["split"] == "forget"]
    hardest = sorted(forget, key=lambda row: int(row["difficulty_rank.finetune"]))[:5]
    assert [ln.split()[1] for ln in lines[3:8]] == [row["id"] for row in hardest]
    by = CliRunner().invoke(main, ["rank", str(out), "--by", "knn_margin", "--top", "3"])
    assert by.exit_code == 0, by.output
    want = sorted(forget, key=lambda row: (-float(row["feature.knn_margin"]), int(row["index"])))
    assert [ln.split()[1] for ln in by.output.splitlines()[3:6]] == [r["id"] for r in want[:3]]


@pytest.mark.parametrize("method", ["simclr", "moco", "byol"])
def test_every_contrastive_unlearner_runs_on_the_objective(method):
    import copy

    from unlearn_audit import unlearners
    from unlearn_audit.learning import fit, make_generator

    cpu = torch.device("cpu")
    ds = load_dataset("digits", limit=48)
    p = Contrastive(ContrastiveConfig(method=method, proj_dim=8))
    recipe = Recipe(epochs=1, batch_size=16, lr=0.05)
    obj = p.objective(ds, recipe)
    model = make_model("mlp", ds.shape, 8, seed=0, width=16)
    fit(model, ds.x, ds.y, obj.loss, recipe, make_generator(0, cpu))
    before = copy.deepcopy(model.state_dict())
    names = [n for n in unlearners.available() if "contrastive" in unlearners.get(n).paradigms]
    assert {"finetune", "gradient_ascent", "retrain", "noop"} <= set(names)
    for name in names:
        method_ = unlearners.create(name)

        def run(m=method_):
            return m.unlearn(
                model,
                (ds.x[:8], ds.y[:8]),
                (ds.x[8:32], ds.y[8:32]),
                objective=obj,
                recipe=recipe,
                generator=make_generator(1, cpu),
                reference=(ds.x[32:], ds.y[32:]),
            )

        if method_.needs_negatives and not p.negatives:  # BYOL: alignment_calibration
            with pytest.raises(unlearners.UnlearnerError, match="negative pairs"):
                run()
            continue
        z = run()(ds.x)
        assert z.shape == (48, 8) and torch.isfinite(z).all(), name
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_the_producer_reads_the_contrastive_table():
    from unlearn_audit.audit.inputs import AuditInputs, load_setup

    cfg = from_dict(
        {
            "paradigm": "contrastive",
            "data": {"limit": 60},
            "contrastive": {"proj_dim": 12, "epochs": 3},
        }
    )
    p, _ = load_setup(cfg, AuditInputs())
    assert getattr(p.paradigm, "settings", None) == cfg.contrastive
    assert p.new_model(0)(p.x[:2]).shape == (2, 12)
    assert p.base["recipe"]["epochs"] == 3 and p.base["recipe"]["batch_size"] == 128


def test_signal_descriptions_name_the_signal():
    assert "logit-scaled confidence" in get_paradigm("supervised").signal_description()
    for signal, word in (("instance", "instance"), ("encodermi", "EncoderMI"), ("probe", "probe")):
        assert word in Contrastive(ContrastiveConfig(signal=signal)).signal_description()


def test_the_signal_key_follows_the_signal_settings_and_not_the_training_ones():
    from unlearn_audit.audit.inputs import AuditInputs, load_setup

    def key(**contrastive):
        cfg = from_dict(
            {"paradigm": "contrastive", "data": {"limit": 60}, **{"contrastive": contrastive}}
        )
        return load_setup(cfg, AuditInputs())[0].signal_key

    base = key()
    assert key(signal="encodermi") != base and key(views=4) != base
    assert key(temperature=0.5) != base  # the instance signal's temperature
    assert key(knn_k=5) == base and key(epochs=3) == base  # utility / training only
    assert key(signal="probe", views=4) == key(signal="probe")  # probe ignores views


def test_a_byol_audit_runs_and_refuses_methods_that_need_negatives_before_any_file(tmp_path):
    from unlearn_audit import run_audit

    byol = {**TINY, "contrastive": {**TINY["contrastive"], "method": "byol"}}
    res = run_audit(
        from_dict(byol), tmp_path / "run", progress=False, log=lambda m: None, render_report=False
    )
    r = res.results
    assert r["config"]["contrastive"]["method"] == "byol"
    assert set(r["verdicts"]) >= {"noop", "retrain", "finetune"}
    assert all(r["models"][m]["utility"] is not None for m in ("original", "finetune"))
    # the encoder features of a BYOL audit (its grad_norm is of BYOL's own loss)
    assert "error" not in r["difficulty"]["finetune"] and r["paradigm"]["difficulty"] is True
    bad = {**byol, "unlearn": {"methods": ["alignment_calibration"]}}
    with pytest.raises(ConfigError, match="needs an objective with negative pairs"):
        run_audit(from_dict(bad), tmp_path / "bad", progress=False, log=lambda m: None)
    assert not (tmp_path / "bad").exists()
