"""Compare two run directories number by number (e.g. one audit before and after a refactor).

Walks both results.json documents and samples.csv tables and prints every value that
differs, leaving out what a rerun changes by design: provenance (``run``), wall times
(``timings``, each model's ``seconds``) and, with ``--ignore-keys``, model-store file
names (``checkpoint``: a change of the cache-key schema renames them). Exit status 0
when nothing else differs. Usage::

    python benchmarks/compare_runs.py RUN_A RUN_B [--ignore-keys] [--out FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path
from typing import Any

VOLATILE = {"run", "timings"}


def _walk(a: Any, b: Any, path: str, ignore_keys: bool, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if (not path and k in VOLATILE) or k == "seconds":
                continue
            if ignore_keys and k == "checkpoint":
                continue
            if k not in a or k not in b:
                out.append(f"{path}/{k}: only in {'B' if k not in a else 'A'}")
                continue
            _walk(a[k], b[k], f"{path}/{k}", ignore_keys, out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _walk(x, y, f"{path}[{i}]", ignore_keys, out)
    elif isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return
    elif a != b:
        out.append(f"{path}: {a!r} != {b!r}")


def compare(run_a: Path, run_b: Path, ignore_keys: bool) -> list[str]:
    """Every difference between the two runs' results.json and samples.csv."""
    diffs: list[str] = []
    ra, rb = (json.loads((r / "results.json").read_text()) for r in (run_a, run_b))
    _walk(ra, rb, "", ignore_keys, diffs)
    with open(run_a / "samples.csv") as fa, open(run_b / "samples.csv") as fb:
        ta, tb = list(csv.reader(fa)), list(csv.reader(fb))
    if ta[0] != tb[0]:
        diffs.append(f"samples.csv columns differ: {ta[0]} vs {tb[0]}")
    elif len(ta) != len(tb):
        diffs.append(f"samples.csv rows: {len(ta)} vs {len(tb)}")
    else:
        cells = sum(
            x != y for ra_, rb_ in zip(ta, tb, strict=True) for x, y in zip(ra_, rb_, strict=True)
        )
        if cells:
            diffs.append(f"samples.csv: {cells} cells differ")
    return diffs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_a", type=Path)
    ap.add_argument("run_b", type=Path)
    ap.add_argument("--ignore-keys", action="store_true", help="leave out checkpoint names")
    ap.add_argument("--out", type=Path, help="also write the report here")
    a = ap.parse_args()
    diffs = compare(a.run_a, a.run_b, a.ignore_keys)
    lines = [f"# compare_runs: {a.run_a} vs {a.run_b} (ignore keys: {a.ignore_keys})"]
    lines += diffs or ["identical: every number of results.json and every cell of samples.csv"]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if a.out:
        a.out.write_text(text)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
