"""The report tests' fabricated run directories serve the reader's tests too."""

from tests.reports.conftest import make_run  # noqa: F401  (a fixture)
