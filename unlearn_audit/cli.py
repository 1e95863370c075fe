"""The ``unlearn-audit`` command line. It only parses, builds the config and calls the library."""

from __future__ import annotations

import dataclasses
import os
import shlex
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def _user_errors() -> tuple[type[Exception], ...]:
    """Exceptions that are the user's to fix: printed as one line, no traceback."""
    from unlearn_audit.attacks.registry import UnknownAttackError
    from unlearn_audit.audit.config import ConfigError
    from unlearn_audit.audit.plan import PlanError
    from unlearn_audit.learning.checkpoints import CheckpointError
    from unlearn_audit.learning.data import DataError
    from unlearn_audit.learning.models import ModelError
    from unlearn_audit.learning.train import DeviceError
    from unlearn_audit.runfiles import RunFileError
    from unlearn_audit.unlearners import UnlearnerError

    return (
        CheckpointError,
        ConfigError,
        DataError,
        DeviceError,
        ModelError,
        PlanError,
        UnlearnerError,
        UnknownAttackError,
        RunFileError,
    )


def _guard(fn: F) -> F:
    """Turn user errors into ``error: ...`` and exit code 2; Ctrl-C into a resume hint."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        errors = _user_errors()
        try:
            return fn(*args, **kwargs)
        except errors as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except PermissionError as exc:  # e.g. a folder made read-only while the audit ran
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(
                f"error: {where}permission denied ({exc.strerror or exc}); "
                "check the permissions of the input files and of --out",
                err=True,
            )
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo(
                "\ninterrupted: finished models are cached in the run directory; "
                "run the same command again to resume",
                err=True,
            )
            sys.exit(130)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="unlearn-audit", message="%(prog)s %(version)s")
def main() -> None:
    """Audit machine unlearning: did the model really forget?

    Trains (or loads) the original model, runs unlearning methods, a retrained
    reference and a bank of membership-inference shadow models, and writes a
    run directory with results.json, samples.csv, signals.npz and report.html.
    """


def _overrides(**opts: Any) -> dict[str, Any]:
    """CLI flags as a TOML-shaped dict (only the flags that were given)."""
    table: dict[str, Any] = {}

    def put(path: str, value: Any) -> None:
        *parents, leaf = path.split(".")
        node = table
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value

    from unlearn_audit.audit.config import ConfigError

    mapping = {
        "members": "data.members",
        "paradigm": "paradigm",
        "original": "model.original",
        "dataset": "data.dataset",
        "data_root": "data.root",
        "limit": "data.limit",
        "model": "model.arch",
        "forget": "forget.spec",
        "shadows": "attack.shadows",
        "seed": "seed",
        "device": "device",
        "name": "name",
        "epochs": "train.epochs",
        "executor": "execution.executor",
        "address": "execution.address",
    }
    for opt, path in mapping.items():
        if opts.get(opt) is not None:
            put(path, opts[opt])
    if opts.get("unlearner"):
        put("unlearn.methods", list(opts["unlearner"]))
    elif opts.get("unlearned"):  # judging your own checkpoints: run no built-in method
        put("unlearn.methods", [])
    if opts.get("unlearned"):
        pairs: dict[str, str] = {}
        for item in opts["unlearned"]:
            name, sep, path = item.partition("=")
            if not sep or not name or not path:
                raise ConfigError(f"--unlearned '{item}' must look like NAME=PATH")
            if name in pairs:
                raise ConfigError(
                    f"--unlearned names '{name}' twice ({pairs[name]} and {path}); give each "
                    "unlearned model its own NAME"
                )
            pairs[name] = path
        put("unlearn.checkpoints", pairs)
    return table


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="TOML config file (flags below override its keys).",
)
@click.option(
    "--paradigm",
    help="supervised (classifiers, default) or contrastive (SimCLR/MoCo encoders).",
)
@click.option(
    "--dataset",
    help="digits (default, embedded), mnist, fashion-mnist, cifar10, "
    "cifar100, svhn, or a path to an .npz with x and y.",
)
@click.option("--data-root", help="Folder with the dataset's raw files.")
@click.option("--limit", type=int, help="Use only the first N samples of the dataset.")
@click.option(
    "--model",
    help="Architecture: mlp, cnn, resnet18, or package.module:factory "
    "(your function returning an nn.Module; kwargs from [model] kwargs).",
)
@click.option(
    "--original",
    type=click.Path(dir_okay=False),
    help="YOUR trained original model (state dict: .safetensors or PyTorch); "
    "the tool then trains no original of its own.",
)
@click.option(
    "--unlearned",
    multiple=True,
    metavar="NAME=PATH",
    help="YOUR unlearned model to judge (repeatable). Without --unlearner, no "
    "built-in method runs.",
)
@click.option(
    "--members",
    help="file:PATH of the sample ids the original was trained on (needed with --original).",
)
@click.option("--forget", help="random:FRACTION | class:K | file:PATH (default random:0.6).")
@click.option(
    "--unlearner",
    multiple=True,
    help="Method to audit (repeatable): a name from `unlearn-audit methods` or "
    "package.module:Class (your Unlearner subclass).",
)
@click.option("--shadows", type=int, help="Number of shadow models (even).")
@click.option("--epochs", type=int, help="Training epochs of every trained model.")
@click.option("--seed", type=int, help="Seed of every random draw.")
@click.option("--name", help="Run name shown in the report.")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default="runs/audit",
    show_default=True,
    help="Run directory (cached models in it are reused).",
)
@click.option("--device", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps.")
@click.option(
    "--executor",
    help="Where the model jobs run: local (this process, default) or ray "
    '(Ray tasks; pip install "unlearn-audit[ray]").',
)
@click.option(
    "--address",
    help="Ray cluster of --executor ray: local (start one here, default), auto "
    "(the one `ray start --head` runs), or HOST:PORT.",
)
@click.option("--no-report", is_flag=True, help="Do not render report.html.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@_guard
def audit(config_path: str | None, out: str, no_report: bool, quiet: bool, **opts: Any) -> None:
    """Run a complete audit and write the run directory."""
    from unlearn_audit import run_audit
    from unlearn_audit.audit.config import check_file, from_dict, load_toml, merge

    base = load_toml(config_path) if config_path else {}
    check_file(base)  # the file's own values, even those a flag overrides
    cfg = from_dict(merge(base, _overrides(**opts)))
    check_out_dir(out)
    command = "unlearn-audit " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    res = run_audit(cfg, out, progress=not quiet, command=command, render_report=not no_report)
    _print_summary(res.results)
    click.echo(f"run directory: {res.run_dir}")
    if res.report is not None:
        click.echo(f"report: {res.report}")


def check_out_dir(out: str | Path) -> None:
    """Fail before anything is loaded or trained if the run directory cannot be written.

    The directory (or, when it does not exist yet, its nearest existing parent, where
    it will be created) must be a folder this process can create files in; a probe
    folder is made and removed again to be sure (permissions, read-only mounts, ACLs).

    Raises:
        ConfigError: ``out`` is a file, lies under a file, or is not writable.
    """
    from unlearn_audit.audit.config import ConfigError

    p = Path(out)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"--out {p} is a file, not a folder; choose a run directory")
    base = p
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise ConfigError(f"--out {p} cannot be created: {base} is a file, not a folder")
    folders = [base] + ([p / "models"] if (p / "models").is_dir() else [])
    for folder in folders:
        why = ""
        if not os.access(folder, os.W_OK | os.X_OK):
            why = "permission denied"
        else:
            try:
                os.rmdir(tempfile.mkdtemp(prefix=".unlearn-audit-probe-", dir=folder))
            except OSError as exc:
                why = exc.strerror or str(exc)
        if why:
            what = f"{folder} is not writable"
            if folder != p and folder == base:
                what += f", so {p} cannot be created there"
            raise ConfigError(f"--out {p}: {what} ({why}); choose a writable run directory")


def _print_summary(results: dict[str, Any]) -> None:
    attack = results["config"]["verdict"]["attack"]
    nan = float("nan")
    rows = []
    for name, model in results["models"].items():
        util = model.get("utility") or {}
        auc = results["attacks"].get(name, {}).get(attack, {}).get("forget_vs_nonmember", {})
        fq = results.get("forgetting", {}).get(name, {}).get("forget_quality")
        ev = results["verdicts"].get(name, {}).get("evidence", {})
        records = ev.get("records", {})
        rows.append(
            (
                name,
                results["verdicts"].get(name, {}).get("status", "-"),
                _residual_cell(ev.get("residual")),
                f"{records['n_recognisable']}/{records['n_forget']}" if records else "-",
                f"{util.get('test_acc', nan):.3f}",
                f"{util.get('forget_acc', nan):.3f}",
                f"{auc.get('auc', nan):.3f}",
                "-" if fq is None else f"{fq:.3f}",
            )
        )
    head = (
        "model",
        "status",
        "residual (CI)",
        "recognisable",
        "test acc",
        "forget acc",
        f"AUC {attack}",
        "forget quality",
    )
    widths = [max(len(r[j]) for r in [head, *rows]) for j in range(len(head))]
    click.echo("")
    for row in [head, *rows]:
        cells = [
            c.ljust(w) if j < 2 else c.rjust(w)
            for j, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        click.echo("  ".join(cells).rstrip())
    power = results.get("power", {})
    if power.get("statement"):
        click.echo(power["statement"])
    controls = results["controls"]
    click.echo(f"controls separated: {'yes' if controls['separated'] else 'NO'}")
    for reason in controls["reasons"]:
        click.echo(f"  - {reason}")


def _residual_cell(res: dict[str, Any] | None) -> str:
    """``0.12 [-0.05, 0.31]`` (None ends are unbounded)."""
    if not res:
        return "-"

    def num(v: float | None, inf: str) -> str:
        return inf if v is None else f"{v:.2f}"

    lo, hi = res["ci"]
    return f"{num(res['value'], '?')} [{num(lo, '-inf')}, {num(hi, 'inf')}]"


@main.command()
@_guard
def methods() -> None:
    """List the unlearning methods with their paradigms, parameters and defaults."""
    from unlearn_audit import unlearners

    for name in unlearners.available():
        cls = unlearners.get(name)
        params = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls.Params))
        click.echo(f"{name:<18}[{', '.join(sorted(cls.paradigms))}]  {cls.summary}")
        click.echo(f"{'':<18}params: {params or '(none)'}")


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@_guard
def report(run_dir: str) -> None:
    """Re-render RUN_DIR/report.html from its results (no retraining)."""
    from unlearn_audit.audit.lock import ensure_idle
    from unlearn_audit.reports import render
    from unlearn_audit.runfiles import run_directory

    run_directory(run_dir)
    ensure_idle(run_dir)
    click.echo(f"report: {render(run_dir)}")


from unlearn_audit.attack_cmd import attack as _attack_cmd  # noqa: E402
from unlearn_audit.rank_cmd import rank as _rank_cmd  # noqa: E402

main.add_command(_attack_cmd)
main.add_command(_rank_cmd)


if __name__ == "__main__":  # pragma: no cover
    main()
