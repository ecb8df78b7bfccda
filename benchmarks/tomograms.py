"""Tomogram sources against the MiLoPYP way: candidate picking, patch extraction rate and peak memory, same run.

Run: `.venv/bin/python benchmarks/tomograms.py [--size 512,512,256] [--mode 3d|2d3d] [--out FILE]`.
A synthetic tomogram (X, Y, Z voxels of noise with a few hundred dark blobs, stored as IMOD does) is written
once; each side then runs in a fresh process, which reports its step times and its peak resident memory.
The MiLoPYP way is a faithful re-implementation of cet_pick's loader and dataset code: float64 volumes in RAM,
a set of suppressed voxel indices, one python loop per point, every patch kept as a float64 array in a list.
Prints a Markdown table (and appends it to --out). Shares the machine with whatever else runs: times are
wall-clock and contended if other work is running.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mrcfile
import numpy as np
from reporting import report

ANGLES = np.arange(-60.0, 61.0, 3.0)


# --- the synthetic tomogram ---------------------------------------------------------------------------------------


def write_tomogram(folder: Path, size: tuple[int, int, int], blobs: int, seed: int = 0) -> dict[str, str]:
    """Write noise with `blobs` dark Gaussian blobs as an xzy `.rec`, its tilt series and `.tlt`; return the paths."""
    columns, rows, depth = size
    random = np.random.default_rng(seed)
    volume = random.standard_normal((depth, rows, columns), dtype=np.float32)
    tilts = random.standard_normal((len(ANGLES), rows, columns), dtype=np.float32)
    edge = 40
    centres = np.stack([random.integers(edge, columns - edge, blobs), random.integers(edge, rows - edge, blobs),
                        random.integers(12, depth - 12, blobs)], axis=1)
    for x, y, z in centres:
        sigma = random.uniform(2.0, 4.0)
        reach = int(3 * sigma) + 1
        zz, yy, xx = np.ogrid[-reach : reach + 1, -reach : reach + 1, -reach : reach + 1]
        blob = np.exp(-(xx**2 + yy**2 + zz**2) / (2 * sigma**2)).astype(np.float32)
        region = (slice(max(z - reach, 0), z + reach + 1), slice(y - reach, y + reach + 1),
                  slice(x - reach, x + reach + 1))
        volume[region] -= 4 * blob[: volume[region].shape[0]]
        for index, angle in enumerate(ANGLES):  # the blob's trace in each tilt image (the contract's projection)
            radians = math.radians(angle)
            column = int((x - columns // 2) * math.cos(radians) + ((depth - z) - depth // 2) * math.sin(radians)
                         + columns // 2)
            if reach <= column < columns - reach:
                tilts[index, y - reach : y + reach + 1, column - reach : column + reach + 1] -= 3 * blob[reach]
    paths = {"rec": folder / "synthetic.rec", "tilts": folder / "synthetic.ali", "angles": folder / "synthetic.tlt"}
    with mrcfile.new(paths["rec"], overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(volume.transpose(1, 0, 2)))
    with mrcfile.new(paths["tilts"], overwrite=True) as mrc:
        mrc.set_data(tilts)
    paths["angles"].write_text("\n".join(f"{angle:.2f}" for angle in ANGLES) + "\n")
    return {key: str(path) for key, path in paths.items()}


# --- embedscope ---------------------------------------------------------------------------------------------------


def run_ours(paths: dict[str, str], mode: str, bbox: int) -> dict:
    """embedscope's sources, step by step as `stream_patches` runs them for one tomogram."""
    from embedscope.sources import CandidatePicker, preprocess_levels, preprocess_tilts, views_2d, views_3d
    from embedscope.sources.patches import used_tilts
    from embedscope.sources.tomogram_files import open_tilt_series, open_tomogram, read_angles

    report, clock = {}, Clock()
    picker = CandidatePicker(gauss=0.8, dog=(3.0, 5.0))
    volume = open_tomogram(Path(paths["rec"]))
    depth = volume.shape[0]
    levels = preprocess_levels(volume, picker.gauss)
    del volume
    if mode == "2d3d":
        angles = read_angles(Path(paths["angles"]))
        chosen = used_tilts(angles)
        tilts = preprocess_tilts(open_tilt_series(Path(paths["tilts"]))[chosen], picker.gauss)
    report["load"] = clock.lap()
    coords = picker.pick_preprocessed(levels)
    report["pick"] = clock.lap()
    views, kept = views_3d(levels, coords, bbox)
    if mode == "2d3d":
        flat, kept2d = views_2d(tilts, angles[chosen], coords, depth, bbox)
        kept &= kept2d
    report["extract"] = clock.lap()
    report["patches"] = int(np.count_nonzero(kept))
    return report | {"coords": coords.tolist(), "peak_mib": peak_mib()}


# --- the MiLoPYP way (cet_pick's utils/loader.py, utils/image.py and datasets/*_new2d3d / *_new3d_vol) ---------


def run_milopyp(paths: dict[str, str], mode: str, bbox: int) -> dict:
    """cet_pick's steps in its own data layout: float64 arrays, python loops, patches in a list."""
    report, clock = {}, Clock()
    volume = milopyp_preprocess(milopyp_read(paths["rec"], swap=True), 0.8, tilt=False)
    if mode == "2d3d":
        tilts = milopyp_preprocess(milopyp_read(paths["tilts"], swap=False), 0.8, tilt=True)
        angles = np.loadtxt(paths["angles"]).reshape(-1, 1)
        near = np.where((angles >= -20) & (angles <= 20))[0]
        tilts, angles = tilts[near], angles[near]
    report["load"] = clock.lap()
    coords = milopyp_pick(volume, [3.0, 5.0])
    report["pick"] = clock.lap()
    patches: list[np.ndarray] = []
    depth, rows, columns = volume.shape
    inner = bbox // 1.8
    for x, y, z in coords:
        if not (inner < x < columns - inner and inner <= y <= rows - inner):
            continue
        if mode == "2d3d":
            summed = None
            for image, angle in zip(tilts, angles):
                radians = angle[0] * np.pi / 180
                column = int((x - columns // 2) * math.cos(radians) + ((depth - z) - depth // 2) * math.sin(radians)
                             + columns // 2)
                if column <= inner or column >= columns - inner or y <= inner or y >= rows - inner:
                    continue
                patch = image[y - bbox // 2 : y + bbox // 2, column - bbox // 2 : column + bbox // 2].copy()
                summed = patch if summed is None else summed + patch
            if summed is None or summed.min() == summed.max():
                continue
            patches.append((summed - summed.min()) / (summed.max() - summed.min()))
        first, last = (z, z + 1) if mode == "2d3d" else (z - 1, z + 2)  # 2d3d's tomogram view is one slice
        stack = volume[first:last, y - bbox // 2 : y + bbox // 2, x - bbox // 2 : x + bbox // 2].copy()
        summed = np.sum(stack, axis=0)
        patches.append((summed - np.min(summed)) / (np.max(summed) - np.min(summed)))
    report["extract"] = clock.lap()
    report["patches"] = len(patches) if mode == "3d" else len(patches) // 2
    return report | {"coords": [list(map(int, point)) for point in coords], "peak_mib": peak_mib()}


def milopyp_read(path: str, swap: bool) -> np.ndarray:
    """load_rec: the whole file read, copied slice by slice into a float64 (Z, Y, X) array, z-scored."""
    with mrcfile.open(path, permissive=True) as mrc:
        data = mrc.data
    if swap:  # order "xzy": swap the file's last two axes, then take z slices from the last axis
        data = np.swapaxes(data, 2, 1)
        slices = np.zeros([data.shape[2], data.shape[0], data.shape[1]])
        for index in range(data.shape[2]):
            slices[index] = data[:, :, index]
        return (slices - np.mean(slices)) / np.std(slices)
    slices = np.zeros(data.shape)
    for index in range(data.shape[0]):  # tilt images are z-scored one by one
        slices[index] = (data[index] - data[index].mean()) / data[index].std()
    return slices


def milopyp_preprocess(volume: np.ndarray, gauss: float, tilt: bool) -> np.ndarray:
    """preprocess: Gaussian, z-score, quantize (uint8) and min-max, whole volume or per tilt image, in float64."""
    from scipy.ndimage import gaussian_filter

    def quantize(values, low, high):
        scaled = np.clip(255 * (values - low) / (high - low), 0, 255)
        return np.round(scaled).astype(np.uint8)

    if tilt:
        images = []
        for image in volume:
            smooth = gaussian_filter(image, sigma=gauss)
            levels = quantize((smooth - smooth.mean()) / smooth.std(), -2.5, 2.0)
            images.append(((levels - levels.min()) / float(levels.max() - levels.min())).astype(np.float32))
        return np.asarray(images)
    smooth = gaussian_filter(volume, sigma=gauss)
    levels = quantize((smooth - smooth.mean()) / smooth.std(), -3.0, 3.0)
    return (levels - np.min(levels)) / (np.max(levels) - np.min(levels))


def milopyp_pick(volume: np.ndarray, sigmas: list[float]) -> np.ndarray:
    """get_potential_coords_pyramid and non_maximum_suppression_3d (torch's 3x3 max pool done by scipy)."""
    from scipy.ndimage import gaussian_filter, maximum_filter

    depth, rows, columns = volume.shape
    border = 60 if rows > 512 and columns > 512 else 30
    smoothed = [gaussian_filter(volume, sigma) for sigma in sigmas]
    levels = []
    for narrow, wide in zip(smoothed, smoothed[1:]):
        difference = wide - narrow
        difference[:10], difference[-10:] = 0, 0
        difference[:, :border], difference[:, -border:] = 0, 0
        difference[:, :, :border], difference[:, :, -border:] = 0, 0
        window_max = maximum_filter(difference, size=(1, 3, 3), mode="nearest")
        levels.append(difference * (window_max == difference).astype(np.float32))
    best = np.max(np.stack(levels, axis=0), axis=0)
    positive = best[np.where(best > 0)]
    cutoff = positive.mean() + positive.std(ddof=1) * 0.5
    radius = 14 / 2
    reach = int(np.ceil(radius))
    steps = np.arange(-reach, reach + 1)
    ii, jj, kk = np.meshgrid(steps, steps, steps)
    inside = ii**2 + jj**2 + kk**2 <= radius * radius
    deltas = ii[inside] * rows * columns + jj[inside] * columns + kk[inside]
    flat = best.ravel()
    order = np.argsort(flat, axis=None)[::-1]
    suppressed: set = set()
    picked = []
    for index in order:
        if flat[index] <= cutoff:
            break
        if index not in suppressed:
            z, y, x = np.unravel_index(index, best.shape)
            picked.append((x, y, z))
            for delta in deltas:
                suppressed.add(index + delta)
    return np.array(picked, dtype=np.int32).reshape(-1, 3)


# --- measuring ----------------------------------------------------------------------------------------------------


class Clock:
    """Seconds since the previous lap (or since the clock was made)."""

    def __init__(self) -> None:
        self.last = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        elapsed, self.last = now - self.last, now
        return elapsed


def peak_mib() -> float:
    """This process's peak resident memory in MiB: VmHWM where Linux gives it, else ru_maxrss.

    ru_maxrss is not used on Linux because exec carries the parent's peak over to the child: a child started
    by a parent that once held 1 GB would report at least 1 GB.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)


def in_fresh_process(side: str, paths: dict[str, str], mode: str, bbox: int) -> dict:
    """Run one side in a new interpreter and return its report."""
    command = [sys.executable, __file__, "--side", side, "--paths", json.dumps(paths), "--mode", mode,
               "--bbox", str(bbox)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def warm_up() -> None:
    """Compile (or load from numba's cache) our kernels once, so that no measured process pays for compiling."""
    from embedscope.sources import CandidatePicker, views_2d, views_3d

    volume = np.random.default_rng(0).normal(size=(24, 72, 72)).astype(np.float32)
    coords = CandidatePicker().pick(volume)
    views_3d(volume, coords, 8)
    views_2d(volume[:2], np.array([0.0, 5.0]), coords, 24, 8)


def training_row(bbox: int, batch: int, steps: int, width: int) -> str:
    """SimSiam (simsiam2d_18) training steps per second on CPU: MiLoPYP's per-item loading against ours.

    Both train the same network with the same optimiser on the same patches. The MiLoPYP way augments one
    float64 patch at a time in Python (its Dataset's flips, +-30 degree rotation, centre crop and quarter turn,
    loaded on one thread); ours draws both views of a whole uint8 batch at once (`train_simsiam`, one epoch,
    checkpoint included).
    """
    import torch

    from embedscope.encoders.training import train_simsiam

    torch.manual_seed(0)
    margin = 4
    side = bbox + 2 * margin
    patches = np.random.default_rng(0).random((batch * steps, side, side))
    theirs = steps / their_training(patches, bbox, batch, steps, width)
    levels = np.rint(patches * 255).astype(np.uint8)
    with tempfile.TemporaryDirectory(prefix="train-bench-") as folder:
        started = time.perf_counter()
        train_simsiam(levels, None, arch="simsiam2d_18", bbox=bbox, margin=margin, epochs=1, batch_size=batch,
                      out_dir=Path(folder), width=width, workers=1)
        ours = steps / (time.perf_counter() - started)
    return (f"| SimSiam training, batch {batch}, width {width} (steps/s) | {theirs:.3f} | {ours:.3f} | "
            f"{ours / theirs:.2f}x |")


def their_training(patches: np.ndarray, bbox: int, batch: int, steps: int, width: int) -> float:
    """Seconds for `steps` SimSiam steps with MiLoPYP's per-item augmentation of float64 patches."""
    import torch
    from scipy.ndimage import rotate

    from embedscope.encoders.simsiam import make_model, simsiam_loss

    model = make_model("simsiam2d_18", width)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    start = (patches.shape[-1] - bbox) // 2

    def item(patch: np.ndarray, rotation: float) -> torch.Tensor:
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        if rng.random() < 0.5:
            patch = patch[::-1]
        if rotation:
            patch = rotate(patch, rng.uniform(-rotation, rotation), reshape=False, order=0)
        patch = np.rot90(patch[start:start + bbox, start:start + bbox], int(rng.integers(4)))
        return torch.from_numpy(np.ascontiguousarray(patch)).float()[None]

    began = time.perf_counter()
    for step in range(steps):
        rows = range(step * batch, (step + 1) * batch)
        first = torch.stack([item(patches[row], 30.0) for row in rows])
        second = torch.stack([item(patches[row], 0.0) for row in rows])
        loss = simsiam_loss(model(first), model(second))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - began


def table(size: tuple[int, int, int], mode: str, bbox: int, theirs: dict, ours: dict) -> list[str]:
    """The Markdown rows comparing both sides, with the targets checked."""
    shared = {tuple(point) for point in theirs["coords"]} & {tuple(point) for point in ours["coords"]}
    their_rate, our_rate = theirs["patches"] / theirs["extract"], ours["patches"] / ours["extract"]
    memory = ours["peak_mib"] / theirs["peak_mib"]
    speed = our_rate / their_rate
    x, y, z = size
    return [
        f"Tomogram sources, {x}x{y}x{z} (X,Y,Z) synthetic tomogram, mode {mode}, bbox {bbox}; one process each.",
        "",
        "| step | MiLoPYP way | embedscope | ratio |",
        "|---|---|---|---|",
        f"| read + preprocess (s) | {theirs['load']:.1f} | {ours['load']:.1f} | {ours['load'] / theirs['load']:.2f}x |",
        f"| candidate picking (s) | {theirs['pick']:.1f} | {ours['pick']:.1f} | {ours['pick'] / theirs['pick']:.2f}x |",
        f"| candidates picked | {len(theirs['coords'])} | {len(ours['coords'])} | {len(shared)} identical |",
        f"| patch extraction (patches/s) | {their_rate:,.0f} | {our_rate:,.0f} | {speed:.1f}x faster |",
        f"| patches | {theirs['patches']} | {ours['patches']} | |",
        f"| peak memory (MiB) | {theirs['peak_mib']:,.0f} | {ours['peak_mib']:,.0f} | {memory:.2f}x |",
        "",
        f"Targets: peak memory <= 0.25x: {'met' if memory <= 0.25 else 'NOT met'} ({memory:.2f}x); "
        f"extraction >= 2x faster: {'met' if speed >= 2 else 'NOT met'} ({speed:.1f}x).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="512,512,256", help="X,Y,Z voxels of the synthetic tomogram")
    parser.add_argument("--blobs", type=int, default=300)
    parser.add_argument("--mode", choices=["3d", "2d3d"], default="3d")
    parser.add_argument("--bbox", type=int, default=36)
    parser.add_argument("--out", type=Path, help="append the table to this Markdown file")
    parser.add_argument("--train-steps", type=int, default=4, help="SimSiam steps timed per side (0: skip)")
    parser.add_argument("--train-batch", type=int, default=128)
    parser.add_argument("--width", type=int, default=64, help="base channels of the ResNet (MiLoPYP: 64)")
    parser.add_argument("--side", choices=["ours", "milopyp"], help=argparse.SUPPRESS)
    parser.add_argument("--paths", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        run = run_ours if args.side == "ours" else run_milopyp
        print(json.dumps(run(json.loads(args.paths), args.mode, args.bbox)))
        return
    size = tuple(int(part) for part in args.size.split(","))
    warm_up()
    with tempfile.TemporaryDirectory(prefix="tomogram-bench-") as folder:
        paths = write_tomogram(Path(folder), size, args.blobs)
        theirs = in_fresh_process("milopyp", paths, args.mode, args.bbox)
        ours = in_fresh_process("ours", paths, args.mode, args.bbox)
    rows = table(size, args.mode, args.bbox, theirs, ours)
    if args.train_steps:
        rows.insert(-2, training_row(args.bbox, args.train_batch, args.train_steps, args.width))
    report(rows, args.out)


if __name__ == "__main__":
    main()
