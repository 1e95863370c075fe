"""Difficulty inside the audit (results.json block, samples.csv columns) and ``rank``.

One tiny digits audit (240 samples, 4 epochs, 4 shadows, U-LiRA on) is shared by
the module: ``finetune`` runs, ``gradient_ascent`` is pushed to diverge, so the
run also shows that a failed method gets no difficulty block.
"""

import csv
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import unlearn_audit.audit.pipeline as pipeline
from unlearn_audit import run_audit
from unlearn_audit.audit.config import ConfigError, from_dict
from unlearn_audit.cli import main
from unlearn_audit.difficulty.classifier import FEATURES
from unlearn_audit.runfiles import read_samples

TINY = {
    "data": {"limit": 240},
    "train": {"epochs": 4},
    "attack": {"shadows": 4, "ulira": True},
    "verdict": {"n_boot": 200},
    "unlearn": {
        "methods": ["finetune", "gradient_ascent"],
        "params": {"gradient_ascent": {"lr_scale": 1e6, "epochs": 20}},  # diverges
    },
}
WITH_BLOCK = ("noop", "retrain", "finetune")


def _quiet(msg: str) -> None:
    pass


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("difficulty") / "run"
    res = run_audit(from_dict(TINY), out, progress=False, log=_quiet)
    return out, res.results


def _rows(path):
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_results_have_a_difficulty_block_per_method_with_a_bank(run):
    out, results = run
    assert "error" in results["models"]["gradient_ascent"]
    block = results["difficulty"]
    assert set(block) == set(WITH_BLOCK)  # no block for the failed method
    n_forget = results["data"]["n_forget"]
    for name in WITH_BLOCK:
        e = block[name]
        assert e["n"] == n_forget and e["n_shadows"] == 4
        assert e["n_fit"] == 2 * n_forget  # every forget sample is IN 2 of 4 shadows
        assert set(e["spearman"]["features"]) == set(FEATURES)
        assert -1 <= e["spearman"]["index"] <= 1
        fe = e["feasibility"]
        assert fe["bar"] == 0.75 and 0 <= fe["share"] <= 1
        assert fe["n_infeasible"] == round((1 - fe["share"]) * n_forget)
        d = e["deciles"]
        assert d["size"] == max(1, round(0.1 * n_forget))
        assert 0 <= d["easiest"] <= 1 and 0 <= d["hardest"] <= 1
    assert "difficulty" in results["timings"]
    assert json.loads((out / "results.json").read_text())["difficulty"] == block


def test_samples_csv_has_the_columns_on_forget_rows_only(run):
    out, results = run
    rows = _rows(out / "samples.csv")
    header = list(rows[0])
    for f in FEATURES:
        assert f"feature.{f}" in header
    for m in WITH_BLOCK:
        for prefix in ("difficulty", "difficulty_rank", "residual", "flags"):
            assert f"{prefix}.{m}" in header
    assert not any(c.endswith(".gradient_ascent") and c.startswith("diff") for c in header)
    forget = [r for r in rows if r["split"] == "forget"]
    others = [r for r in rows if r["split"] != "forget"]
    assert all(r["feature.memorization"] != "" for r in forget)
    assert all(r["feature.memorization"] == "" and r["flags.finetune"] == "" for r in others)
    ranks = sorted(int(r["difficulty_rank.finetune"]) for r in forget)
    assert ranks == list(range(1, len(forget) + 1))
    flagged = [r for r in forget if r["flags.finetune"]]
    share = results["difficulty"]["finetune"]["feasibility"]["share"]
    assert len(flagged) == round((1 - share) * len(forget))
    assert flagged  # this seeded run has infeasible samples
    for r in flagged:
        assert r["flags.finetune"].startswith("infeasible at this budget: predicted residual")
        assert float(r["difficulty.finetune"]) > 0.75
    # the realised residual is the mid-rank among never-trained shadows: k/4 with 2 OUT
    res = {float(r["residual.finetune"]) for r in forget}
    assert res <= {0.0, 0.25, 0.5, 0.75, 1.0}
    samples, note = read_samples(out)
    assert note is None and samples is not None
    assert "flags.finetune" in samples.text and "flags.finetune" not in samples.numeric


def test_report_orders_the_hardest_samples_by_the_methods_rank(run):
    out, _ = run
    html = (out / "report.html").read_text()
    assert "Ordered by the combined difficulty rank learned for finetune" in html
    assert "finetune: Spearman" in html  # difficulty figure, one panel per method


def test_a_failing_difficulty_is_recorded_and_the_audit_completes(run, tmp_path, monkeypatch):
    src, _ = run
    shutil.copytree(src / "models", tmp_path / "run" / "models")  # trains nothing

    def boom(**kwargs):
        raise RuntimeError("broken feature")

    monkeypatch.setattr(pipeline, "run_difficulty", boom)
    res = run_audit(
        from_dict(TINY), tmp_path / "run", progress=False, log=_quiet, render_report=False
    )
    assert res.results["difficulty"] == {
        m: {"error": "RuntimeError: broken feature"} for m in WITH_BLOCK
    }
    assert res.results["verdicts"]["finetune"]["status"] in {"pass", "fail", "inconclusive"}
    header = (tmp_path / "run" / "samples.csv").read_text().splitlines()[0]
    assert "feature." not in header and "difficulty" not in header


def test_no_block_without_ulira_or_when_disabled(run, tmp_path):
    src, _ = run
    shutil.copytree(src / "models", tmp_path / "a" / "models")
    off = {**TINY, "attack": {"shadows": 4, "ulira": False}}
    r = run_audit(from_dict(off), tmp_path / "a", progress=False, log=_quiet, render_report=False)
    assert r.results["difficulty"] == {} and r.results["forgetting"] == {}
    shutil.copytree(src / "models", tmp_path / "b" / "models")
    disabled = {**TINY, "difficulty": {"enabled": False}}
    r = run_audit(
        from_dict(disabled), tmp_path / "b", progress=False, log=_quiet, render_report=False
    )
    assert r.results["difficulty"] == {} and r.results["forgetting"]
    assert "feature." not in (tmp_path / "b" / "samples.csv").read_text().splitlines()[0]


def test_text_columns_are_quoted_and_read_back_whole():
    import torch

    from unlearn_audit.audit.measure import samples_csv
    from unlearn_audit.audit.plan import make_plan
    from unlearn_audit.learning.data import Dataset

    ds = Dataset("toy", torch.zeros(20, 1, 2, 2), torch.arange(20) % 2, ("a", "b"))
    plan = make_plan(ds, "random:0.2", 0, 4)
    flags = np.full(20, "", dtype=object)
    tricky = 'infeasible at this budget: a "quoted", comma-separated reason'
    flags[plan.forget] = tricky
    rank = np.full(20, np.nan)
    rank[plan.forget] = np.arange(1, plan.forget.size + 1) * 1_000_000.0
    text = samples_csv(plan, ds.y.numpy(), None, {}, {}, {"flags.m": flags, "rank.m": rank})
    rows = list(csv.DictReader(text.splitlines()))
    got = {int(r["index"]): r for r in rows}
    for i in plan.forget:
        assert got[i]["flags.m"] == tricky
    assert sorted(int(got[i]["rank.m"]) for i in plan.forget) == [
        k * 1_000_000 for k in range(1, plan.forget.size + 1)
    ]  # whole numbers are written exactly, not as 1e+06
    assert all(r["flags.m"] == "" for r in rows if int(r["index"]) not in set(plan.forget))


@pytest.mark.parametrize("bar", [0.0, 1.5, -0.1])
def test_bar_is_validated(bar):
    with pytest.raises(ConfigError, match=r"difficulty.bar must lie in \(0, 1\]"):
        from_dict({"difficulty": {"bar": bar}})


# --- unlearn-audit rank -------------------------------------------------------------


def _rank(*args):
    return CliRunner().invoke(main, ["rank", *map(str, args)])


def _table(output):
    """Data lines of the printed table: {column: cell} (flags is the rest of the line)."""
    lines = output.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("#"))
    head = lines[start].split()
    out = []
    for ln in lines[start + 1 :]:
        cells = ln.split()
        row = dict(zip(head[:-1], cells[: len(head) - 1], strict=True))
        row["flags"] = " ".join(cells[len(head) - 1 :])
        out.append(row)
    return out


def test_rank_prints_the_hardest_first(run):
    out, results = run
    res = _rank(out)
    assert res.exit_code == 0, res.output
    assert res.output.startswith("finetune: ")  # the first unlearner, not a control
    table = _table(res.output)
    assert [int(r["rank"]) for r in table] == list(range(1, len(table) + 1))
    forget = {r["id"]: r for r in _rows(out / "samples.csv") if r["split"] == "forget"}
    first = forget[table[0]["id"]]
    assert first["difficulty_rank.finetune"] == "1"
    hardest = max(forget.values(), key=lambda r: float(r["difficulty.finetune"]))
    assert hardest["id"] == table[0]["id"]
    assert len(table) == min(20, len(forget))
    for f in FEATURES:
        assert f in res.output.splitlines()[2]


def test_rank_top_by_and_method(run):
    out, _ = run
    res = _rank(out, "--top", 3, "--by", "lira", "--method", "noop")
    assert res.exit_code == 0, res.output
    table = _table(res.output)
    assert len(table) == 3 and res.output.startswith("noop: ")
    forget = [r for r in _rows(out / "samples.csv") if r["split"] == "forget"]
    want = sorted(forget, key=lambda r: (-float(r["feature.lira"]), int(r["index"])))[:3]
    assert [r["id"] for r in table] == [r["id"] for r in want]
    by_res = _table(_rank(out, "--by", "residual").output)
    values = [float(r["residual"]) for r in by_res]
    assert values == sorted(values, reverse=True)


def test_rank_is_stable_under_row_reordering(run, tmp_path):
    out, _ = run
    lines = (out / "samples.csv").read_text().splitlines(keepends=True)
    body = lines[1:]
    order = np.random.default_rng(0).permutation(len(body))
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    (shuffled / "samples.csv").write_text(lines[0] + "".join(body[i] for i in order))
    shutil.copy(out / "results.json", shuffled / "results.json")
    for args in ([], ["--by", "entanglement"], ["--by", "residual", "--method", "retrain"]):
        a, b = _rank(out, *args), _rank(shuffled, *args)
        assert a.exit_code == 0 and a.output == b.output


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (
            ["--by", "nope"],
            "error: unknown feature 'nope'; valid: memorization, lira, loss, "
            "margin, grad_norm, stein, entanglement (or index, residual)",
        ),
        (
            ["--method", "gradient_ascent"],
            "error: no difficulty columns for method "
            "'gradient_ascent'; methods with them: noop, "
            "retrain, finetune",
        ),
        (["--top", "0"], "error: --top must be >= 1, got 0"),
    ],
)
def test_rank_bad_options_are_one_line(run, args, match):
    out, _ = run
    res = _rank(out, *args)
    assert res.exit_code == 2 and res.output.strip() == match


def test_rank_without_a_run_or_without_difficulty(tmp_path):
    res = _rank(tmp_path / "none")
    assert res.exit_code == 2
    assert res.output.strip() == f"error: {tmp_path / 'none'}: no such run directory"
    (tmp_path / "old").mkdir()
    res = _rank(tmp_path / "old")
    assert res.exit_code == 2 and "samples.csv: file not found" in res.output
    (tmp_path / "old" / "samples.csv").write_text(
        "index,id,label,split,signal.original\n0,0,1,forget,0.5\n"
    )
    res = _rank(tmp_path / "old")
    assert res.exit_code == 2 and "has no difficulty columns" in res.output
    assert "attack.ulira = true" in res.output and len(res.output.strip().splitlines()) == 1


def test_rank_says_an_old_contrastive_run_has_no_difficulty(tmp_path):
    """A run written before ``paradigm.difficulty`` (encoders had no difficulty then)."""
    import json

    run = tmp_path / "enc"
    run.mkdir()
    (run / "samples.csv").write_text("index,id,label,split,signal.original\n0,0,1,forget,0.5\n")
    old = {"config": {"paradigm": "contrastive"}, "paradigm": {"name": "contrastive"}}
    (run / "results.json").write_text(json.dumps(old))
    res = _rank(run)
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert "this run audited contrastive models without class logits" in res.output
    assert "computed difficulty for classifiers only" in res.output
    assert "no paradigm.difficulty" in res.output
    assert "rerun the audit with this version" in res.output
    # the same run written now records the capability: then the ulira advice applies
    (run / "results.json").write_text(
        json.dumps({**old, "paradigm": {"name": "contrastive", "difficulty": True}})
    )
    res = _rank(run)
    assert res.exit_code == 2 and "attack.ulira = true and difficulty.enabled" in res.output
