"""The audit: config, plan, model production, measurements, verdicts with controls, run
directory. The public API is re-exported by :mod:`unlearn_audit` (docs/python-api.md)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("unlearn-audit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0+source"

__all__ = ["__version__"]
