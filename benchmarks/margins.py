"""Benchmark: how far each statistical test's bar lies from what it measures (issue #17).

A test whose bar lies close to the measured value fails on another CPU or thread count.
For every test that documents such a margin, this runs the test's own measurement (a
``measure_*`` function in the test module, which the test calls at its fixed seeds) over
the seeds its docstring names, once at ``torch.set_num_threads(1)`` and once at 2, each
in a child process of its own, and prints per quantity: N, mean +- SD, min/max, the
test's bar, the margin ``|mean - bar| / SD`` (for a two-sided bar the nearer side) and
the largest difference between the two thread counts (0: identical numbers).

Usage::

    python benchmarks/margins.py [--tests NAME ...] [--quick] [--out benchmarks/results/margins.txt]

``--tests`` takes measurement names or their prefixes (``engine`` selects the four engine
cases); ``--quick`` takes the first two seeds of each, a smoke test only. The seeds of every
measurement are in ``MEASUREMENTS``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from tests.learning.test_augment_models_train import measure_fit_accuracy  # noqa: E402
from tests.learning.test_contrastive import measure_simclr_drop  # noqa: E402
from tests.learning.test_ensemble import (  # noqa: E402
    measure_batchnorm_gap,
    measure_engine_gap,
    measure_resnet18_gap,
)
from tests.unlearners.helpers import Setup, classifier_setup  # noqa: E402
from tests.unlearners.test_contrastive_methods import measure_calibration  # noqa: E402
from tests.unlearners.test_distill import measure_bad_teacher, measure_scrub_max_pass  # noqa: E402
from tests.unlearners.test_gradient_constraint import measure_norm_constraint  # noqa: E402
from tests.unlearners.test_penalised import measure_forget_term_rise  # noqa: E402
from tests.unlearners.test_relabel import measure_random_label  # noqa: E402

THREADS = (1, 2)


@dataclass(frozen=True)
class Check:
    """One quantity of a measurement and the bar a test holds it to: ``lo < value < hi``
    (``None``: no bound on that side; both ``None``: reported only, no test asserts it)."""

    test: str
    quantity: str  # a key of the measurement's dict
    lo: float | None = None
    hi: float | None = None
    note: str = ""
    scale: bool = False  # a bound of scale (a tolerance): report how many times it is cleared

    def label(self) -> str:
        return f"{self.quantity} ({self.note})" if self.note else self.quantity

    def bar(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"({self.lo:g}, {self.hi:g})"
        if self.lo is not None:
            return f"> {self.lo:.4g}"
        if self.hi is not None:
            return f"< {self.hi:g}"
        return "-"

    def margin(self, mean: float, sd: float) -> float:
        """Distance of the mean to the nearer bound, in SDs (NaN without a bound)."""
        bounds = [b for b in (self.lo, self.hi) if b is not None]
        if not bounds:
            return float("nan")
        gap = min(abs(mean - b) for b in bounds)
        return gap / sd if sd > 0 else math.inf


@dataclass(frozen=True)
class Measurement:
    name: str
    seeds: str  # what the seeds are, for the table
    args: tuple[tuple, ...]  # one argument tuple a run
    measure: Callable[..., dict[str, float]]
    checks: tuple[Check, ...]


@functools.lru_cache(maxsize=4)
def _classifier(seed: int) -> Setup:
    return classifier_setup(seed)


def _on_classifier(measure: Callable[..., dict[str, float]], *extra: Any) -> Callable:
    """``measure`` on the supervised original of classifier seed ``seed`` (the fixture's 0)."""
    return lambda seed: measure(_classifier(seed), *extra)


AUG = "tests/learning/test_augment_models_train.py"
ENS = "tests/learning/test_ensemble.py"
CON = "tests/learning/test_contrastive.py"
UNL = "tests/unlearners/"
ENGINE_CASES = (
    ("mlp", "sgd", "cosine", 1e-6),
    ("cnn", "sgd", "cosine", 1e-6),
    ("cnn", "sgd", "constant", 1e-6),
    ("mlp", "adam", "cosine", 1e-5),
)
EIGHT = tuple((s,) for s in range(8))  # seed offsets of the engine tests (the test's: 0)
CLASSIFIER_SEEDS = tuple((s,) for s in range(24))  # classifier seeds (the fixture's: 0)
SEQ_BAT = "max |seq - batched|"


def _engine(arch: str, optimizer: str, schedule: str, tol: float) -> list[Measurement]:
    test = f"{ENS}::test_batched_engine_gives_the_sequential_models[{arch}-{optimizer}-{schedule}]"
    case = (arch, optimizer, schedule)
    name = f"engine-{arch}-{optimizer}-{schedule}"
    return [
        Measurement(
            name,
            "offsets 0-7 of data/subset/model/generator seeds",
            EIGHT,
            lambda s: measure_engine_gap(*case, s),
            (
                Check(test, SEQ_BAT, hi=tol, note="float64", scale=True),
                Check(test, "|other stream - seq|", lo=100 * tol, scale=True),
            ),
        ),
        Measurement(
            name + "-float32",
            "as above, in float32 (why the test is float64)",
            EIGHT,
            lambda s: measure_engine_gap(*case, s, torch.float32),
            (Check(test, SEQ_BAT, note="float32, not tested"),),
        ),
    ]


# The seeds each measurement runs over: the ranges the tests' docstrings state.
MEASUREMENTS: tuple[Measurement, ...] = (
    Measurement(
        "fit",
        "model seed s, generator seed s + 6, s = 1-16 (the test's: 1, 7)",
        tuple((s, s + 6) for s in range(1, 17)),
        measure_fit_accuracy,
        (
            Check(f"{AUG}::test_fit_learns_and_is_deterministic", "held-out accuracy", lo=0.95),
            Check(
                f"{AUG}::test_fit_learns_and_is_deterministic",
                "untrained accuracy",
                hi=0.95,
                note="the bar's other side",
            ),
        ),
    ),
    *(m for case in ENGINE_CASES for m in _engine(*case)),
    Measurement(
        "batchnorm",
        "offsets 0-7 of data/subset/model/generator seeds",
        EIGHT,
        measure_batchnorm_gap,
        (
            Check(
                f"{ENS}::test_batchnorm_running_statistics_follow_each_model",
                SEQ_BAT,
                hi=1e-6,
                scale=True,
            ),
        ),
    ),
    Measurement(
        "batchnorm-float32",
        "as above, in float32",
        EIGHT,
        lambda s: measure_batchnorm_gap(s, torch.float32),
        (
            Check(
                f"{ENS}::test_batchnorm_running_statistics_follow_each_model",
                SEQ_BAT,
                note="float32, not tested",
            ),
        ),
    ),
    Measurement(
        "resnet18",
        "offsets 0-7 of data/subset/model/generator seeds",
        EIGHT,
        measure_resnet18_gap,
        (Check(f"{ENS}::test_resnet18_first_steps_agree", SEQ_BAT, hi=1e-6, scale=True),),
    ),
    Measurement(
        "resnet18-float32",
        "as above, in float32",
        EIGHT,
        lambda s: measure_resnet18_gap(s, torch.float32),
        (Check(f"{ENS}::test_resnet18_first_steps_agree", SEQ_BAT, note="float32, not tested"),),
    ),
    Measurement(
        "simclr",
        "fit's generator seeds 0-15 at model seed 0 (the test's: 0, 0)",
        tuple((0, g) for g in range(16)),
        measure_simclr_drop,
        (Check(f"{CON}::test_simclr_loss_is_seeded_and_trains", "drop", lo=0.5),),
    ),
    Measurement(
        "simclr-model-seeds",
        "model seeds 0-7 at generator seed 0 (why the test fixes the model seed)",
        tuple((m, 0) for m in range(8)),
        measure_simclr_drop,
        (
            Check(
                f"{CON}::test_simclr_loss_is_seeded_and_trains", "drop", lo=0.5, note="not tested"
            ),
        ),
    ),
    Measurement(
        "calibration",
        "data/model seeds 1-16 x unlearning seeds 0-2 (the test's: 1, 0)",
        tuple((s, u) for s in range(1, 17) for u in range(3)),
        measure_calibration,
        (
            Check(
                f"{UNL}test_contrastive_methods.py::"
                "test_alignment_calibration_lowers_forget_alignment_not_retain",
                "forget drop",
                lo=0.3,
            ),
            Check(
                f"{UNL}test_contrastive_methods.py::"
                "test_alignment_calibration_lowers_forget_alignment_not_retain",
                "retain drop",
                lo=-0.1,
                hi=0.1,
            ),
            Check(
                f"{UNL}test_contrastive_methods.py::"
                "test_the_alignment_term_is_what_lowers_forget_alignment",
                "forget drop vs alpha 0",
                lo=0.3,
            ),
            Check(
                f"{UNL}test_contrastive_methods.py::"
                "test_the_alignment_term_is_what_lowers_forget_alignment",
                "retain drop vs alpha 0",
                lo=-0.1,
                hi=0.1,
            ),
        ),
    ),
    Measurement(
        "scrub",
        "classifier seeds 0-23 (the fixture's: 0)",
        CLASSIFIER_SEEDS,
        _on_classifier(measure_scrub_max_pass),
        (
            Check(
                f"{UNL}test_distill.py::"
                "test_scrub_max_steps_push_the_student_from_the_teacher_on_forget",
                "log(after / before)",
                lo=math.log(2),
            ),
        ),
    ),
    Measurement(
        "bad_teacher",
        "classifier seeds 0-23 (the fixture's: 0)",
        CLASSIFIER_SEEDS,
        _on_classifier(measure_bad_teacher),
        (
            Check(
                f"{UNL}test_distill.py::test_bad_teacher_pulls_forget_outputs_to_the_random_teacher",
                "forget KL / original's",
                hi=0.5,
            ),
            Check(
                f"{UNL}test_distill.py::test_bad_teacher_pulls_forget_outputs_to_the_random_teacher",
                "log(retain KL / forget KL)",
                lo=0.0,
            ),
        ),
    ),
    *(
        Measurement(
            f"gradient_constraint-{variant}",
            "classifier seeds 0-23 (the fixture's: 0)",
            CLASSIFIER_SEEDS,
            _on_classifier(measure_norm_constraint, variant),
            (
                Check(
                    f"{UNL}test_gradient_constraint.py::"
                    f"test_unlearning_moves_forget_norms_to_their_target[{variant}]",
                    "|after - target| / |before - target|",
                    hi=0.5,
                ),
                Check(
                    f"{UNL}test_gradient_constraint.py::"
                    f"test_unlearning_moves_forget_norms_to_their_target[{variant}]",
                    "target - before",
                    lo=1.0,
                ),
            ),
        )
        for variant in ("member_only", "matched")
    ),
    Measurement(
        "neggrad_plus",
        "classifier seeds 0-23 (the fixture's: 0)",
        CLASSIFIER_SEEDS,
        _on_classifier(measure_forget_term_rise),
        (
            Check(
                f"{UNL}test_penalised.py::"
                "test_neggrad_plus_forget_term_is_gradient_ascent_on_the_forget_loss",
                "rise / predicted",
                lo=0.9,
                hi=1.1,
            ),
        ),
    ),
    Measurement(
        "random_label",
        "classifier seeds 0-23 (the fixture's: 0)",
        CLASSIFIER_SEEDS,
        _on_classifier(measure_random_label),
        tuple(
            Check(
                f"{UNL}test_relabel.py::test_random_label_lowers_forget_accuracy_more_than_retain",
                quantity,
                lo=lo,
                hi=hi,
            )
            for quantity, lo, hi in (
                ("original forget accuracy", 0.9, None),
                ("forget accuracy", None, 0.5),
                ("retain accuracy", 0.5, None),
            )
        ),
    ),
)


def select(names: list[str] | None) -> list[Measurement]:
    """The measurements named, or whose names start with a name given (all without names)."""
    if not names:
        return list(MEASUREMENTS)
    chosen = [m for m in MEASUREMENTS if any(m.name.startswith(n) for n in names)]
    unknown = [n for n in names if not any(m.name.startswith(n) for m in MEASUREMENTS)]
    if unknown:
        valid = ", ".join(m.name for m in MEASUREMENTS)
        raise SystemExit(f"error: no measurement named {', '.join(unknown)} (valid: {valid})")
    return chosen


def child(threads: int, names: list[str], quick: bool) -> None:
    """Run the measurements at ``threads`` torch threads; one JSON line on stdout."""
    torch.set_num_threads(threads)
    out: dict[str, Any] = {}
    for m in select(names):
        t0 = time.perf_counter()
        runs = m.args[:2] if quick else m.args
        values = [m.measure(*a) for a in runs]
        out[m.name] = {"values": values, "seconds": time.perf_counter() - t0}
        print(
            f"  {threads}t {m.name}: {len(runs)} runs, {out[m.name]['seconds']:.1f} s",
            file=sys.stderr,
        )
    print(json.dumps(out))


def _stats(xs: list[float]) -> tuple[float, float, float, float]:
    mean = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return mean, sd, min(xs), max(xs)


def _g(x: float) -> str:
    return f"{x:.4g}"


def table(chosen: list[Measurement], by_threads: dict[int, dict[str, Any]]) -> list[str]:
    """One markdown row per checked quantity: statistics at 1 thread, and at 2 where they differ."""
    rows = [
        "| measurement | test | quantity | N | mean ± SD | min / max | bar | margin (SD) "
        "| worst seed vs bar | 1 vs 2 threads |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in chosen:
        for c in m.checks:
            xs = {t: [v[c.quantity] for v in by_threads[t][m.name]["values"]] for t in THREADS}
            mean, sd, lo, hi = _stats(xs[1])
            label = c.label().replace("|", "\\|")  # a markdown cell
            diff = max(abs(a - b) for a, b in zip(xs[1], xs[2], strict=True))
            same = "identical"
            if diff != 0:
                mean2, sd2, lo2, hi2 = _stats(xs[2])
                margin2 = _margin(c, mean2, sd2)
                same = (
                    f"max \\|Δ\\| {diff:.2g}; 2 threads: {_g(mean2)} ± {_g(sd2)}, "
                    f"{_g(lo2)} / {_g(hi2)}" + ("" if margin2 == "-" else f", margin {margin2}")
                )
            rows.append(
                f"| {m.name} | `{c.test}` | {label} | {len(xs[1])} | {_g(mean)} ± {_g(sd)} "
                f"| {_g(lo)} / {_g(hi)} | {c.bar()} | {_margin(c, mean, sd)} "
                f"| {_headroom(c, lo, hi)} | {same} |"
            )
    return rows


def _margin(c: Check, mean: float, sd: float) -> str:
    margin = c.margin(mean, sd)
    return "-" if math.isnan(margin) else f"{margin:.3g}"


def _headroom(c: Check, lo: float, hi: float) -> str:
    """How many times the worst seed clears a bound of scale, e.g. a tolerance 1e-6 against
    differences of 1e-9 (their SD says little); '-' for other bounds."""
    if not c.scale:
        return "-"
    if c.hi is not None and c.lo is None and c.hi > 0 and hi > 0:
        return f"{c.hi / hi:.3g}× below"
    if c.lo is not None and c.hi is None and c.lo > 0 and lo > 0:
        return f"{lo / c.lo:.3g}× above"
    return "-"


def _cpu() -> tuple[str, bool]:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), False
    model = next(
        (ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")),
        "?",
    )
    flags = next(
        (ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), []
    )
    return model, "avx512f" in flags


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tests", nargs="+", help="measurement names or prefixes (default: all)")
    ap.add_argument("--quick", action="store_true", help="two seeds a measurement: a smoke test")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/margins.txt"))
    ap.add_argument("--child", type=int, metavar="THREADS", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, args.tests or [], args.quick)
        return
    chosen = select(args.tests)
    names = [m.name for m in chosen]
    start, load0 = time.time(), os.getloadavg()
    by_threads = {}
    for t in THREADS:
        cmd = [sys.executable, __file__, "--child", str(t), "--tests", *names]
        done = subprocess.run(
            cmd + ["--quick"] * args.quick, stdout=subprocess.PIPE, text=True, check=True
        )
        by_threads[t] = json.loads(done.stdout.strip().splitlines()[-1])
    cpu, avx512 = _cpu()
    seconds = {m.name: sum(by_threads[t][m.name]["seconds"] for t in THREADS) for m in chosen}
    head = [
        f"# unlearn-audit margins of the statistical tests ({time.strftime('%Y-%m-%d %H:%M')})",
        f"# machine: {platform.node()}, {platform.machine()}, {os.cpu_count()} cores; CPU "
        f"{cpu}; avx512f: {'yes' if avx512 else 'no'}; ATen capability "
        f"{torch.backends.cpu.get_cpu_capability()}",
        f"# python {platform.python_version()}, torch {torch.__version__}",
        f"# command: python benchmarks/margins.py {shlex.join(sys.argv[1:])}".rstrip(),
        f"# wall {time.time() - start:.0f} s; load average at start {load0[0]:.2f}, "
        f"at end {os.getloadavg()[0]:.2f}",
        "# statistics over the seeds at 1 torch thread; margin = |mean - bar| / SD (nearer side"
        " of a two-sided bar);",
        "# worst seed vs bar: how many times the worst seed clears a tolerance (where the bar is"
        " one);",
        "# 1 vs 2 threads: the largest difference between the two runs of a seed, and the"
        " statistics at 2 threads where any differs",
        *(["# QUICK: two seeds a measurement, a smoke test only"] if args.quick else []),
        "",
        "## seeds and time (both thread counts) of each measurement",
        *(f"# {m.name}: {m.seeds}; {seconds[m.name]:.1f} s" for m in chosen),
        "",
    ]
    text = "\n".join(head + table(chosen, by_threads)) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
