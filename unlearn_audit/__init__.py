"""unlearn-audit: a privacy audit toolkit for machine unlearning.

The one import namespace of the toolkit. Its floors (docs/design.md "Layout"), each a
subpackage: ``learning`` <- ``unlearners`` <- ``attacks`` <- ``difficulty`` <- ``audit``;
``reports`` reads the run directory; ``runfiles``, the run directory's contract (file and
column names, schema version, atomic writers, the one reader and its ``RunFileError``),
stands under both; this package's own modules (the public API below and the command line,
:mod:`unlearn_audit.cli`) are the top floor.

Python API::

    from unlearn_audit import AuditInputs, from_dict, run_audit
    result = run_audit(from_dict({"attack": {"shadows": 16}}), "runs/demo")

See docs/python-api.md.
"""

from typing import Any

__all__ = [
    "AuditInputs",
    "AuditResult",
    "__version__",
    "from_dict",
    "load_toml",
    "render",
    "run_audit",
]


def __getattr__(name: str) -> Any:
    """Lazy access to the API (importing the package alone stays cheap for the CLI)."""
    if name == "__version__":
        from unlearn_audit.audit import __version__

        return __version__
    if name in ("run_audit", "AuditResult"):
        from unlearn_audit import api

        return getattr(api, name)
    if name == "AuditInputs":
        from unlearn_audit.audit.inputs import AuditInputs

        return AuditInputs
    if name in ("from_dict", "load_toml"):
        from unlearn_audit.audit import config

        return getattr(config, name)
    if name == "render":
        from unlearn_audit.reports import render

        return render
    raise AttributeError(f"module 'unlearn_audit' has no attribute {name!r}")
