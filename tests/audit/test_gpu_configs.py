"""The CIFAR-10 contrastive GPU configs: valid as written, and their audit runs on a CPU.

``configs/cifar10-simclr-gpu.toml`` and ``configs/cifar10-moco-gpu.toml`` take hours on a
GPU. Here each is loaded as written and checked (every key known, every method registered
and able to unlearn its encoder); then the audit it describes runs end to end on random
CIFAR-shaped images (a user ``.npz``) with only the sizes made tiny.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from unlearn_audit import run_audit, unlearners
from unlearn_audit.audit.config import check_file, from_dict, load_toml, merge
from unlearn_audit.audit.paradigms import make_paradigm
from unlearn_audit.learning import Recipe, fit, make_generator, make_model
from unlearn_audit.learning.data import Dataset

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
GPU = {"simclr": "cifar10-simclr-gpu.toml", "moco": "cifar10-moco-gpu.toml"}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _cifar_like(path: Path, n: int = 40) -> Path:
    """``n`` random 3x32x32 uint8 images in two classes, as a user's ``.npz``."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    np.savez(path, x=x, y=np.arange(n) % 2)
    return path


@pytest.mark.parametrize("method", sorted(GPU))
def test_the_config_as_written_is_valid(method):
    table = load_toml(CONFIGS / GPU[method])
    check_file(table)  # the file alone: every key known, every value valid
    cfg = from_dict(table)
    assert cfg.paradigm == "contrastive" and cfg.contrastive.method == method
    assert cfg.device == "cuda" and cfg.model.arch == "resnet18"
    assert (cfg.data.dataset, cfg.data.root, cfg.data.limit) == ("cifar10", "data", 20000)
    assert cfg.forget.spec == "random:0.2"
    paradigm = make_paradigm(cfg)
    recipe = paradigm.recipe(cfg.train)
    assert (
        (recipe.epochs, recipe.batch_size)
        == (cfg.train.epochs, cfg.train.batch_size)
        == (
            400,
            512,
        )
    )
    for name in cfg.unlearn.methods:  # registered, and able to unlearn this encoder
        m = unlearners.get(name)
        assert "contrastive" in m.paradigms, name
        assert not (m.needs_negatives and not paradigm.negatives), name
    assert {"gradient_constraint", "alignment_calibration"} <= set(cfg.unlearn.methods)


@pytest.mark.parametrize("method", sorted(GPU))
def test_its_resnet18_encoder_trains_a_step_on_cifar_shaped_images(method):
    """The config's architecture and objective fit 3x32x32 images (checked on the CPU)."""
    cfg = from_dict(load_toml(CONFIGS / GPU[method]))
    paradigm = make_paradigm(cfg)
    g = torch.Generator().manual_seed(0)
    ds = Dataset(
        "cifar-like", torch.rand(8, 3, 32, 32, generator=g), torch.arange(8) % 2, ("a", "b")
    )
    objective = paradigm.objective(ds, Recipe(epochs=1, batch_size=8))
    model = make_model("resnet18", ds.shape, paradigm.num_outputs(ds), seed=0)
    fit(
        model,
        ds.x,
        ds.y,
        objective.loss,
        Recipe(epochs=1, batch_size=8),
        make_generator(0, torch.device("cpu")),
    )
    z = model.eval()(ds.x)
    assert z.shape == (8, cfg.contrastive.proj_dim) and torch.isfinite(z).all()


@pytest.mark.parametrize("method", sorted(GPU))
def test_its_audit_runs_end_to_end_on_a_cpu(method, tmp_path):
    """Everything as written but the sizes: 40 random CIFAR-shaped images on the CPU,
    1 epoch, 4 shadows, a narrow ``cnn`` (ResNet-18 on a CPU takes a minute; the test
    above trains the config's own), 2 query views."""
    table = load_toml(CONFIGS / GPU[method])
    tiny = {
        "device": "cpu",
        "data": {"dataset": str(_cifar_like(tmp_path / "cifar-like.npz")), "root": "", "limit": 0},
        "model": {"arch": "cnn", "kwargs": {"width": 4}},
        "train": {"epochs": 1, "batch_size": 16},
        "attack": {"shadows": 4},
        "verdict": {"n_boot": 100},
        "contrastive": {"views": 2, "queue_size": 0},
    }
    cfg = from_dict(merge(table, tiny))
    res = run_audit(cfg, tmp_path / "run", progress=False, log=lambda m: None, render_report=False)
    r = json.loads((tmp_path / "run" / "results.json").read_text())
    assert r == json.loads(json.dumps(res.results))
    assert r["paradigm"]["name"] == "contrastive"
    assert r["config"]["contrastive"]["method"] == method
    assert r["data"]["n_pool"] == 40 and r["data"]["n_forget"] == 4  # 20% of the 20 members
    judged = {"noop", "retrain", *table["unlearn"]["methods"]}
    assert judged <= set(r["verdicts"])
    for name in judged:  # every method ran (none failed) and was measured
        assert "error" not in r["models"][name], r["models"][name].get("error")
        assert 0 <= r["models"][name]["utility"]["knn_test_acc"] <= 1
        assert r["verdicts"][name]["status"] in ("pass", "fail", "inconclusive")
