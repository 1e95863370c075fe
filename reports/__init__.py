"""Self-contained HTML reports for unlearn-audit run directories.

The package reads only the run directory contract (``results.json``, ``samples.csv``)
and never imports the rest of the toolkit.
"""

from reports.loading import ReportError
from reports.render import render

__all__ = ["ReportError", "render"]
