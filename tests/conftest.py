"""Shared fixtures: run the real CLI in-process or as a subprocess, and write input files."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from embedscope.cli.main import app
from embedscope.cli.runner import run_app


@dataclass
class Result:
    """Exit code and the two output streams of one command."""

    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run `embedscope ARGS...` in this process through the real entry point."""

    def invoke(*args: object) -> Result:
        capsys.readouterr()
        try:
            run_app(app, [str(arg) for arg in args])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        else:
            code = 0
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


def run_process(*args: object, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run `python -m embedscope ARGS...` as a separate process."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "embedscope", *map(str, args)],
        capture_output=True, text=True, env=env, timeout=300, **kwargs,
    )


@pytest.fixture
def vectors_file(tmp_path: Path):
    """Write an (n, dim) float32 .npy of seeded random vectors and return (path, array)."""

    def write(n: int = 50, dim: int = 8, name: str = "vectors.npy", seed: int = 0):
        array = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
        path = tmp_path / name
        np.save(path, array)
        return path, array

    return write


def save_as_if_on_gpu(array: np.ndarray, path: Path) -> None:
    """`torch.save` a tensor whose file says it lives on cuda:0, as a GPU training run writes it.

    The storage location string in data.pkl is rewritten; torch itself then refuses to load the
    file on a machine without a GPU unless given map_location.
    """
    import zipfile

    import torch

    torch.save(torch.from_numpy(array), path)
    with zipfile.ZipFile(path) as source:
        entries = [(info, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as target:
        for info, data in entries:
            if info.filename.endswith("data.pkl"):
                data = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
            target.writestr(info.filename, data)


def write_csv(path: Path, columns: dict) -> Path:
    """Write columns as a CSV file and return its path."""
    pacsv.write_csv(pa.table(columns), path)
    return path

def assert_one_line_error(result: Result, *fragments: str) -> None:
    """The command failed with exit 1 and one `error:` line holding every fragment, no traceback."""
    assert result.code == 1, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="session")
def tomogram_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two small synthetic tomograms with tilt series, a MiLoPYP list and the truth (read-only: copy to change)."""
    from embedscope.datasets.tomograms import write_demo_tomograms

    folder = tmp_path_factory.mktemp("tomograms")
    write_demo_tomograms(folder, n_tomograms=2, shape=(64, 160, 160), per_class=2, seed=3)
    return folder
