"""Real-data integration tests: whole audits whose controls must behave (marked slow)."""

import json

import pytest
from click.testing import CliRunner

from unlearn_audit.cli import main


@pytest.mark.slow
def test_fashion_mnist_audit_controls_separate(tmp_path, require_fashion):
    out = tmp_path / "fmnist"
    res = CliRunner().invoke(
        main,
        [
            "audit",
            "--dataset",
            "fashion-mnist",
            "--data-root",
            str(require_fashion),
            "--limit",
            "3000",
            "--epochs",
            "20",
            "--shadows",
            "8",
            "--forget",
            "random:0.2",
            "--out",
            str(out),
            "--quiet",
            "--no-report",
        ],
    )
    assert res.exit_code == 0, res.output
    r = json.loads((out / "results.json").read_text())
    assert r["data"]["dataset"] == "fashion-mnist" and r["data"]["n_forget"] == 300
    assert r["controls"]["separated"], r["controls"]
    assert r["verdicts"]["noop"]["status"] == "fail"
    assert r["verdicts"]["retrain"]["status"] == "pass"
    orig = r["attacks"]["original"]["lira_online"]["forget_vs_nonmember"]
    ref = r["attacks"]["reference"]["lira_online"]["forget_vs_nonmember"]
    # the original leaks: its AUC interval lies above chance; the reference's contains it
    assert orig["auc_ci"][0] > 0.5, orig
    assert ref["auc_ci"][0] < 0.5 < ref["auc_ci"][1], ref
    assert r["models"]["original"]["utility"]["test_acc"] > 0.75


@pytest.mark.slow
def test_default_digits_audit_from_the_cli(tmp_path):
    """The README's first command, as a new user runs it (no argument but --out)."""
    out = tmp_path / "demo"
    res = CliRunner().invoke(main, ["audit", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    r = json.loads((out / "results.json").read_text())
    assert r["data"]["dataset"] == "digits" and r["data"]["n_pool"] == 1000
    assert r["data"]["n_forget"] == 300
    assert r["controls"]["separated"], r["controls"]
    assert r["verdicts"]["noop"]["status"] == "fail"
    # the retrain control is *shown* to have forgotten: its residual bound (0.17 on seed 0)
    # is below the 0.3 margin; the planted half-forgotten model is caught
    assert r["verdicts"]["retrain"]["status"] == "pass"
    assert r["verdicts"]["retrain"]["evidence"]["residual"]["ci"][1] < 0.3
    assert r["verdicts"]["planted"]["status"] == "fail"
    assert r["power"]["mdr"] is not None and r["power"]["mdr"] <= 0.3  # 0.20 on seed 0 (issue #13)
    assert "This audit would catch a model" in res.output
    assert (out / "report.html").stat().st_size > 10_000
    assert "controls separated: yes" in res.output


@pytest.mark.slow
def test_default_contrastive_audit_has_power(tmp_path):
    """`unlearn-audit audit --paradigm contrastive` alone gives real verdicts (issue #15):
    recorded on seeds 0-2 in benchmarks/results/contrastive_default.txt (MDR 0.23-0.27,
    retrain's residual bound 0.11-0.21, about 130 s each). Seed 0 here: MDR 0.23 and
    retrain's bound 0.11 against the 0.3 bars, detection z at most 0.41; it passed at 2
    threads and at 1 (OMP_NUM_THREADS=1) on AVX-512. Another CPU perturbs the run, not
    redraws it: benchmarks/results/validity_default.txt recorded on AVX2 (commit 22141c3)
    and again on AVX-512 (9d267b4) differs by at most 0.01 in any figure."""
    out = tmp_path / "encoder"
    res = CliRunner().invoke(
        main, ["audit", "--paradigm", "contrastive", "--out", str(out), "--quiet"]
    )
    assert res.exit_code == 0, res.output
    r = json.loads((out / "results.json").read_text())
    assert r["paradigm"]["name"] == "contrastive" and r["paradigm"]["difficulty"] is True
    assert (r["config"]["train"]["epochs"], r["config"]["attack"]["shadows"]) == (200, 32)
    assert r["controls"]["separated"], r["controls"]
    assert r["verdicts"]["noop"]["status"] == "fail"
    assert r["verdicts"]["retrain"]["status"] == "pass"
    assert r["verdicts"]["retrain"]["evidence"]["residual"]["ci"][1] < 0.3
    assert r["verdicts"]["planted"]["status"] == "fail"
    assert r["power"]["mdr"] is not None and r["power"]["mdr"] <= 0.3
    header = (out / "samples.csv").read_text().splitlines()[0]
    assert "difficulty.finetune" in header, header
    ranked = CliRunner().invoke(main, ["rank", str(out), "--top", "5"])
    assert ranked.exit_code == 0, ranked.output
    assert "5 of 300 forget samples" in ranked.output
