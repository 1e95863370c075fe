"""``samples_problems`` / ``signals_problems``: what contradicts results.json, in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reports.conftest import RunFactory, v2_results
from unlearn_audit.reports import render
from unlearn_audit.runfiles import (
    DAMAGED,
    RunFileError,
    damaged,
    expected_columns,
    read_samples,
    samples_problems,
    signals_problems,
)

RESULTS = {
    "data": {"n_pool": 4, "n_forget": 1, "n_retain": 1, "n_nonmembers": 2},
    "attacks": {"original": {"loss": {}}, "noop": {"loss": {}}},
    "config": {"attack": {"shadows": 2}},
}
HEADER = ["index", "id", "label", "split", "loss.original", "loss.noop"]
ROWS = [
    ["0", "a", "1", "forget", "0.1", "0.2"],
    ["1", "b", "1", "retain", "0.1", "0.2"],
    ["2", "c", "0", "nonmember", "0.1", "0.2"],
    ["3", "d", "0", "nonmember", "0.1", "0.2"],
]


def test_a_consistent_file_has_no_problem():
    assert samples_problems(RESULTS, HEADER, ROWS) == []
    assert damaged([]) is None


def test_without_results_nothing_is_checked():
    assert samples_problems(None, ["x"], [["1", "2"]]) == []
    assert signals_problems(None, 3) == []


@pytest.mark.parametrize(
    ("header", "rows", "problem"),
    [
        (HEADER, ROWS[:2], "samples.csv has 2 rows but results.json says the pool has 4 samples"),
        (HEADER[:-1], [r[:-1] for r in ROWS], "lacks the column(s) loss.noop that results.json"),
        ([*HEADER, "loss.noop"], [[*r, "1"] for r in ROWS], "loss.noop more than once"),
        (HEADER, [*ROWS[:3], ROWS[3][:4]], "1 row(s) without the header's 6 cells"),
        (HEADER, [*ROWS[:3], ["0", *ROWS[3][1:]]], "an index column that is not 0..3"),
        (
            HEADER,
            [*ROWS[:1], [*ROWS[1][:3], "forget", *ROWS[1][4:]], *ROWS[2:]],
            "samples.csv has 2 forget rows but results.json says 1; samples.csv has 0 retain",
        ),
    ],
)
def test_each_contradiction_is_named(header, rows, problem):
    msg = damaged(samples_problems(RESULTS, header, rows))
    assert msg is not None and problem in msg and msg.endswith(DAMAGED) and "\n" not in msg


def test_the_columns_results_json_implies():
    cols = expected_columns(v2_results())
    for name in ("lira_online.finetune", "loss.noop", "pvalue.planted", "recognisable.noop"):
        assert name in cols
    assert "planted" in cols and cols[:4] == ["index", "id", "label", "split"]
    extra = {
        "forgetting": {"m": {"n_bank": 8}, "bad": {"error": "x"}},
        "difficulty": {"m": {"spearman": {}}, "bad": {"error": "x"}},
        "attacks": "not a block",
    }
    cols = expected_columns(extra)
    assert cols[4:] == [
        "ulira.m",
        "epsilon.m",
        "difficulty.m",
        "difficulty_rank.m",
        "residual.m",
        "flags.m",
    ]


def test_signals_problems():
    names = ["shadow0", "shadow1", "original", "noop"]
    split = ["forget", "retain", "nonmember", "nonmember"]
    assert signals_problems(RESULTS, 4, names, 2, split) == []
    (problem,) = signals_problems(RESULTS, 4, names[:-1], 2, split)
    assert problem == "signals.npz has no signals of noop (results.json scored them)"
    problems = signals_problems(RESULTS, 3, names, 1, split[:3], file="RUN/signals.npz")
    assert problems == [
        "RUN/signals.npz has 3 samples per model but results.json says the pool has 4",
        "RUN/signals.npz has 1 shadow models but results.json says 2",
        "RUN/signals.npz has signals of shadow1, unknown to results.json",
    ]


def test_the_report_refuses_a_damaged_samples_csv(make_run: RunFactory):
    run = make_run(v2_results())
    path = run / "samples.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-5]))
    n_pool = json.loads((run / "results.json").read_text())["data"]["n_pool"]
    with pytest.raises(RunFileError) as err:
        render(run)
    assert str(err.value) == (
        f"{path} has {n_pool - 5} rows but results.json says the pool has {n_pool} samples: "
        + DAMAGED
    )
    assert not (run / "report.html").exists()


def test_absent_or_unreadable_samples_are_still_a_note(make_run: RunFactory, tmp_path: Path):
    run = make_run(samples=False)
    assert read_samples(run)[1] == (
        "samples.csv not found; the plots and the per-sample table are omitted."
    )
    (run / "samples.csv").write_text("index,loss.noop\n0,1\n")
    assert "no 'split' column" in (read_samples(run)[1] or "")
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "samples.csv").write_text("index,split\n7,forget\n")
    samples, note = read_samples(tmp_path / "bare")  # no results.json: read as it is
    assert note is None and samples is not None and samples.n_rows == 1
