"""The one error of the run files: a file that cannot be read, or that contradicts another."""

from __future__ import annotations

DAMAGED = "the run directory is damaged; rerun the audit (its cached models are reused)"


class RunFileError(ValueError):
    """A run file (or a file or option given to a reader) cannot be used.

    Raised by every reader of the run directory: the report (``results.json`` missing or
    invalid, ``samples.csv`` contradicting it, the report not writable), ``unlearn-audit
    rank`` and ``unlearn-audit attack``. The message is always a single line naming the
    offending file (or option) and the problem; the command line prints it as
    ``error: <message>`` and exits with 2.
    """


def one_line(text: str) -> str:
    """Collapses whitespace (including newlines) so error messages stay on one line."""
    return " ".join(str(text).split())


def damaged(problems: list[str]) -> str | None:
    """The one-line error for a list of problems (None when there is none)."""
    if not problems:
        return None
    return one_line("; ".join(problems) + f": {DAMAGED}")
