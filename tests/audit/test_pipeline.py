"""End-to-end behaviour of run_audit on a tiny configuration (seconds, not minutes)."""

import json

import numpy as np
import pytest

import unlearn_audit.audit.production as pipeline
import unlearn_audit.unlearners.tuning as tuning
from unlearn_audit import run_audit
from unlearn_audit.audit.config import from_dict

TINY = {
    "data": {"limit": 240},
    "train": {"epochs": 4},
    "attack": {"shadows": 4, "ulira": False},
    "verdict": {"n_boot": 200},
}
WITH_ULIRA = {**TINY, "attack": {"shadows": 4, "ulira": True}}


def _count_fits(monkeypatch):
    calls = []
    real = pipeline.fit

    def counting(*args, **kwargs):
        calls.append(kwargs.get("desc"))
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "fit", counting)
    monkeypatch.setattr(tuning, "fit", counting)  # retrain and the fine-tuning methods
    return calls


def _stable(results):
    out = json.loads(json.dumps(results))
    for k in ("run", "timings"):
        out.pop(k)
    for m in out["models"].values():
        m.pop("seconds")
    return out


def test_run_directory_contract(tmp_path):
    res = run_audit(from_dict(WITH_ULIRA), tmp_path / "run", progress=False, log=lambda m: None)
    run = tmp_path / "run"
    for name in ("config.toml", "results.json", "samples.csv", "signals.npz", "report.html"):
        assert (run / name).is_file(), name
    r = json.loads((run / "results.json").read_text())
    assert r == json.loads(json.dumps(res.results))
    assert r["schema_version"] == 2 and r["tool"]["name"] == "unlearn-audit"
    assert r["paradigm"]["name"] == "supervised" and r["paradigm"]["has_classes"] is True
    assert set(r["models"]) == {
        "original",
        "reference",
        "noop",
        "retrain",
        "planted",
        "finetune",
        "gradient_ascent",
    }
    assert r["models"]["planted"]["role"] == "control"
    assert r["data"]["n_pool"] == 240 and r["data"]["n_members"] == 120
    assert r["data"]["n_public"] == 12 and r["data"]["n_nonmembers"] == 108
    assert r["data"]["n_forget"] + r["data"]["n_retain"] == 120
    assert set(r["verdicts"]) == {"noop", "retrain", "planted", "finetune", "gradient_ascent"}
    n_forget = r["data"]["n_forget"]
    for v in r["verdicts"].values():
        assert v["status"] in {"pass", "fail", "inconclusive"} and v["reasons"]
        res, rec = v["evidence"]["residual"], v["evidence"]["records"]
        assert res["attack"] in {"lira_online", "lira_offline", "rmia_online"}
        assert res["level"] == pytest.approx(0.9) and res["max_residual"] == 0.3
        assert rec["n_forget"] == n_forget and rec["n_recognisable"] == len(rec["recognisable"])
    noop = r["verdicts"]["noop"]["evidence"]["residual"]["value"]
    assert noop is None or noop == pytest.approx(1.0)  # None: this tiny audit has no signal
    power = r["power"]
    assert power["mdr"] is None or 0 < power["mdr"] <= 1
    assert power["statement"].startswith("This audit")
    assert power["planted"]["n_planted"] == round(0.5 * n_forget)
    wt = power["weighting"]
    assert wt["scheme"] == "separation" and wt["n_forget"] == n_forget
    assert 0 < wt["effective_forget_records"] <= n_forget
    for model in r["models"]:
        fv = r["attacks"][model]["lira_online"]["forget_vs_nonmember"]
        assert 0 <= fv["auc"] <= 1 and set(fv["tpr_at_fpr"]) == {"0.001", "0.01"}
    sig = np.load(run / "signals.npz")
    assert sig["signals"].shape[:2] == (4 + 7, 240) and sig["keep"].shape == (11, 240)
    names = list(sig["model_names"])
    planted_keep = sig["keep"][names.index("planted")]
    assert planted_keep.sum() == r["data"]["n_retain"] + power["planted"]["n_planted"]
    assert not list(run.rglob("*.tmp"))
    lines = (run / "samples.csv").read_text().splitlines()
    assert len(lines) == 241 and lines[0].startswith("index,id,label,split,signal.original")
    header = lines[0].split(",")
    col = header.index("weight")
    weights = [float(ln.split(",")[col]) for ln in lines[1:]]
    assert all(0 <= w <= 1 for w in weights) and max(weights) > 0  # every record weighed
    for method in ("noop", "retrain", "finetune", "gradient_ascent"):
        entry = r["forgetting"][method]
        assert 0 <= entry["forget_quality"] <= 1 and entry["n_bank"] == 4
        assert entry["ulira_auc_ci"][0] <= entry["ulira_auc"] <= entry["ulira_auc_ci"][1]
        col = header.index(f"epsilon.{method}")
        filled = [ln.split(",")[3] for ln in lines[1:] if ln.split(",")[col] != ""]
        assert set(filled) == {"forget"} and len(filled) == r["data"]["n_forget"]
        leak = r["retain_leakage"][method]
        assert leak["ci"][0] <= leak["diff"] <= leak["ci"][1]
    assert r["retain_leakage"]["noop"]["diff"] == 0.0
    assert len(list((run / "models").glob("ulira-finetune-*.json"))) == 4
    rows = [ln.split(",") for ln in lines[1:]]
    for name in r["verdicts"]:
        p, k = header.index(f"pvalue.{name}"), header.index(f"recognisable.{name}")
        forget_rows = [row for row in rows if row[3] == "forget"]
        assert all(0 < float(row[p]) <= 1 for row in forget_rows)
        flagged = sorted(int(row[0]) for row in forget_rows if row[k] == "1")
        assert flagged == r["verdicts"][name]["evidence"]["records"]["recognisable"]
        assert all(row[p] == "" for row in rows if row[3] != "forget")
    kept = [row for row in rows if row[header.index("planted")] == "1"]
    assert len(kept) == power["planted"]["n_planted"] and {row[3] for row in kept} == {"forget"}


def test_second_run_trains_nothing_and_gives_the_same_results(tmp_path, monkeypatch):
    first = run_audit(from_dict(WITH_ULIRA), tmp_path / "run", progress=False, log=lambda m: None)
    calls = _count_fits(monkeypatch)
    second = run_audit(from_dict(WITH_ULIRA), tmp_path / "run", progress=False, log=lambda m: None)
    assert calls == []
    assert _stable(first.results) == _stable(second.results)


def test_same_seed_same_results_in_a_fresh_directory(tmp_path):
    a = run_audit(from_dict(TINY), tmp_path / "a", progress=False, log=lambda m: None)
    b = run_audit(from_dict(TINY), tmp_path / "b", progress=False, log=lambda m: None)
    assert _stable(a.results) == _stable(b.results)


def test_interrupted_run_resumes_with_what_it_finished(tmp_path, monkeypatch):
    calls = _count_fits(monkeypatch)
    real_fit = pipeline.fit

    def dying(*args, **kwargs):
        if kwargs.get("desc") == "shadow" and calls.count("shadow") == 2:  # dies in the 3rd
            raise KeyboardInterrupt
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(pipeline, "fit", dying)
    with pytest.raises(KeyboardInterrupt):
        run_audit(from_dict(TINY), tmp_path / "run", progress=False, log=lambda m: None)
    assert not (tmp_path / "run" / "results.json").exists()
    assert len(list((tmp_path / "run" / "models").glob("shadow-*.json"))) == 2
    done = list(calls)
    calls.clear()
    monkeypatch.setattr(pipeline, "fit", real_fit)
    calls = _count_fits(monkeypatch)
    run_audit(from_dict(TINY), tmp_path / "run", progress=False, log=lambda m: None)
    assert calls == ["shadow", "shadow"], (done, calls)


def test_growing_the_bank_reuses_every_shadow(tmp_path, monkeypatch):
    run_audit(
        from_dict(TINY), tmp_path / "run", progress=False, log=lambda m: None, render_report=False
    )
    calls = _count_fits(monkeypatch)
    bigger = {**TINY, "attack": {"shadows": 6, "ulira": False}}
    run_audit(
        from_dict(bigger), tmp_path / "run", progress=False, log=lambda m: None, render_report=False
    )
    assert calls == ["shadow", "shadow"]


def test_a_diverging_method_is_recorded_and_the_audit_completes(tmp_path):
    cfg = from_dict(
        {
            **TINY,
            "unlearn": {
                "methods": ["finetune", "gradient_ascent"],
                "params": {"gradient_ascent": {"lr_scale": 1e6, "epochs": 20}},
            },
        }
    )
    res = run_audit(cfg, tmp_path / "run", progress=False, log=lambda m: None)
    ga = res.results["models"]["gradient_ascent"]
    assert "error" in ga and ga["utility"] is None
    assert res.results["verdicts"]["gradient_ascent"]["status"] in {"fail", "inconclusive"}
    assert "failed" in " ".join(res.results["verdicts"]["gradient_ascent"]["reasons"])
    assert "finetune" in res.results["attacks"]
