"""The audit: config, plan, pipeline, verdicts with controls, run directory, CLI.

Python API::

    from audit import AuditInputs, from_dict, run_audit
    result = run_audit(from_dict({"attack": {"shadows": 16}}), "runs/demo")

See docs/python-api.md.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("unlearn-audit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0+source"

__all__ = ["AuditInputs", "AuditResult", "__version__", "from_dict", "load_toml", "run_audit"]


def __getattr__(name: str) -> Any:
    """Lazy access to the API (importing ``audit`` alone stays cheap for the CLI)."""
    if name in ("run_audit", "AuditResult"):
        from audit import pipeline

        return getattr(pipeline, name)
    if name == "AuditInputs":
        from audit.production import AuditInputs

        return AuditInputs
    if name in ("from_dict", "load_toml"):
        from audit import config

        return getattr(config, name)
    raise AttributeError(f"module 'audit' has no attribute {name!r}")
