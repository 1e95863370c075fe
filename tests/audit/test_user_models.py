"""Auditing what a user brings: their architecture, checkpoints, id lists and plugin method."""

import json
import pickle

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import unlearn_audit.unlearners.base as ubase
from tests.audit.userpkg.methods import RetainOnly, plain_train
from tests.audit.userpkg.models import make_net, make_other
from unlearn_audit import unlearners
from unlearn_audit.cli import main
from unlearn_audit.learning import load_dataset

FACTORY = "tests.audit.userpkg.models:make_net"


def _cli(args):
    res = CliRunner().invoke(main, args)
    return res, [ln for ln in res.output.splitlines() if ln.strip()]


@pytest.fixture
def files(tmp_path):
    torch.manual_seed(0)
    torch.save(make_net().state_dict(), tmp_path / "orig.pt")
    torch.save(make_other().state_dict(), tmp_path / "other.pt")
    (tmp_path / "members.txt").write_text(" ".join(map(str, range(0, 400, 2))))
    (tmp_path / "forget.txt").write_text("0 2 4 6")
    return tmp_path


def _audit_args(d, *extra):
    return [
        "audit",
        "--model",
        FACTORY,
        "--original",
        str(d / "orig.pt"),
        "--members",
        f"file:{d / 'members.txt'}",
        "--forget",
        f"file:{d / 'forget.txt'}",
        "--limit",
        "400",
        "--epochs",
        "1",
        "--shadows",
        "4",
        "--quiet",
        "--no-report",
        "--out",
        str(d / "run"),
        *extra,
    ]


def _set(args, flag, value):
    """Replace (or add, or with None remove) one flag of the argument list."""
    if flag in args:
        i = args.index(flag)
        del args[i : i + 2]
    if value is not None:
        args += [flag, value]
    return args


@pytest.mark.parametrize(
    ("flag", "value", "match"),
    [
        ("--original", "{d}/missing.pt", "missing.pt does not exist"),
        (
            "--original",
            "{d}/other.pt",
            r"does not fit the architecture: missing 3.bias, 3.weight,"
            r" 5.bias, 5.weight; shape mismatch 1.bias \(10,\) vs model \(128,\)",
        ),
        ("--unlearned", "mine={d}/other.pt", "other.pt does not fit the architecture"),
        ("--forget", "file:{d}/bad_ids.txt", r"name no sample \(first: 5000\); they must be"),
        ("--forget", "file:{d}/nonmember.txt", "not members of the original's training set"),
        ("--members", None, "needs its training set: give --members"),
        ("--model", "tests.audit.userpkg.models:nothing", "has no 'nothing'"),
        ("--model", "no_such_pkg.mod:f", "cannot import module 'no_such_pkg.mod'"),
        ("--unlearner", "tests.audit.userpkg.models:make_net", "not a subclass of"),
        ("--unlearned", "oops", "must look like NAME=PATH"),
    ],
)
def test_bad_user_input_is_one_line_and_writes_nothing(files, flag, value, match):
    (files / "bad_ids.txt").write_text("3 5000")
    (files / "nonmember.txt").write_text("1")
    args = _set(_audit_args(files), flag, value.format(d=files) if value else None)
    res, lines = _cli(args)
    assert res.exit_code == 2, res.output
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert __import__("re").search(match, lines[0]), lines[0]
    assert not (files / "run").exists()


class _Evil:
    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(MARKER),))


MARKER = ""


def test_a_pickle_that_would_run_code_is_refused(files):
    global MARKER
    MARKER = str(files / "pwned")
    with open(files / "evil.pt", "wb") as fh:
        pickle.dump({"w": _Evil()}, fh)
    args = _audit_args(files)
    args[args.index("--original") + 1] = str(files / "evil.pt")
    res, lines = _cli(args)
    assert res.exit_code == 2 and "refused" in lines[0] and "would run code" in lines[0]
    assert not (files / "pwned").exists()
    assert not (files / "run").exists()


def test_entry_point_plugins_are_registered(monkeypatch):
    class EP:
        name, value = "inhouse", "tests.audit.userpkg.methods:RetainOnly"

        def load(self):
            return RetainOnly

    import importlib.metadata as md

    monkeypatch.setattr(
        md, "entry_points", lambda group: [EP()] if group == ubase.ENTRY_POINT_GROUP else []
    )
    monkeypatch.setattr(ubase, "_plugins_loaded", False)
    monkeypatch.setattr(ubase, "_REGISTRY", dict(ubase._REGISTRY))
    assert "inhouse_retrain" in unlearners.available()
    res = CliRunner().invoke(main, ["methods"])
    assert "inhouse_retrain" in res.output


@pytest.mark.slow
def test_end_to_end_user_checkpoints_and_plugin(tmp_path):
    """Train outside the tool, unlearn with the user's plugin, audit the checkpoints.

    700 digits with half the members forgotten (the embedded default until it grew to
    1,000 digits, 60% forgotten) give the audit the power to show that a retrained
    model forgot (docs/verdict.md).
    """
    ds = load_dataset("digits", limit=700)
    rng = np.random.default_rng(123)
    members = np.sort(rng.permutation(len(ds))[: len(ds) // 2])
    forget = np.sort(rng.permutation(members)[: members.size // 2])
    retain = np.setdiff1d(members, forget)
    (tmp_path / "members.txt").write_text("\n".join(map(str, members)))
    (tmp_path / "forget.txt").write_text("\n".join(map(str, forget)))
    g = torch.Generator().manual_seed(7)
    torch.manual_seed(7)
    original = plain_train(
        make_net(), ds.x[members], ds.y[members], epochs=40, lr=0.05, generator=g
    )
    torch.save(original.state_dict(), tmp_path / "original.pt")
    unlearned = RetainOnly().unlearn(
        original,
        (ds.x[forget], ds.y[forget]),
        (ds.x[retain], ds.y[retain]),
        objective=None,
        recipe=None,
        generator=g,
    )
    from safetensors.torch import save_file

    save_file(unlearned.state_dict(), str(tmp_path / "unlearned.safetensors"))
    res = CliRunner().invoke(
        main,
        [
            "audit",
            "--model",
            FACTORY,
            "--limit",
            "700",
            "--original",
            str(tmp_path / "original.pt"),
            "--members",
            f"file:{tmp_path / 'members.txt'}",
            "--forget",
            f"file:{tmp_path / 'forget.txt'}",
            "--unlearned",
            f"inhouse={tmp_path / 'unlearned.safetensors'}",
            "--unlearned",
            f"lazy={tmp_path / 'original.pt'}",
            "--unlearner",
            "tests.audit.userpkg.methods:RetainOnly",
            "--out",
            str(tmp_path / "run"),
            "--quiet",
            "--no-report",
        ],
    )
    assert res.exit_code == 0, res.output
    r = json.loads((tmp_path / "run" / "results.json").read_text())
    assert r["models"]["original"]["source"].endswith("original.pt")
    assert "assumptions" in r and "[train] recipe" in r["assumptions"][0]
    assert r["verdicts"]["lazy"]["status"] == "fail"  # the original, brought back as "unlearned"
    assert r["verdicts"]["noop"]["status"] == "fail"
    assert r["verdicts"]["planted"]["status"] != "pass"
    # three exact unlearners (the tool's retrain, the user's checkpoint, the user's plugin)
    # share one reference; their residuals were 0.08, 0.11 and 0.15 (bounds 0.21-0.30 against
    # the 0.3 margin): never failed, and near 0 against the original's 1 (not asserted to
    # pass: at this size an exact retrain passes in most audits, not all)
    for name in ("retrain", "inhouse", "inhouse_retrain"):
        v = r["verdicts"][name]
        raw = v["evidence"].get("raw_status", v["status"])
        assert raw in {"pass", "inconclusive"}, (name, v["reasons"])
        # an exact retrain's residual varies by about 0.1 from training run to training run
        # (CPU type, threads): 0.5 is 5 of those from 0, and half of the original's 1
        assert v["evidence"]["residual"]["value"] < 0.5, (name, v["evidence"]["residual"])
