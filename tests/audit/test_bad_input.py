"""Issue #17: bad input is one ``error:`` line, exit code 2, no traceback, nothing written.

Every case here once crashed with a traceback, was silently accepted, or failed only
after the run directory had been started. Each test reproduces one defect.
"""

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.audit.userpkg.models import make_net
from unlearn_audit.audit.config import ConfigError, check_file, from_dict, merge
from unlearn_audit.cli import main
from unlearn_audit.learning.data import DataError, Dataset, load_npz
from unlearn_audit.learning.train import DeviceError, available_devices, resolve_device

FACTORY = "tests.audit.userpkg.models:make_net"
FAST = "[attack]\nulira = false\n[verdict]\nn_boot = 100\n"


def _cli(args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res, [ln for ln in res.output.splitlines() if ln.strip()]


def _refused(res, lines, match, out=None):
    """One ``error:`` line matching ``match``, exit 2, no traceback, no run directory."""
    assert res.exit_code == 2, res.output
    assert isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert re.search(match, lines[0]), lines[0]
    if out is not None:
        assert not out.exists(), sorted(p.name for p in out.iterdir())


def _npz(path, n=40, **arrays):
    rng = np.random.default_rng(0)
    arrays.setdefault("x", rng.random((n, 4, 4)).astype(np.float32))
    arrays.setdefault("y", np.arange(n) % 2)
    np.savez(path, **arrays)
    return path


@pytest.fixture
def d(tmp_path):
    (tmp_path / "fast.toml").write_text(FAST)
    _npz(tmp_path / "ok.npz")
    return tmp_path


def _audit(d, *extra, data=None, config=None):
    return [
        "audit",
        "--dataset",
        data or d / "ok.npz",
        "--config",
        config or d / "fast.toml",
        "--epochs",
        "1",
        "--shadows",
        "4",
        "--quiet",
        "--no-report",
        "--out",
        d / "run",
        *extra,
    ]


# --- 1, 2, 3: the config file ----------------------------------------------------------


def test_1_a_config_file_that_is_not_utf8(d):
    (d / "latin1.toml").write_bytes(b'name = "caf\xe9"\n')
    res, lines = _cli(_audit(d, config=d / "latin1.toml"))
    _refused(res, lines, r"latin1.toml is not UTF-8 text \(byte 0xe9 at offset 11\)", d / "run")


@pytest.mark.parametrize(
    ("text", "flags", "match"),
    [
        ("train = 5\n", ["--epochs", "5"], r"config key 'train' must be a table, got 5"),
        (
            '[train]\nepochs = "five"\n',
            ["--epochs", "5"],
            r"config key 'train.epochs' must be an integer, got 'five'",
        ),
        ("[attack]\nshadows = 3\n", ["--shadows", "4"], r"attack.shadows must be an even"),
        ("device = 7\n", ["--device", "cpu"], r"config key 'device' must be a string, got 7"),
    ],
)
def test_2_an_invalid_file_value_is_an_error_even_when_a_flag_overrides_it(d, text, flags, match):
    (d / "c.toml").write_text(text)
    res, lines = _cli(_audit(d, *flags, config=d / "c.toml"))
    _refused(res, lines, match, d / "run")


def test_2_keys_a_flag_completes_are_checked_on_the_merged_config():
    """Parameters of a method only a flag names are fine in the file alone."""
    base = {"unlearn": {"params": {"random_label": {"epochs": 1.0}}}}
    check_file(base)
    cfg = from_dict(merge(base, {"unlearn": {"methods": ["random_label"]}}))
    assert cfg.unlearn.params == {"random_label": {"epochs": 1.0}}
    with pytest.raises(ConfigError, match="'random_label' is not in unlearn.methods"):
        from_dict(base)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (
            {"finetune": {"epochs": "x"}},
            r"^config key 'unlearn.params.finetune.epochs' must be a number, got 'x'$",
        ),
        (
            {"finetune": {"lr_scale": True}},
            r"'unlearn.params.finetune.lr_scale' must be a number, got True",
        ),
        ({"scrub": {"epochs": 2.5}}, r"'unlearn.params.scrub.epochs' must be an integer"),
        (
            {"gradient_constraint": {"one_sided": "yes"}},
            r"'unlearn.params.gradient_constraint.one_sided' must be true or false",
        ),
        (
            {"finetune": {"epoch": 3}},
            r"unknown config key 'unlearn.params.finetune.epoch'; valid keys of finetune: "
            r"epochs, lr_scale",
        ),
        ({"finetune": {"epochs": -1}}, r"^unlearn.params.finetune: epochs must be > 0, got -1"),
        ({"finetune": 3}, r"'unlearn.params' must be a table of tables"),
    ],
)
def test_3_unlearner_params_are_type_checked_and_name_the_key(params, match):
    methods = sorted(params)
    with pytest.raises(ConfigError, match=match):
        from_dict({"unlearn": {"methods": methods, "params": params}})


def test_3_on_the_command_line(d):
    (d / "p.toml").write_text(FAST + '[unlearn.params]\nfinetune = {epochs = "x"}\n')
    res, lines = _cli(_audit(d, config=d / "p.toml"))
    _refused(res, lines, r"unlearn.params.finetune.epochs' must be a number", d / "run")


# --- 4, 5: device and output directory --------------------------------------------------


@pytest.mark.parametrize("name", ["cuda", "cuda:1", "mps", "garbage", "", "meta", "cuda:x"])
def test_4_an_unavailable_or_malformed_device(d, name):
    if name in available_devices():
        pytest.skip(f"{name} exists on this machine")
    with pytest.raises(DeviceError, match=r"available"):
        resolve_device(name)
    res, lines = _cli(_audit(d, "--device", name))
    here = ", ".join(available_devices())
    _refused(res, lines, rf"^error: device '{re.escape(name)}'.*{re.escape(here)}\)$", d / "run")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders anyway")
def test_5_a_read_only_out(d):
    ro = d / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        res, lines = _cli(_audit(d, "--out", ro / "run"))
        _refused(res, lines, r"ro is not writable, so .*run cannot be created there", ro / "run")
    finally:
        ro.chmod(0o700)


SETPRIV = shutil.which("setpriv")


@pytest.mark.skipif(
    os.geteuid() != 0 or SETPRIV is None, reason="needs root (and setpriv) to drop to nobody"
)
def test_5_a_read_only_out_as_a_user_who_is_not_root():
    """The same defect for real where the suite runs as root (CI does): the CLI, started as
    ``nobody`` by ``setpriv``, meets a folder it may not write, with no stand-in."""
    import subprocess
    import sys
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="unlearn-audit-ro-"))  # pytest's folders are root's alone
    try:
        d.chmod(0o755)
        (d / "fast.toml").write_text(FAST)
        _npz(d / "ok.npz")
        for name in ("fast.toml", "ok.npz"):
            (d / name).chmod(0o644)
        (d / "home").mkdir(mode=0o777)
        (d / "home").chmod(0o777)
        (d / "ro").mkdir()
        (d / "ro").chmod(0o555)
        cmd = [
            sys.executable,
            "-m",
            "unlearn_audit",
            *map(str, _audit(d, "--out", d / "ro" / "run")),
        ]
        home = str(d / "home")
        res = subprocess.run(
            [SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups", *cmd],
            capture_output=True,
            text=True,
            env={**os.environ, "HOME": home, "MPLCONFIGDIR": home},
            cwd=Path(__file__).resolve().parents[2],
            timeout=300,
        )
        lines = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.strip()]
        assert res.returncode == 2, res.stdout + res.stderr
        assert "Traceback" not in res.stderr
        assert len(lines) == 1 and re.search(
            r"^error: .*ro is not writable, so .*ro/run cannot be created there", lines[0]
        ), lines
        assert sorted(p.name for p in (d / "ro").iterdir()) == []
    finally:
        shutil.rmtree(d)


def test_5_an_out_whose_permission_bits_refuse_writing(d, monkeypatch):
    """What the read-only test above sees as a user who is not root."""
    import unlearn_audit.cli as cli_module

    real = os.access
    ro = str(d / "ro")

    def access(path, mode, *args, **kwargs):
        if str(path) == ro and mode & os.W_OK:
            return False
        return real(path, mode, *args, **kwargs)

    (d / "ro").mkdir()
    monkeypatch.setattr(cli_module.os, "access", access)
    res, lines = _cli(_audit(d, "--out", d / "ro" / "a" / "run"))
    _refused(
        res,
        lines,
        r"ro is not writable, so .*ro/a/run cannot be created there \(permission "
        r"denied\)",
        d / "ro" / "a",
    )


def test_5_an_out_the_system_refuses_to_write(d, monkeypatch):
    """A read-only mount (or ACL) that the permission bits do not show."""
    import unlearn_audit.cli as cli_module

    def refuse(**kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cli_module.tempfile, "mkdtemp", refuse)
    res, lines = _cli(_audit(d))
    _refused(
        res,
        lines,
        r"--out .*run: .* is not writable, so .*run cannot be created there "
        r"\(Permission denied\); choose a writable run directory",
        d / "run",
    )


def test_5_out_is_a_file_or_under_one(d):
    (d / "file").write_text("x")
    res, lines = _cli(_audit(d, "--out", d / "file"))  # click's own check of --out
    assert res.exit_code == 2 and "is a file" in lines[-1] and "Traceback" not in res.output
    res, lines = _cli(_audit(d, "--out", d / "file" / "run"))
    _refused(res, lines, r"cannot be created: .*file is a file, not a folder")


# --- 6-9: the user's .npz ---------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e300])
def test_6_nan_or_inf_in_x_fails_at_load(d, bad):
    x = np.random.default_rng(0).random((40, 4, 4))
    x[7, 1, 2] = bad  # 1e300 is finite in float64 but infinite as float32
    x[30, 0, 0] = bad
    res, lines = _cli(_audit(d, data=_npz(d / "bad.npz", x=x)))
    _refused(
        res,
        lines,
        r"bad.npz: x holds NaN or infinite values in 2 sample\(s\) \(first: sample 7\)",
        d / "run",
    )


def test_6_in_memory_datasets_are_checked_too():
    x = torch.zeros(8, 1, 2, 2)
    x[3, 0, 1, 1] = float("nan")
    with pytest.raises(DataError, match=r"mine: x holds NaN .* \(first: sample 3\)"):
        Dataset("mine", x, torch.arange(8) % 2, ("a", "b"))


def test_7_a_single_class_npz(d):
    res, lines = _cli(_audit(d, data=_npz(d / "one.npz", y=np.zeros(40, np.int64))))
    _refused(res, lines, r"one.npz: every sample has label 0; .* at least 2 classes", d / "run")


def test_7_a_pool_or_member_set_of_one_class(d):
    y = np.r_[np.zeros(20, np.int64), np.ones(20, np.int64)]
    data = _npz(d / "sorted.npz", y=y)
    res, lines = _cli(_audit(d, "--limit", "10", data=data))
    _refused(res, lines, r"every sample of the audited pool has class '0'", d / "run")
    (d / "members.txt").write_text(" ".join(map(str, range(10))))
    res, lines = _cli(_audit(d, "--members", f"file:{d / 'members.txt'}", data=data))
    _refused(res, lines, r"every sample of the members has class '0'", d / "run")


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        (
            {"y": np.r_[np.arange(39) % 2, 900000]},
            r"labels must be the class indices 0..K-1, but y holds 3 distinct labels between "
            r"0 and 900000 \(absent: 2, 3, 4\.\.\.\); map them to 0..K-1",
        ),
        ({"y": np.r_[np.arange(39) % 2, 5], "classes": np.array(["a", "b"])}, r"lie in 0..1"),
        ({"y": np.r_[np.arange(39) % 2, -1]}, r"labels must be >= 0"),
        ({"y": (np.arange(40) % 2).astype(np.float32)}, r"integer labels, got dtype float32"),
        (
            {"y": np.arange(40) % 2, "classes": np.array([f"c{i}" for i in range(41)])},
            r"41 classes for 40 samples",
        ),
        ({"y": np.arange(39) % 2}, r"y must have shape \(40,\)"),
    ],
)
def test_8_labels_must_be_class_indices(d, arrays, match):
    res, lines = _cli(_audit(d, data=_npz(d / "labels.npz", **arrays)))
    _refused(res, lines, match, d / "run")


def test_9_duplicate_ids_are_an_error(d):
    res, lines = _cli(_audit(d, data=_npz(d / "ids.npz", ids=np.full(40, 7))))
    _refused(
        res,
        lines,
        r"ids must name each sample once, but 39 sample\(s\) repeat an id "
        r"\(first: '7'\)",
        d / "run",
    )
    ids = np.array([f"r{i}" for i in range(40)])
    ids[[5, 9, 11]] = ["r1", "r2", "r1"]
    with pytest.raises(DataError, match=r"3 sample\(s\) repeat an id \(first: 'r1', 'r2'\)"):
        load_npz(_npz(d / "ids2.npz", ids=ids))
    with pytest.raises(DataError, match="repeat an id"):
        Dataset("mine", torch.zeros(4, 1, 1, 1), torch.arange(4) % 2, ("a", "b"), ids=np.zeros(4))


def test_a_file_that_is_not_a_zip_is_not_called_pickled(d):
    (d / "text.npz").write_text("not an archive")
    np.save(d / "plain.npy", np.zeros(3))
    os.replace(d / "plain.npy", d / "plain.npz")
    for name in ("text.npz", "plain.npz"):
        res, lines = _cli(_audit(d, data=d / name))
        _refused(res, lines, rf"{name}: not a valid .npz file \(an .npz is a zip", d / "run")


# --- 10, 15, 16: the user's checkpoints -------------------------------------------------


@pytest.fixture
def user(tmp_path):
    torch.manual_seed(0)
    good = make_net()
    torch.save(good.state_dict(), tmp_path / "orig.pt")
    state = good.state_dict()
    state["3.weight"][0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    (tmp_path / "members.txt").write_text(" ".join(map(str, range(0, 400, 2))))
    (tmp_path / "fast.toml").write_text(FAST)
    return tmp_path


def _user_args(d, *extra):
    return [
        "audit", "--model", FACTORY, "--dataset", "digits", "--limit", "400",
        "--members", f"file:{d / 'members.txt'}", "--config", d / "fast.toml",
        "--epochs", "1", "--shadows", "4", "--quiet", "--no-report", "--out", d / "run", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "flags",
    [["--original", "{d}/nan.pt"], ["--original", "{d}/orig.pt", "--unlearned", "u={d}/nan.pt"]],
)
def test_10_a_checkpoint_with_nan_weights_is_refused_in_preflight(user, flags):
    res, lines = _cli(_user_args(user, *(f.format(d=user) for f in flags)))
    _refused(
        res,
        lines,
        r"nan.pt holds NaN or infinite weights in 1 tensor\(s\) \(3.weight\)",
        user / "run",
    )


def test_10_an_in_memory_model_with_nan_weights(user):
    from unlearn_audit import AuditInputs, run_audit

    model = make_net()
    with torch.no_grad():
        model[1].bias[0] = float("inf")
    cfg = from_dict(
        {"model": {"arch": FACTORY}, "data": {"limit": 400, "members": f"file:{user}/members.txt"}}
    )
    with pytest.raises(Exception, match=r"in-memory model 'original' holds NaN or infinite"):
        run_audit(cfg, user / "run", inputs=AuditInputs(original=model), progress=False)
    assert not (user / "run").exists()


def test_15_an_unlearned_name_given_twice(user):
    args = _user_args(
        user, "--original", user / "orig.pt",
        "--unlearned", f"a={user / 'orig.pt'}", "--unlearned", f"a={user / 'nan.pt'}",
    )  # fmt: skip
    res, lines = _cli(args)
    _refused(res, lines, r"--unlearned names 'a' twice \(.*orig.pt and .*nan.pt\)", user / "run")


def test_16_an_unlearned_model_needs_its_original(user):
    res, lines = _cli(_user_args(user, "--unlearned", f"a={user / 'orig.pt'}"))
    _refused(
        res,
        lines,
        r"an unlearned checkpoint is judged against the original it was unlearned "
        r"from: give --original",
        user / "run",
    )


# --- minor ------------------------------------------------------------------------------


def test_zero_epochs_is_refused(d):
    res, lines = _cli(_audit(d, "--epochs", "0"))
    _refused(res, lines, r"train.epochs \(--epochs\) must be >= 1", d / "run")


def test_attack_refuses_a_negative_target(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "s.npz", signals=rng.normal(size=(5, 20)), keep=rng.random((5, 20)) < 0.5)
    res, lines = _cli(["attack", "--signals", tmp_path / "s.npz", "--target", "-1"])
    _refused(res, lines, r"target index -1 is negative; give a row 0..4")


def test_rank_without_results_json_needs_a_method(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "samples.csv").write_text(
        "index,id,label,split,difficulty_rank.noop,difficulty_rank.finetune\n"
        "0,0,1,forget,1,2\n1,1,0,forget,2,1\n"
    )
    res, lines = _cli(["rank", run])
    _refused(res, lines, r"results.json is missing .*; pass --method \(one of: noop, finetune\)")
    res, _ = _cli(["rank", run, "--method", "finetune"])
    assert res.exit_code == 0, res.output


def test_a_resumed_run_says_the_original_is_loaded(d):
    res, _ = _cli(_audit(d))
    assert res.exit_code == 0, res.output
    assert "training the original model" in res.output
    res, _ = _cli(_audit(d))
    assert res.exit_code == 0, res.output
    assert "loading the original model (cached)" in res.output
    assert "training the original model" not in res.output
    assert json.loads((d / "run" / "results.json").read_text())["data"]["n_pool"] == 40


def test_a_tiny_pool_whose_nonmembers_all_score_extremely_low(d):
    """Found by the property test: LiRA-offline scores below about -37 lost their z with
    -ndtri(-expm1(score)); record_pvalues now uses ndtri_exp and survives no finite z."""
    rng = np.random.default_rng(1)
    x = rng.integers(0, 255, (8, 3, 3)).astype(np.uint8)
    data = _npz(d / "eight.npz", x=x, y=np.array([0, 0, 1, 0, 1, 0, 1, 0]))
    res, lines = _cli(_audit(d, data=data))
    assert res.exit_code in (0, 2) and "Traceback" not in res.output, repr(res.exception)
