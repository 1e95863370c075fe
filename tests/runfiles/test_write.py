"""The atomic writers: a run file appears complete under its real name, or not at all."""

from __future__ import annotations

import os
import stat

import pytest

from unlearn_audit.runfiles.write import _UMASK, atomic_write_bytes, atomic_write_text


def test_run_files_get_the_usual_mode_not_mkstemps_0600(tmp_path):
    atomic_write_text(tmp_path / "results.json", "{}")
    mode = stat.S_IMODE(os.stat(tmp_path / "results.json").st_mode)
    assert mode == 0o666 & ~_UMASK


def test_a_failed_write_leaves_neither_the_file_nor_its_temporary(tmp_path):
    (tmp_path / "results.json").write_text("old")
    with pytest.raises(TypeError):
        atomic_write_bytes(tmp_path / "results.json", "not bytes")  # type: ignore[arg-type]
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    assert (tmp_path / "results.json").read_text() == "old"
