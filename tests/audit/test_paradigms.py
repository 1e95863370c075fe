"""Paradigms: one factory builds them, each declares what it can do, and the pipeline asks
the declarations, never the type (a third paradigm registered here drives its branches)."""

import dataclasses

import pytest

from unlearn_audit import run_audit
from unlearn_audit.audit import paradigms
from unlearn_audit.audit.config import ConfigError, check_file, from_dict
from unlearn_audit.audit.contrastive import Contrastive
from unlearn_audit.audit.paradigms import (
    Supervised,
    available_paradigms,
    difficulty_features,
    get_paradigm,
    make_paradigm,
    register_paradigm,
)
from unlearn_audit.audit.plan import make_plan
from unlearn_audit.difficulty import ClassifierFeatures, EncoderFeatures
from unlearn_audit.learning import Recipe, load_dataset, make_model
from unlearn_audit.learning.train import CrossEntropy
from unlearn_audit.unlearners import paradigm_of

DIGITS = load_dataset("digits", limit=120)


def test_the_factory_builds_the_configured_paradigm():
    assert available_paradigms() == ["contrastive", "supervised"]
    assert type(make_paradigm(from_dict({}))) is Supervised
    cfg = from_dict({"paradigm": "contrastive", "contrastive": {"proj_dim": 12}})
    p = make_paradigm(cfg)
    assert isinstance(p, Contrastive) and p.settings == cfg.contrastive
    assert isinstance(get_paradigm("contrastive"), Contrastive)  # no config: the defaults
    unknown = r"^unknown paradigm 'toy'; valid: contrastive, supervised$"
    with pytest.raises(ConfigError, match=unknown):
        make_paradigm(dataclasses.replace(cfg, paradigm="toy"))


@pytest.mark.parametrize(
    ("name", "has_classes", "batched_trainable"),
    [("supervised", True, True), ("contrastive", False, False)],
)
def test_each_paradigm_declares_its_capabilities(name, has_classes, batched_trainable):
    p = make_paradigm(from_dict({"paradigm": name, "contrastive": {"proj_dim": 8}}))
    assert p.name == name and p.unlearner_paradigm == name
    assert (p.has_classes, p.batched_trainable) == (has_classes, batched_trainable)
    objective = p.objective(DIGITS, Recipe())
    # the objective declares the same paradigm to the unlearners
    assert objective.paradigm == paradigm_of(objective) == p.unlearner_paradigm
    assert p.batched_trainable == isinstance(objective, CrossEntropy)  # what the engine trains
    features = p.difficulty_features(DIGITS, Recipe(batch_size=16))
    assert isinstance(features, ClassifierFeatures if has_classes else EncoderFeatures)
    plan = make_plan(DIGITS, "random:0.5", 0, 4)
    model = make_model("mlp", DIGITS.shape, p.num_outputs(DIGITS), seed=0, width=16)
    utility = p.utility(model, DIGITS.x, DIGITS.y, plan)
    assert tuple(utility) == p.utility_metrics
    assert {"forget_acc", "retain_acc", "test_acc"} <= set(p.utility_metrics)  # the verdict's


def test_the_contrastive_paradigm_supplies_the_encoder_features_of_its_settings():
    cfg = from_dict(
        {"paradigm": "contrastive", "contrastive": {"method": "byol", "views": 4, "knn_k": 7}}
    )
    p = make_paradigm(cfg)
    recipe = p.recipe(cfg.train)
    fs = difficulty_features(p, DIGITS, recipe)
    assert isinstance(fs, EncoderFeatures)
    assert (fs.views, fs.k, fs.negatives) == (4, 7, recipe.batch_size - 1)
    assert type(fs.objective) is type(p.objective(DIGITS, recipe))  # its own loss: BYOL
    assert fs.augment == p.augment(DIGITS)


def test_a_paradigm_without_the_capability_supplies_no_features():
    class Old:  # registered before difficulty_features existed
        name = "old"

    assert difficulty_features(Old(), DIGITS, Recipe()) is None  # type: ignore[arg-type]


class Toy(Supervised):
    """A third paradigm: its objective is a CrossEntropy, but it declares neither class
    logits nor batched training, so only its declarations can steer the pipeline."""

    name = "toy"
    has_classes = False
    batched_trainable = False

    def difficulty_features(self, ds, recipe):
        return None  # it supplies no difficulty features


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setattr(paradigms, "_FACTORIES", dict(paradigms._FACTORIES))
    monkeypatch.setattr(paradigms, "_DEFAULTS", dict(paradigms._DEFAULTS))
    register_paradigm("toy", lambda cfg: Toy())


def test_a_registered_paradigm_passes_the_config_validation(toy):
    assert "toy" in available_paradigms()
    check_file({"paradigm": "toy"})
    assert type(make_paradigm(from_dict({"paradigm": "toy"}))) is Toy
    with pytest.raises(ValueError, match="non-empty name"):
        register_paradigm("", lambda cfg: Toy())


def test_a_third_paradigm_drives_the_pipeline_by_its_capabilities(toy, tmp_path):
    from unlearn_audit.rank_cmd import load_table
    from unlearn_audit.reports.figures import signal_figure
    from unlearn_audit.runfiles import RunFileError, read_samples

    table = {
        "paradigm": "toy",
        "data": {"limit": 200},
        "train": {"epochs": 2},
        "unlearn": {"methods": ["finetune"]},
        "attack": {"shadows": 4, "ulira": True, "engine": "batched"},
        "verdict": {"n_boot": 200, "planted_fraction": 0.0},
    }
    logs: list[str] = []
    run = tmp_path / "run"
    r = run_audit(from_dict(table), run, progress=False, log=logs.append, render_report=False)
    r = r.results
    assert r["paradigm"]["name"] == "toy" and r["paradigm"]["has_classes"] is False
    assert r["paradigm"]["difficulty"] is False
    # a CrossEntropy objective, yet no batched engine and no difficulty index: the flags decide
    assert any("batched trains cross-entropy models only; sequential here" in m for m in logs)
    assert "finetune" in r["forgetting"] and r["difficulty"] == {}
    assert any(m.startswith("difficulty: skipped") for m in logs)
    # the readers of the finished run ask the recorded capability
    with pytest.raises(RunFileError, match=r"this run's paradigm \(toy\) supplies no difficulty"):
        load_table(run)
    samples, _ = read_samples(run, r)
    assert samples is not None and "membership signal" in signal_figure(r, samples)


def test_the_contrastive_paradigm_brings_its_own_defaults_and_every_user_key_wins():
    builtin, encoder = from_dict({}), from_dict({"paradigm": "contrastive"})
    assert (builtin.train.epochs, builtin.train.lr, builtin.attack.shadows) == (40, 0.05, 64)
    assert (encoder.train.epochs, encoder.train.lr, encoder.attack.shadows) == (200, 0.1, 32)
    assert encoder.train.batch_size == builtin.train.batch_size  # only what it names changes
    assert encoder.to_dict()["train"] == {**builtin.to_dict()["train"], "epochs": 200, "lr": 0.1}
    mine = from_dict({"paradigm": "contrastive", "train": {"epochs": 7}, "attack": {"shadows": 64}})
    assert (mine.train.epochs, mine.train.lr, mine.attack.shadows) == (7, 0.1, 64)
    # the table handed in is not changed, and a wrong value is still refused by name
    table = {"paradigm": "contrastive"}
    from_dict(table)
    assert table == {"paradigm": "contrastive"}
    with pytest.raises(ConfigError, match="train.epochs"):
        check_file({"paradigm": "contrastive", "train": {"epochs": "many"}})


def test_the_paradigm_flag_brings_its_defaults_under_a_file_and_flags(tmp_path, monkeypatch):
    """`--paradigm contrastive` on the CLI lays the defaults under the file's keys and
    the other flags: a file's [train] epochs and an --epochs flag both win."""
    from click.testing import CliRunner

    import unlearn_audit
    from unlearn_audit.cli import main

    seen = []

    def fake_run_audit(cfg, out, **kwargs):
        seen.append(cfg)
        raise SystemExit(0)

    monkeypatch.setattr(unlearn_audit, "run_audit", fake_run_audit)
    conf = tmp_path / "mine.toml"
    conf.write_text("[train]\nepochs = 11\n")
    runs = [
        ["--paradigm", "contrastive"],
        ["--paradigm", "contrastive", "--config", str(conf)],
        ["--paradigm", "contrastive", "--epochs", "5", "--shadows", "8"],
    ]
    for extra in runs:
        result = CliRunner().invoke(main, ["audit", "--out", str(tmp_path / "run"), *extra])
        assert result.exit_code == 0, result.output
    got = [(c.train.epochs, c.train.lr, c.attack.shadows) for c in seen]
    assert got == [(200, 0.1, 32), (11, 0.1, 32), (5, 0.1, 8)]


def test_a_registered_paradigm_may_bring_defaults(toy):
    register_paradigm("toy", lambda cfg: Toy(), defaults={"attack": {"shadows": 4}})
    assert from_dict({"paradigm": "toy"}).attack.shadows == 4
    assert paradigms.paradigm_defaults("toy") == {"attack": {"shadows": 4}}
    paradigms.paradigm_defaults("toy")["attack"]["shadows"] = 99  # a copy
    assert from_dict({"paradigm": "toy"}).attack.shadows == 4
    with pytest.raises(ValueError, match="table"):
        register_paradigm("toy", lambda cfg: Toy(), defaults=[("attack", 4)])
    register_paradigm("toy", lambda cfg: Toy())  # registered again without: none
    assert from_dict({"paradigm": "toy"}).attack.shadows == 64
