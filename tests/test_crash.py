"""A process killed with SIGKILL in the middle of `import` leaves no Atlas or the previous whole one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from embedscope import Atlas
from embedscope.errors import AtlasError

ROWS, DIM = 300_000, 64
DELAYS = (0.0, 0.1, 0.3, 0.6)


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> tuple[Path, np.ndarray]:
    array = np.random.default_rng(0).normal(size=(ROWS, DIM)).astype(np.float32)
    path = tmp_path_factory.mktemp("big") / "big.npy"
    np.save(path, array)
    return path, array


def start_import(*args: object) -> subprocess.Popen:
    command = [sys.executable, "-m", "embedscope", "import", *map(str, args), "--quiet"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_when(process: subprocess.Popen, ready, delay: float) -> bool:
    """SIGKILL `process` `delay` seconds after `ready()` turns true; False if it finished first."""
    deadline = time.monotonic() + 60
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    time.sleep(delay)
    if process.poll() is not None:
        return False
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return True


@pytest.mark.parametrize("delay", DELAYS)
def test_killed_create_leaves_no_atlas_or_a_whole_one(tmp_path: Path, big, delay: float) -> None:
    source, array = big
    out = tmp_path / "run.atlas"
    process = start_import(source, "-o", out)
    staging = lambda: any(tmp_path.glob(".run.atlas.building-*"))  # noqa: E731
    kill_when(process, staging, delay)
    if out.exists():
        atlas = Atlas.open(out)
        assert atlas.n == ROWS
        np.testing.assert_array_equal(atlas.vectors(), array)
    else:
        with pytest.raises(AtlasError):
            Atlas.open(out)
    again = start_import(source, "-o", out, "--force")
    assert again.wait() == 0, again.stderr.read()
    assert Atlas.open(out).n == ROWS
    assert not list(tmp_path.glob(".run.atlas.building-*")), "stale staging folders are cleaned"


@pytest.mark.parametrize("delay", DELAYS)
@pytest.mark.parametrize("mode", ["--append", "--force"])
def test_killed_append_or_replace_leaves_the_previous_atlas(tmp_path: Path, big, delay: float, mode: str) -> None:
    source, array = big
    out = tmp_path / "run.atlas"
    previous = np.random.default_rng(1).normal(size=(100, DIM)).astype(np.float32)
    ids = np.array([f"old{i}" for i in range(100)])
    with Atlas.building(out, DIM) as atlas:
        import pyarrow as pa

        atlas.append(previous, pa.array(ids))
    before = (out / "atlas.json").read_text()
    process = start_import(source, "-o", out, mode)
    writing = lambda: any((out / "items").glob(".part-*.tmp-*"))  # noqa: E731
    killed = kill_when(process, writing, delay)
    atlas = Atlas.open(out)
    if (out / "atlas.json").read_text() == before:
        np.testing.assert_array_equal(atlas.vectors(), previous)
        assert atlas.table(["id"]).column("id").to_pylist() == ids.tolist()
    else:
        assert not killed or delay > 0, "a commit can only happen after the writes"
        expected = np.concatenate([previous, array]) if mode == "--append" else array
        assert atlas.n == len(expected)
        np.testing.assert_array_equal(atlas.vectors(), expected)
    # the next writer works and sweeps the dead writer's files
    atlas.append(np.zeros((1, DIM), np.float32), ids=None)
    leftovers = [path.name for path in (out / "items").iterdir() if path.name.startswith(".")]
    assert leftovers == []
