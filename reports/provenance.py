"""The compliance summary block and the provenance section.

The summary answers who/what/when, the forget request (its size and how it was chosen),
the methods audited and the verdict; provenance lists what is needed to reproduce and
verify the run: the command, environment, data splits, model content hashes, input file
hashes, timings and the resolved configuration.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from unlearn_audit.reports.formatting import (
    MISSING,
    as_dict,
    as_float,
    fmt_pretty_json,
    fmt_seconds,
    fmt_value,
)
from unlearn_audit.reports.residual import power_statement, weighting_line
from unlearn_audit.reports.verdict import REFERENCE, controls_outcome, methods_audited
from unlearn_audit.runfiles import RESULTS_FILE, SAMPLES_FILE, SIGNALS_FILE

_RUN_KEYS = ("created", "device", "seed", "python", "torch", "numpy", "platform")
_WHO_KEYS = ("user", "operator", "host")
_HASH_RE = re.compile(r"-([0-9a-fA-F]{8,64})\.[A-Za-z0-9]+$")
_SPLITS = (
    ("n_pool", "pool"),
    ("n_members", "members (trained the original)"),
    ("n_forget", "forget (to be erased)"),
    ("n_retain", "retain (trained the reference)"),
    ("n_nonmembers", "non-members (test set)"),
)


def _count(value: Any) -> str:
    """An integer count with thousands separators, else the value as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return fmt_value(value)


def describe_forget(data: dict[str, Any], seed: Any) -> str:
    """The forget request in plain words, e.g. ``90 samples: a random 10% of ...``."""
    spec = data.get("forget_spec")
    n_forget, n_members = data.get("n_forget"), data.get("n_members")
    size = f"{_count(n_forget)} samples" if n_forget is not None else "samples"
    if not isinstance(spec, str) or ":" not in spec:
        return size if spec is None else f"{size} ({fmt_value(spec)})"
    kind, _, arg = spec.partition(":")
    if kind == "random" and as_float(_float_or_none(arg)) is not None:
        pool = f" of the {_count(n_members)} training members" if n_members is not None else ""
        drawn = f", drawn with seed {fmt_value(seed)}" if seed is not None else ""
        how = f"a random {float(arg) * 100:g}%{pool}{drawn}"
    elif kind == "class":
        how = f"every training member of class {arg}"
    elif kind == "file":
        how = f"the sample indices listed in {arg}"
    else:
        how = "as requested"
    return f"{size}: {how} (request {spec})"


def _float_or_none(text: str) -> float | None:
    """``float(text)`` or ``None``."""
    try:
        return float(text)
    except ValueError:
        return None


def _who(run: dict[str, Any]) -> str:
    """Who ran the audit (``run.user`` / ``operator`` / ``host``), or a dash."""
    parts = [f"{key} {fmt_value(run[key])}" for key in _WHO_KEYS if run.get(key)]
    return ", ".join(parts) if parts else "not recorded"


def _learning(results: dict[str, Any], config: dict[str, Any]) -> list[tuple[str, str]]:
    """``("Learning", ...)``: the paradigm (with its method, e.g. ``contrastive (simclr)``)
    and the membership signal the verdict reads; nothing for a run that records neither."""
    paradigm = as_dict(results.get("paradigm"))
    name = paradigm.get("name") or config.get("paradigm")
    if not name:
        return []
    method = as_dict(config.get(str(name))).get("method")
    text = fmt_value(name) + (f" ({fmt_value(method)})" if method else "")
    if paradigm.get("signal"):
        text += f"; membership signal: {fmt_value(paradigm['signal'])}"
    return [("Learning", text)]


def summary_rows(results: dict[str, Any], verdict_line: str) -> list[tuple[str, str]]:
    """The compliance summary as ``(label, text)`` rows."""
    run, data = as_dict(results.get("run")), as_dict(results.get("data"))
    config = as_dict(results.get("config"))
    tool = as_dict(results.get("tool"))
    dataset = data.get("dataset") or as_dict(config.get("data")).get("dataset")
    arch = as_dict(config.get("model")).get("arch")
    what = fmt_value(dataset)
    if data.get("n_pool") is not None:
        what += f" ({_count(data['n_pool'])} samples)"
    if arch:
        what += f"; model {fmt_value(arch)}"
    methods = methods_audited(as_dict(results.get("models")))
    controls = controls_outcome(results)
    rows = [
        ("Audit", fmt_value(run.get("name"))),
        ("When", fmt_value(run.get("created"))),
        ("Run by", _who(run)),
        ("Tool", " ".join(str(tool[k]) for k in ("name", "version") if tool.get(k)) or MISSING),
        ("Data and model", what),
        *_learning(results, config),
        ("Forget request", describe_forget(data, run.get("seed", config.get("seed")))),
    ]
    if data.get("n_retain") is not None:
        rows.append(
            (
                "Reference",
                f"retrained from scratch on the {_count(data['n_retain'])} retained samples",
            )
        )
    rows.append(("Methods audited", ", ".join(methods) if methods else MISSING))
    rows.append(("Verdict", verdict_line))
    if controls is not None:
        rows.append(("Controls", "separated" if controls["separated"] else "NOT separated"))
    if power_statement(results):
        rows.append(("Power", power_statement(results)))
    weighting = weighting_line(results)
    if weighting:
        rows.append(("Record weights", weighting))
    return rows


def _checkpoint(entry: dict[str, Any]) -> tuple[str, str]:
    """``(path, content hash)`` of a model's checkpoint (the hash is in the file name)."""
    path = entry.get("checkpoint")
    if not isinstance(path, str) or not path:
        return "", ""
    match = _HASH_RE.search(path)
    return path, match.group(1) if match else ""


def _sha256(path: Path) -> str:
    """SHA-256 of a file, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_rows(run_dir: Path) -> list[dict[str, str]]:
    """Size and SHA-256 of each input file of the report that exists."""
    rows = []
    for name in (RESULTS_FILE, SAMPLES_FILE, SIGNALS_FILE):
        path = run_dir / name
        if path.is_file():
            rows.append(
                {"name": name, "size": f"{path.stat().st_size:,} bytes", "sha256": _sha256(path)}
            )
    return rows


def model_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """One row per model: role, checkpoint, content hash, seconds, parameters."""
    rows = []
    for name, raw in as_dict(results.get("models")).items():
        entry = as_dict(raw)
        path, digest = _checkpoint(entry)
        params = entry.get("params")
        rows.append(
            {
                "model": name,
                "role": str(entry.get("role") or ("reference" if name == REFERENCE else "")),
                "checkpoint": path,
                "hash": digest,
                "sha256": str(entry["sha256"]) if isinstance(entry.get("sha256"), str) else "",
                "seconds": fmt_seconds(entry.get("seconds")),
                "params": fmt_value(params) if params else "",
            }
        )
    return rows


def provenance_section(results: dict[str, Any], run_dir: Path, notes: list[str]) -> dict[str, Any]:
    """Everything the provenance section shows (each part may be empty)."""
    run, data = as_dict(results.get("run")), as_dict(results.get("data"))
    env = [(key, fmt_value(run[key])) for key in _RUN_KEYS if key in run]
    skip = {*_RUN_KEYS, "name", "command", *_WHO_KEYS}
    env += [(str(key), fmt_value(value)) for key, value in run.items() if key not in skip]
    splits = [(label, _count(data[key])) for key, label in _SPLITS if data.get(key) is not None]
    if data.get("forget_spec") is not None:
        splits.append(("forget request", fmt_value(data["forget_spec"])))
    config = results.get("config")
    models = model_rows(results)
    section: dict[str, Any] = {
        "command": fmt_value(run["command"]) if run.get("command") else "",
        "environment": env,
        "splits": splits,
        "models": models,
        "model_sha256": any(row["sha256"] for row in models),
        "files": file_rows(run_dir),
        "timings": [
            (str(k).removesuffix("_seconds"), fmt_seconds(v))
            for k, v in as_dict(results.get("timings")).items()
        ],
        "config": fmt_pretty_json(config) if config else "",
        "notes": notes,
    }
    section["present"] = any(section.values())
    return section
