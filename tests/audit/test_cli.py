"""Bad input gets a one-line error naming the problem, no traceback, and nothing half-written."""

import pytest
from click.testing import CliRunner

from unlearn_audit.cli import main

TINY = ["--limit", "200", "--epochs", "1", "--shadows", "4", "--quiet", "--no-report"]


def _run(args):
    return CliRunner().invoke(main, args)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--dataset", "imagenet"], "unknown dataset 'imagenet'; valid: cifar10"),
        (["--model", "vgg"], "unknown model 'vgg'; valid: cnn, mlp, resnet18"),
        (["--unlearner", "magic"], "unknown unlearner 'magic'; valid:"),
        (["--forget", "class:42"], "names no class"),
        (["--forget", "random:0.0001"], "selects no sample"),
        (["--dataset", "fashion-mnist", "--data-root", "/no/such/dir"], "does not exist"),
        (["--shadows", "3"], "even number"),
    ],
)
def test_bad_input_is_one_line(tmp_path, args, match):
    out = tmp_path / "run"
    res = _run(["audit", "--out", str(out), *TINY, *args])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert match in lines[0] or __import__("re").search(match, lines[0])
    assert "Traceback" not in res.output
    assert not (out / "results.json").exists()


def test_malformed_config_key(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[train]\nepoch = 3\n")
    res = _run(["audit", "--config", str(cfg), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert res.output.strip() == (
        "error: unknown config key 'train.epoch'; valid keys in [train]: augment, batch_size, "
        "epochs, lr, momentum, optimizer, schedule, weight_decay"
    )
    assert not (tmp_path / "r").exists()


def test_methods_lists_every_registered_method():
    from unlearn_audit import unlearners

    res = _run(["methods"])
    assert res.exit_code == 0
    for name in unlearners.available():
        assert name in res.output
    assert "lr_scale=" in res.output


def test_report_on_missing_dir_is_one_line(tmp_path):
    res = _run(["report", str(tmp_path / "none")])
    assert res.exit_code == 2 and res.output.startswith("error: ")


def test_help_everywhere():
    for cmd in ([], ["audit"], ["methods"], ["report"], ["attack"], ["rank"]):
        res = _run([*cmd, "--help"])
        assert res.exit_code == 0 and "Usage" in res.output


def test_the_summary_table_keeps_its_columns_aligned_for_long_names(capsys):
    from unlearn_audit.cli import _print_summary

    long = "my_company.unlearning:VeryLongMethodName"
    model = {"utility": {"test_acc": 0.9, "forget_acc": 0.8}}
    results = {
        "config": {"verdict": {"attack": "lira_online"}},
        "models": {"noop": model, long: model},
        "verdicts": {"noop": {"status": "fail"}, long: {"status": "inconclusive"}},
        "attacks": {
            n: {"lira_online": {"forget_vs_nonmember": {"auc": 0.6}}} for n in ("noop", long)
        },
        "forgetting": {long: {"forget_quality": 0.25}},
        "controls": {"separated": False, "reasons": ["why"]},
    }
    _print_summary(results)
    lines = capsys.readouterr().out.strip().splitlines()
    table = lines[:3]
    status_col = table[0].index("status")
    assert all(line[status_col - 2 : status_col] == "  " for line in table)
    assert table[2].startswith(long + "  ") and table[2].endswith("0.250")
    assert table[1].split()[1] == "fail" and table[1].endswith("-")
