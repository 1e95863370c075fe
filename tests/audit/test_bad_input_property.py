"""Property (issue #17): any small config and ``.npz`` gives a clean ``error:`` or a run.

Over random shapes, dtypes, labels, NaNs, ids, class names and config values the
audit either succeeds (exit 0, a finished run directory) or refuses with one
``error:`` line and exit code 2 before anything is written; never a traceback, never
a half-written run directory.
"""

import shutil
import tempfile
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unlearn_audit.cli import main

DATA_FAULTS = (
    "x_dtype", "x_nan", "x_shape", "x_empty", "few", "y_length", "y_gap", "y_huge",
    "y_negative", "y_float", "y_2d", "one_class", "ids_dup", "ids_short", "classes_1",
    "classes_many", "not_npz",
)  # fmt: skip
CONFIG_FAULTS = (
    "shadows", "epochs", "file_epochs", "batch_size", "params", "arch", "planted", "device",
    "limit", "forget", "unlearner", "members", "forget_ids",
)  # fmt: skip


@st.composite
def cases(draw):
    """A valid small audit with, half of the time, one or two faults injected."""
    faults = set()
    if draw(st.booleans()):
        faults = set(
            draw(st.lists(st.sampled_from(DATA_FAULTS + CONFIG_FAULTS), min_size=1, max_size=2))
        )
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    n = draw(st.integers(1, 7)) if "few" in faults else draw(st.integers(12, 36))
    c, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    shape = (n, h, w) if draw(st.booleans()) and c == 1 else (n, c, h, w)
    if "x_shape" in faults:
        shape = draw(st.sampled_from([(n,), (n, h * w), (n, 1, h, w, 1)]))
    if "x_empty" in faults:
        shape = (*shape[:-1], 0)
    dtype = draw(st.sampled_from(["float32", "uint8", "float64", "int16", "float16"]))
    if "x_dtype" in faults:
        dtype = draw(st.sampled_from(["complex64", "<U1", "bool"]))
    x = (rng.random(shape) * (255 if dtype in ("uint8", "int16") else 1)).astype(dtype)
    if "x_nan" in faults and x.size:
        with np.errstate(over="ignore"):  # 1e300 overflows float16 and float32: inf
            x = x.astype(draw(st.sampled_from(["float32", "float64", "float16"])))
            x.flat[draw(st.integers(0, x.size - 1))] = draw(
                st.sampled_from([np.nan, -np.inf, 1e300])
            )
    k = draw(st.integers(2, 4))
    y = np.r_[np.arange(k), rng.integers(0, k, max(0, n - k))][:n]
    if "one_class" in faults:
        y = np.zeros(n, np.int64)
    if "y_gap" in faults:
        y = y * 2
    if "y_huge" in faults and n:
        y[-1] = 900000
    if "y_negative" in faults and n:
        y[0] = -1
    if "y_float" in faults:
        y = y.astype(np.float32)
    if "y_2d" in faults:
        y = y[:, None]
    if "y_length" in faults:
        y = y[:-1]
    arrays = {"x": x, "y": y}
    ids = draw(st.sampled_from([None, "index", "text"]))
    if ids == "index":
        arrays["ids"] = np.arange(100, 100 + n)
    elif ids == "text":
        arrays["ids"] = np.array([f"r{i}" for i in range(n)])
    if "ids_dup" in faults:
        arrays["ids"] = rng.integers(0, 3, n)
    if "ids_short" in faults:
        arrays["ids"] = np.arange(max(0, n - 2))
    n_classes = {"classes_1": 1, "classes_many": n + 1}.get(
        next((f for f in faults if f.startswith("classes")), ""), draw(st.sampled_from([0, k]))
    )
    if n_classes:
        arrays["classes"] = np.array([f"c{i}" for i in range(n_classes)])

    flags = ["--shadows", draw(st.sampled_from(["3", "0", "-4"])) if "shadows" in faults else "4"]
    flags += ["--epochs", draw(st.sampled_from(["0", "-2"])) if "epochs" in faults else "1"]
    forget = draw(st.sampled_from(["random:0.5", "random:0.3", "class:0", "class:c1", "file:"]))
    if "forget" in faults:
        forget = draw(st.sampled_from(["class:9", "random:2", "random:0", "x", "class:"]))
    flags += ["--forget", forget]
    id_text = " ".join(map(str, arrays.get("ids", np.arange(n))[:2].tolist()))
    if "forget_ids" in faults:
        id_text = draw(st.sampled_from(["5000", "# nothing", "r1, r1", "-1", "0 0 1"]))
    if "members" in faults:
        flags += ["--members", draw(st.sampled_from(["file:", "ids.txt", "file:/no/such"]))]
    if "limit" in faults:
        flags += ["--limit", draw(st.sampled_from(["-1", "3", "5"]))]
    elif draw(st.booleans()):
        flags += ["--limit", draw(st.sampled_from(["0", "30", "1000"]))]
    if "device" in faults:
        flags += ["--device", draw(st.sampled_from(["garbage", "", "cuda:7", "meta", "mps"]))]
    elif draw(st.booleans()):
        flags += ["--device", draw(st.sampled_from(["cpu", "auto"]))]
    unlearner = draw(st.sampled_from(["", "finetune", "random_label", "gradient_ascent"]))
    if "unlearner" in faults:
        unlearner = draw(st.sampled_from(["noop", "x", "retrain", "a.b:C"]))
    if unlearner:
        flags += ["--unlearner", unlearner]
    train = {
        "file_epochs": 'epochs = "one"',
        "batch_size": draw(st.sampled_from(["batch_size = 0", "lr = -1.0", "optimizer = 'x'"])),
    }
    params = 'finetune = {epochs = "x"}' if "params" in faults else ""
    arch = draw(st.sampled_from(["", "arch = 'mlp'", "arch = 'cnn'"]))
    if "arch" in faults:
        arch = draw(st.sampled_from(["arch = 'nope'", "arch = 3", "kwargs = {width = 'x'}"]))
    planted = draw(st.sampled_from([1.5, -0.1])) if "planted" in faults else 0.5
    text = (
        f"[attack]\nulira = false\n[verdict]\nn_boot = 100\nplanted_fraction = {planted}\n"
        f"[train]\n{next((train[f] for f in faults if f in train), '')}\n"
        f"[unlearn.params]\n{params}\n[model]\n{arch}\n"
    )
    return arrays, "not_npz" in faults, text, flags, id_text


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure is never a fluke
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cases())
def test_any_small_input_is_a_run_or_a_clean_error(case):
    arrays, garbage, text, flags, forget_ids = case
    work = Path(tempfile.mkdtemp(prefix="prop-"))
    try:
        npz, cfg, out = work / "d.npz", work / "c.toml", work / "run"
        if garbage:
            npz.write_bytes(b"PK\x03\x04 not really a zip")
        else:
            np.savez(npz, **arrays)
        cfg.write_text(text)
        (work / "ids.txt").write_text(forget_ids)  # the forget and members file, when named
        flags = [f"file:{work / 'ids.txt'}" if f == "file:" else f for f in flags]
        args = ["audit", "--dataset", str(npz), "--config", str(cfg), "--quiet", "--no-report"]
        res = CliRunner().invoke(main, [*args, *flags, "--out", str(out)])
        assert "Traceback" not in res.output
        assert res.exit_code in (0, 2), (res.exit_code, res.output, res.exception)
        if res.exit_code == 0:
            assert (out / "results.json").is_file() and (out / "samples.csv").is_file()
            return
        assert isinstance(res.exception, SystemExit), repr(res.exception)
        last = [ln for ln in res.output.splitlines() if ln.strip()][-1]
        assert last.startswith("error: ") and "\n" not in last, res.output
        assert not out.exists(), (res.output, sorted(p.name for p in out.rglob("*")))
    finally:
        shutil.rmtree(work, ignore_errors=True)
