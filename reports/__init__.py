"""Self-contained HTML reports for unlearn-audit run directories.

The package reads only the run directory contract (``results.json``, ``samples.csv``)
and never imports the rest of the toolkit.
"""

from unlearn_audit.reports.loading import ReportError
from unlearn_audit.reports.render import render

__all__ = ["ReportError", "render"]
