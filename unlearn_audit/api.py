"""The public ``run_audit``: the audit (:mod:`unlearn_audit.audit`), then its report.

It lives on the top floor because it joins two floors: the audit writes the run
directory and never imports :mod:`unlearn_audit.reports`; the report is rendered from
that directory while the audit still holds its lock.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from unlearn_audit.audit import pipeline
from unlearn_audit.audit.config import AuditConfig
from unlearn_audit.audit.inputs import AuditInputs
from unlearn_audit.audit.pipeline import AuditResult

__all__ = ["AuditResult", "run_audit"]


def run_audit(
    cfg: AuditConfig,
    out: str | Path,
    *,
    inputs: AuditInputs | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    command: str | None = None,
    render_report: bool = True,
) -> AuditResult:
    """Run a complete audit, write the run directory and render ``report.html``.

    One audit writes a run directory at a time
    (:class:`unlearn_audit.audit.lock.RunLock`): a second one raises
    :class:`unlearn_audit.audit.lock.RunLockedError`.

    Args:
        cfg: The validated configuration.
        out: The run directory (created; cached models in it are reused).
        inputs: In-memory dataset, model factory, original / unlearned models and
            unlearner instances that replace or extend the config (see docs/python-api.md).
        progress: Show progress bars.
        log: Receives one line per step (default: tqdm-safe print to stderr).
        command: The command line that reproduces the run (recorded in provenance).
        render_report: Also render ``report.html``.
    """
    finish = None
    if render_report:
        from unlearn_audit.reports import render as finish
    return pipeline.run_audit(
        cfg, out, inputs=inputs, progress=progress, log=log, command=command, finish=finish
    )
