"""The names of the run directory contract: files, schema versions, ``samples.csv`` columns.

The audit writes these names and every reader (the report, ``unlearn-audit rank`` and
``unlearn-audit attack``) reads them, both by importing them from here, so a file or a
column cannot be renamed on one side only (docs/design.md, "The run directory").
"""

from __future__ import annotations

from collections.abc import Iterable

# -- files of RUN/ ----------------------------------------------------------------------
RESULTS_FILE = "results.json"  # the audit's results (schema below)
SAMPLES_FILE = "samples.csv"  # one row per pool sample (columns below)
SIGNALS_FILE = "signals.npz"  # every model's membership signals, keep matrix, thumbnails
CONFIG_FILE = "config.toml"  # the validated config, as TOML
REPORT_FILE = "report.html"  # the rendered report
MODELS_DIR = "models"  # the content-addressed model cache (audit.rundir.ModelStore)
LOCK_FILE = ".lock"  # one writer per run directory (audit.lock)

# -- results.json -----------------------------------------------------------------------
SCHEMA_VERSION = 2  # what the audit writes
# 1: the original contract; 2 adds the residual estimate, per-record evidence, the power
# block and the planted control (all optional for the report: a section without its data
# is left out).
SUPPORTED_SCHEMAS = (1, 2)

# -- samples.csv ------------------------------------------------------------------------
BASE_COLUMNS = ("index", "id", "label", "split")  # first, in this order
TEXT_COLUMNS = (*BASE_COLUMNS, "flags")  # read as text (and every ``flags.<method>``)
SPLIT_COLUMN = "split"
# split label -> the count results.json's ``data`` gives it
SPLIT_COUNTS = (
    ("forget", "n_forget"),
    ("retain", "n_retain"),
    ("nonmember", "n_nonmembers"),
    ("public", "n_public"),
)
# column families, ``<prefix>.<model or method>`` (an attack's scores: ``<attack>.<model>``)
SIGNAL = "signal"  # the membership signal of each target model
PVALUE = "pvalue"  # per-record p-value of "forgotten" (schema 2)
RECOGNISABLE = "recognisable"  # 1 where the record is still recognisable (schema 2)
ULIRA = "ulira"  # U-LiRA score of each method with a bank
EPSILON = "epsilon"  # per-sample epsilon of each method with a bank
DIFFICULTY = "difficulty"  # difficulty index per method (a bare column in older runs)
DIFFICULTY_RANK = "difficulty_rank"  # 1 = largest predicted residual
RESIDUAL = "residual"  # the realised residual per method
FLAGS = "flags"  # text flags per method
FEATURE = "feature"  # difficulty feature values, ``feature.<name>``
# single columns
PLANTED_COLUMN = "planted"  # 1 on the forget records the planted control kept
WEIGHT_COLUMN = "weight"  # each sample's weight in the residual (verdict.weighting)


def column(prefix: str, name: str) -> str:
    """The column ``<prefix>.<name>`` (e.g. ``column(DIFFICULTY_RANK, "finetune")``)."""
    return f"{prefix}.{name}"


def columns_for(columns: Iterable[str], prefix: str) -> dict[str, str]:
    """Suffix to column name for every ``<prefix>.<suffix>`` column, in column order."""
    start = prefix + "."
    return {c[len(start) :]: c for c in columns if c.startswith(start)}


def is_text_column(name: str) -> bool:
    """Whether a ``samples.csv`` column holds text (identifiers, split, flags)."""
    return name in TEXT_COLUMNS or name.startswith(FLAGS + ".")
