"""The audit: config, plan, pipeline, verdicts with controls, run directory, CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("unlearn-audit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0+source"

__all__ = ["__version__"]
