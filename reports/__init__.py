"""Self-contained HTML reports for unlearn-audit run directories.

The package reads only the run directory contract (``results.json``, ``samples.csv``,
``signals.npz``), through :mod:`unlearn_audit.runfiles`, and never imports the rest of
the toolkit. :func:`render` raises :class:`unlearn_audit.runfiles.RunFileError`.
"""

from unlearn_audit.reports.render import render

__all__ = ["render"]
