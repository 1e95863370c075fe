"""``python -m unlearn_audit``: the ``unlearn-audit`` command line."""

from unlearn_audit.cli import main

main()
