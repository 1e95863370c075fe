"""``unlearn-audit attack``: score a bring-your-own signal bank with the registered attacks.

Two file layouts are accepted (``.npz``, see docs/attacks.md):

* plain: ``signals (models, n)`` or ``(models, n, A)``, ``keep (models, n)``
  bool and optionally ``target`` (int): the row to attack; every other row is
  one of its shadow models; the target's own keep row is the ground truth.
* a run directory's ``signals.npz`` (written by the audit pipeline):
  additionally ``model_names`` and ``n_shadows``; the shadows are the first
  ``n_shadows`` rows, the target is chosen by name (default ``original``),
  and the ``split`` labels add forget/retain-vs-non-member comparisons.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from unlearn_audit.runfiles import RunFileError, check_run_signals, read_signals

FPRS = (0.001, 0.01, 0.05)


@dataclass
class Bank:
    """A target row, its shadow rows and the ground truth to score against."""

    target_name: str
    target: np.ndarray
    shadow: np.ndarray
    keep: np.ndarray
    comparisons: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (n,) int8 1/0/-1


def _signals_and_keep(data: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    for key in ("signals", "keep"):
        if key not in data:
            raise RunFileError(f"missing array '{key}' (file has: {', '.join(sorted(data))})")
    sig, keep = data["signals"], data["keep"]
    if sig.ndim not in (2, 3) or not np.issubdtype(sig.dtype, np.number):
        raise RunFileError(
            f"'signals' must be numeric (models, n[, A]), got {sig.dtype} {sig.shape}"
        )
    if keep.shape != sig.shape[:2]:
        raise RunFileError(f"'keep' must have shape {sig.shape[:2]} (models, n), got {keep.shape}")
    if keep.dtype != np.bool_:
        if not np.isin(keep, (0, 1)).all():
            raise RunFileError(f"'keep' must be boolean (or 0/1), got {keep.dtype}")
        keep = keep.astype(bool)
    if not np.isfinite(sig).all():
        raise RunFileError("'signals' contains non-finite values")
    return sig.astype(np.float64), keep


def _pick_target(data: dict[str, np.ndarray], spec: str | None, n_models: int) -> int:
    names = [str(x) for x in data["model_names"]] if "model_names" in data else None
    if spec is None:
        if "target" in data:
            spec = str(int(data["target"]))
        elif names is not None and "original" in names:
            spec = "original"
        else:
            raise RunFileError("no target: pass --target INDEX (or NAME) or store 'target'")
    try:
        idx = int(spec)
    except ValueError:
        if names is None or spec not in names:
            valid = ", ".join(names) if names else "none (no 'model_names' array)"
            raise RunFileError(f"unknown target model '{spec}'; names: {valid}") from None
        return names.index(spec)
    if idx < 0:
        raise RunFileError(
            f"target index {idx} is negative; give a row 0..{n_models - 1} (or a model NAME)"
        )
    if idx >= n_models:
        raise RunFileError(f"target index {idx} out of range for {n_models} models")
    return idx


def load_bank(path: str, target: str | None, members_key: str | None) -> Bank:
    """Read a signal file into a :class:`Bank`.

    A run directory's ``signals.npz`` is checked against the ``results.json`` beside it
    (:func:`unlearn_audit.runfiles.check_run_signals`). Raises
    :class:`~unlearn_audit.runfiles.RunFileError`, the one error of every reader of run
    files, when the file or an option does not fit; the message says what to fix.
    """
    data = read_signals(path)
    sig, keep = _signals_and_keep(data)
    check_run_signals(path, data, int(sig.shape[1]))
    t = _pick_target(data, target, sig.shape[0])
    if "n_shadows" in data:
        n_sh = int(data["n_shadows"])
        if not 0 < n_sh <= sig.shape[0]:
            raise RunFileError(f"'n_shadows' = {n_sh} does not fit {sig.shape[0]} models")
        rows = [r for r in range(n_sh) if r != t]
    else:
        rows = [r for r in range(sig.shape[0]) if r != t]
    if not rows:
        raise RunFileError("the file has no shadow rows besides the target")
    names = [str(x) for x in data["model_names"]] if "model_names" in data else None
    truth = keep[t]
    if members_key is not None:
        if members_key not in data:
            raise RunFileError(f"--members: no array '{members_key}' in the file")
        truth = np.asarray(data[members_key])
        if truth.shape != (sig.shape[1],) or not np.isin(truth, (0, 1)).all():
            raise RunFileError(f"--members '{members_key}' must be a (n,) boolean mask")
        truth = truth.astype(bool)
    comparisons = {"members_vs_nonmembers": np.where(truth, 1, 0).astype(np.int8)}
    if "split" in data and members_key is None:
        split = np.asarray(data["split"]).astype(str)
        for part in ("forget", "retain"):
            cmp = np.where(split == part, 1, np.where(split == "nonmember", 0, -1))
            if (cmp == 1).any() and (cmp == 0).any():
                comparisons[f"{part}_vs_nonmember"] = cmp.astype(np.int8)
    return Bank(
        target_name=names[t] if names else f"row {t}",
        target=sig[t],
        shadow=sig[rows],
        keep=keep[rows],
        comparisons=comparisons,
    )


def score(bank: Bank, names: list[str], explicit: bool) -> dict[str, Any]:
    """Scores and metrics per attack; failures are errors if the attack was asked for."""
    from unlearn_audit.attacks.metrics import roc_metrics
    from unlearn_audit.attacks.registry import get

    out: dict[str, Any] = {}
    for name in names:
        attack = get(name)
        try:
            s = attack.fn(bank.target, bank.shadow, bank.keep)
        except ValueError as exc:
            if explicit:
                raise RunFileError(f"attack {name}: {exc}") from None
            out[name] = {"skipped": str(exc)}
            continue
        out[name] = {}
        for cmp_name, cmp in bank.comparisons.items():
            sel = cmp >= 0
            try:
                m = roc_metrics(s[sel], cmp[sel] == 1, fprs=FPRS)
            except ValueError as exc:
                raise RunFileError(f"{cmp_name}: {exc}") from None
            out[name][cmp_name] = m
    return out


def _table(results: dict[str, Any], comparisons: list[str]) -> list[str]:
    lines = []
    for cmp_name in comparisons:
        lines.append(f"\n{cmp_name}")
        lines.append(
            f"{'attack':<20}{'AUC':>7}{'TPR@0.1%':>10}{'TPR@1%':>9}{'TPR@5%':>9}{'bal.acc':>9}"
        )
        for name, res in results.items():
            if "skipped" in res:
                lines.append(f"{name:<20}skipped: {res['skipped']}")
                continue
            m = res[cmp_name]
            t = m["tpr_at_fpr"]
            lines.append(
                f"{name:<20}{m['auc']:>7.3f}{t['0.001']:>10.3f}{t['0.01']:>9.3f}"
                f"{t['0.05']:>9.3f}{m['balanced_accuracy']:>9.3f}"
            )
    return lines


@click.command()
@click.option(
    "--signals", "path", required=True, type=click.Path(dir_okay=False), help="Signal bank .npz."
)
@click.option("--target", help="Row INDEX or model NAME to attack (default: file's 'target').")
@click.option("--members", "members_key", help="Key of a (n,) bool ground-truth mask in the file.")
@click.option("--attack", "attack_names", multiple=True, help="Attack (repeatable; default all).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def attack(
    path: str,
    target: str | None,
    members_key: str | None,
    attack_names: tuple[str, ...],
    as_json: bool,
) -> None:
    """Score a signal bank (signals, keep[, target]) with the registered attacks."""
    from unlearn_audit.attacks.registry import UnknownAttackError, available, get

    try:
        for name in attack_names:
            get(name)
        bank = load_bank(path, target, members_key)
        names = list(attack_names) or available()
        results = score(bank, names, explicit=bool(attack_names))
    except (RunFileError, UnknownAttackError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    summary = {
        "signals": str(Path(path)),
        "target": bank.target_name,
        "n_samples": int(bank.target.shape[0]),
        "n_shadows": int(bank.shadow.shape[0]),
        "queries": int(bank.target.shape[1]) if bank.target.ndim == 2 else 1,
        "attacks": results,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(
        f"target {bank.target_name}: {summary['n_samples']} samples, "
        f"{summary['n_shadows']} shadow models, {summary['queries']} queries"
    )
    for line in _table(results, list(bank.comparisons)):
        click.echo(line)
