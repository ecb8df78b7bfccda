"""Import and read speed of the Atlas against plain numpy + pyarrow on the same array.

Run: `make bench` or `.venv/bin/python benchmarks/foundation.py [--n 1000000] [--dim 512] [--repeats 3]`.
Prints a Markdown table for benchmarks/RESULTS.md. Needs about 7x the array's size free on disk.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from embedscope import Atlas

DATA = Path(__file__).parent / "data"


def timed(function, repeats: int) -> float:
    """Median wall time of `function()` over `repeats` runs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peer_import(source: Path, target: Path) -> None:
    """What a script does without embedscope: load the array, write it as a Parquet list column."""
    array = np.load(source)
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(array.reshape(-1)), array.shape[1])
    pq.write_table(pa.table({"vector": vectors}), target)


def our_import_cli(source: Path, target: Path) -> None:
    """`embedscope import` end to end, in a fresh process (start-up included)."""
    command = [sys.executable, "-m", "embedscope", "import", str(source), "-o", str(target), "--force", "--quiet"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def our_import_api(source: Path, target: Path) -> None:
    """The same import through the Python API, without process start-up."""
    from embedscope.pipeline import import_vectors

    import_vectors([source], target, replace=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    source = DATA / f"vectors_{args.n}x{args.dim}.npy"
    if not source.exists():
        random = np.random.default_rng(0)
        array = np.lib.format.open_memmap(source, mode="w+", dtype=np.float32, shape=(args.n, args.dim))
        for start in range(0, args.n, 100_000):
            array[start : start + 100_000] = random.normal(size=array[start : start + 100_000].shape)
        array.flush()
        del array
    peer_file, atlas_path = DATA / "peer.parquet", DATA / "bench.atlas"
    try:
        peer_write = timed(lambda: peer_import(source, peer_file), args.repeats)
        cli_write = timed(lambda: our_import_cli(source, atlas_path), args.repeats)
        api_write = timed(lambda: our_import_api(source, atlas_path), args.repeats)
        peer_read = timed(lambda: np.load(source), args.repeats)
        atlas = Atlas.open(atlas_path)
        our_read = timed(atlas.vectors, args.repeats)
        assert np.array_equal(atlas.vectors(rows=[0, args.n - 1]), np.load(source, mmap_mode="r")[[0, -1]])
    finally:
        peer_file.unlink(missing_ok=True)
        shutil.rmtree(atlas_path, ignore_errors=True)
    gb = args.n * args.dim * 4 / 1e9
    print(f"| {args.n:,} x {args.dim} float32 ({gb:.1f} GB), median of {args.repeats} | seconds | ratio to peer |")
    print("|---|---:|---:|")
    print(f"| peer: numpy.load + pyarrow.parquet.write_table | {peer_write:.2f} | 1.00 |")
    print(f"| `embedscope import` (fresh process) | {cli_write:.2f} | {cli_write / peer_write:.2f} |")
    print(f"| `import_vectors` (Python API) | {api_write:.2f} | {api_write / peer_write:.2f} |")
    print(f"| peer: numpy.load | {peer_read:.2f} | 1.00 |")
    print(f"| `Atlas.vectors()` | {our_read:.2f} | {our_read / peer_read:.2f} |")


if __name__ == "__main__":
    main()
