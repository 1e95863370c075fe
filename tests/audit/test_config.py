import tomllib

import pytest

from unlearn_audit.audit.config import (
    AuditConfig,
    ConfigError,
    from_dict,
    load_toml,
    merge,
    to_toml,
)


def test_empty_config_is_the_embedded_default():
    cfg = from_dict({})
    assert cfg == AuditConfig()
    assert cfg.data.dataset == "digits" and cfg.forget.spec == "random:0.6"


def test_partial_train_table_keeps_audit_defaults():
    cfg = from_dict({"train": {"epochs": 3}})
    assert cfg.train.epochs == 3 and cfg.train.batch_size == AuditConfig().train.batch_size


def test_roundtrip_through_toml():
    cfg = from_dict(
        {
            "unlearn": {"methods": ["finetune"], "params": {"finetune": {"epochs": 2.5}}},
            "attack": {"shadows": 8},
        }
    )
    text = to_toml(cfg.to_dict())
    assert from_dict(tomllib.loads(text)) == cfg


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"trian": {}}, "unknown config key 'trian'; valid keys in the top level"),
        ({"train": {"epoch": 3}}, r"unknown config key 'train.epoch'; valid keys in \[train\]"),
        ({"train": {"epochs": "many"}}, "'train.epochs' must be an integer"),
        ({"train": {"lr": True}}, "'train.lr' must be a number"),
        ({"attack": {"shadows": 7}}, "even number"),
        ({"unlearn": {"methods": "finetune"}}, "must be a list of strings"),
        ({"unlearn": {"params": {"scrub": {}}}}, "not in unlearn.methods"),
        ({"train": {"optimizer": "lbfgs"}}, r"\[train\]: optimizer must be"),
        ({"verdict": {"level": 1.5}}, "verdict.level"),
        ({"verdict": {"weighting": "loss"}}, "verdict.weighting must be one of 'separation'"),
        ({"data": 3}, "'data' must be a table"),
    ],
)
def test_invalid_values_name_the_key(table, match):
    with pytest.raises(ConfigError, match=match):
        from_dict(table)


def test_load_toml_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_toml(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(bad)


def test_merge_overrides_win_deeply():
    assert merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}


def test_shipped_configs_are_valid_and_default_is_the_default():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "configs"
    assert from_dict(load_toml(root / "default.toml")) == AuditConfig()
    for path in root.glob("*.toml"):
        from_dict(load_toml(path))


@pytest.mark.parametrize(
    ("table", "error", "match"),
    [
        ({"paradigm": "toy"}, ConfigError, r"^unknown paradigm 'toy'; valid: contrastive, super"),
        # several faults: the paradigm's name first, then the values, then the methods'
        # parameters, as before the registry checks left the leaf
        ({"paradigm": "toy", "attack": {"shadows": 3}}, ConfigError, "unknown paradigm 'toy'"),
        (
            {"attack": {"shadows": 3}, "unlearn": {"params": {"finetune": {"epoch": 1}}}},
            ConfigError,
            "attack.shadows must be an even number",
        ),
        (
            {"unlearn": {"methods": ["finetune"], "params": {"finetune": {"epoch": 1}}}},
            ConfigError,
            r"^unknown config key 'unlearn.params.finetune.epoch'; valid keys of finetune: ",
        ),
        ({"unlearn": {"params": {"magic": {}}}}, ValueError, "unknown unlearner 'magic'"),
    ],
)
def test_the_registry_checks_run_before_any_training(table, error, match):
    """``from_dict`` and ``check_file`` (a file alone) both run the one validation step."""
    from unlearn_audit.audit.config import check_file

    with pytest.raises(error, match=match):
        from_dict(table)
    with pytest.raises(error, match=match):
        check_file(table)


def test_the_config_data_is_a_leaf():
    """The dataclasses and the TOML reading import no registry (no paradigm, unlearner or
    attack), so every module may import them; only ``audit.config`` asks the registries."""
    import ast
    from pathlib import Path

    import unlearn_audit.audit.config_file as config_file
    import unlearn_audit.audit.config_types as config_types

    allowed = {"unlearn_audit.audit.config_types", "unlearn_audit.learning.train"}
    for module in (config_types, config_file):
        tree = ast.parse(Path(str(module.__file__)).read_text())
        ours = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("unlearn_")
        }
        ours |= {
            a.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for a in node.names
            if a.name.startswith("unlearn_")
        }
        assert ours <= allowed, (module.__name__, ours - allowed)
