"""Micrographs (issue 12, prismPYP's workflow): `embed micrographs` throughput and power-spectrum time on 4k input.

Run: `.venv/bin/python benchmarks/micrographs.py [--count 64] [--runs 2] [--out benchmarks/RESULTS.md]`.
A few synthetic 4096 x 4096 uint16 MRC micrographs are written once (shot noise over a CTF-filtered phase texture,
about 30 counts a pixel, as a summed counting-mode movie gives), then linked under distinct names up to --count.
All files then sit in the page cache: reads come from memory, not disk. Their headers hold no pixel size.

Measured, in this one run and on this machine's CPU (no GPU is used):
1. `embed_micrographs` (what `embedscope embed micrographs` runs, with its defaults: batch 32, input 224, real
   domain) end to end on those files, the fastest of --runs, for random-init ResNet-18 and ResNet-50 checkpoints:
   micrographs/s and the fraction of the embedding loop the model waited for views. The default workers=2 against
   workers=0, the prismPYP way (its train and eval DataLoaders load in the main process), so the ratio is what
   parallel loading buys. With a pixel size of 1.0 Å (as a project's pixel_size.txt gives), and once without one
   for ResNet-18. The model alone (one batch of 32 views, resize to 224 included) is timed too: the ceiling.
2. Power spectrum per 4k micrograph, best of --repeats: ours (`power_spectrum` with and without a pixel size)
   against `numpy.fft.fft2` of the whole image, then abs()**2, fftshift and log.
3. Read + both views (`micrograph_views`) of one 4k micrograph: the piece each worker runs per file.

torch keeps its default threads (one per core). With workers=2 on a 2-core machine, the two view processes and
torch's threads share the same two cores, so parallel loading here overlaps rather than adds compute.
Prints a Markdown table (and appends it to --out). Times are wall-clock on a shared machine; the load average
is printed beside them. Tests never assert these times.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import mrcfile
import numpy as np
from reporting import report

SIDE = 4096
PIXEL_SIZE = 1.0  # Å
DOSE = 30.0  # counts a pixel
INPUT_SIZE = 224
BATCH = 32
ARCHES = ("resnet18", "resnet50")
TARGET_WAIT = 0.20


# --- the synthetic micrographs -----------------------------------------------------------------------------------


def write_micrographs(folder: Path, count: int, distinct: int) -> list[Path]:
    """`distinct` 4k uint16 MRC files, linked under `count` names in `folder`; return the linked paths."""
    import scipy.fft

    from embedscope.datasets.ctf import ctf_2d

    store = folder / "distinct"
    store.mkdir()
    files = []
    for seed in range(distinct):
        random = np.random.default_rng(seed)
        phase = random.standard_normal((SIDE, SIDE), dtype=np.float32)
        transfer = ctf_2d(SIDE, PIXEL_SIZE, random.uniform(1.0, 2.5), b_factor=random.uniform(60, 200))
        wave = scipy.fft.irfft2(scipy.fft.rfft2(phase) * transfer[:, : SIDE // 2 + 1], s=(SIDE, SIDE))
        wave *= np.float32(0.15 / wave.std())
        ramp = np.linspace(0.9, 1.1, SIDE, dtype=np.float32)[None, :]  # uneven ice
        counts = random.poisson(DOSE * ramp * np.maximum(1 + 2 * wave, 0)).astype(np.uint16)
        path = store / f"source_{seed}.mrc"
        with mrcfile.new(path) as mrc:
            mrc.set_data(counts)  # uint16: MRC mode 6; no voxel size in the header, so that runs without
            # --pixel-size find none (embedscope would read it from the header, as from EPU's files)
        files.append(path)
    links = folder / "mrc"
    links.mkdir()
    paths = []
    for index in range(count):
        path = links / f"mg_{index:04d}.mrc"
        path.symlink_to(files[index % distinct])
        paths.append(path)
    return paths


def write_checkpoint(path: Path, arch: str) -> None:
    """A random-init MicrographSimSiam in our checkpoint layout (the weights do not change the time)."""
    import torch

    from embedscope.encoders import MicrographSimSiam, save_micrograph_checkpoint

    torch.manual_seed(0)
    model = MicrographSimSiam(arch)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    save_micrograph_checkpoint(path, model, optimizer, epoch=0, arch=arch, dim=model.dim, pred_dim=model.pred_dim,
                               domain="real", input_size=INPUT_SIZE)


# --- measuring ---------------------------------------------------------------------------------------------------


def best_of(repeats: int, work) -> float:
    """The shortest of `repeats` wall-clock runs of `work()`, in seconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def embedding_run(folder: Path, checkpoint: Path, output: Path, pixel_size: float | None, workers: int) -> dict:
    """One `embed_micrographs` run over every file in `folder`: items, seconds, waiting fraction."""
    from embedscope.pipeline.micrograph_embedding import embed_micrographs
    from embedscope.pipeline.micrograph_sources import collect_micrographs

    found = collect_micrographs([folder], pixel_size=pixel_size).pixel_size
    if found != pixel_size:  # a pixel_size.txt or an MRC header would change what is measured
        raise RuntimeError(f"the run would use pixel size {found}, not {pixel_size}")
    report = embed_micrographs([folder], checkpoint, output, pixel_size=pixel_size, batch_size=BATCH,
                               device="cpu", workers=workers, replace=True)
    shutil.rmtree(output, ignore_errors=True)
    return {"items": report.items, "seconds": report.seconds, "waiting": report.waiting}


def model_alone(checkpoint: Path, repeats: int) -> float:
    """Seconds per micrograph for the model on one batch of 32 uint8 views (resize to 224 included), best of runs."""
    from embedscope.encoders import embed_micrograph_batches, load_micrograph_encoder

    model, info = load_micrograph_encoder(checkpoint, "cpu")
    views = np.random.default_rng(0).integers(0, 256, (BATCH, 512, 512), dtype=np.uint8)
    run = lambda: next(embed_micrograph_batches(model, [views], device="cpu", input_size=info.input_size))  # noqa: E731
    run()  # warm: first calls pick convolution kernels
    return best_of(repeats, run) / BATCH


def first_views(paths: list[Path], workers: int) -> float:
    """Seconds from starting `stream_views` to its first micrograph's views: with workers, the processes' start-up."""
    from embedscope.sources.micrograph_views import stream_views

    started = time.perf_counter()
    stream = stream_views(paths[:workers + 1], pixel_size=PIXEL_SIZE, workers=workers)
    next(stream)
    elapsed = time.perf_counter() - started
    stream.close()
    return elapsed


class Machine:
    """CPU time used so far by the whole machine and by this process with its finished children (Linux only)."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.busy = self.steal = math.nan
        status = Path("/proc/stat")
        if status.exists():
            user, nice, system, _, _, irq, softirq, steal = map(int, status.read_text().split()[1:9])
            tick = os.sysconf("SC_CLK_TCK")
            self.busy, self.steal = (user + nice + system + irq + softirq) / tick, steal / tick
        self.ours = sum(getattr(resource.getrusage(who), field) for who in (resource.RUSAGE_SELF,
                        resource.RUSAGE_CHILDREN) for field in ("ru_utime", "ru_stime"))

    def since(self, before: Machine) -> dict:
        """Core-seconds available, used by other processes, and stolen by the hypervisor between `before` and now."""
        cores = os.cpu_count() or 1
        return {"available": (self.wall - before.wall) * cores, "cores": cores,
                "others": max(0.0, (self.busy - before.busy) - (self.ours - before.ours)),
                "steal": self.steal - before.steal}


def spectrum_rows(path: Path, repeats: int) -> dict:
    """Per-micrograph seconds: numpy's whole-image spectrum, ours with and without a pixel size, read, read + views."""
    from embedscope.sources.micrograph_views import micrograph_views
    from embedscope.sources.micrographs import read_micrograph
    from embedscope.sources.spectra import power_spectrum

    image = read_micrograph(path)

    def numpy_spectrum() -> np.ndarray:
        return np.log(np.fft.fftshift(np.abs(np.fft.fft2(image)) ** 2))

    times = {
        "numpy": best_of(repeats, numpy_spectrum),
        "ours_pixel": best_of(repeats, lambda: power_spectrum(image, pixel_size=PIXEL_SIZE, size=512)),
        "ours_none": best_of(repeats, lambda: power_spectrum(image, size=512)),
        "read": best_of(repeats, lambda: read_micrograph(path)),
        "views_pixel": best_of(repeats, lambda: micrograph_views(read_micrograph(path), pixel_size=PIXEL_SIZE)),
        "views_none": best_of(repeats, lambda: micrograph_views(read_micrograph(path))),
    }
    return times


# --- the table ---------------------------------------------------------------------------------------------------


def table(count: int, distinct: int, runs: dict, alone: dict, spectra: dict, repeats: int, tries: int,
          contention: dict) -> list[str]:
    """The Markdown rows, with the waiting target checked for each model at the default workers."""
    load, others = contention["load"], contention["others"] / contention["available"]
    rows = [
        f"`embed micrographs`: {count} synthetic {SIDE} x {SIDE} uint16 MRC micrographs ({distinct} distinct files "
        f"linked under {count} names, in the page cache), real domain, input {INPUT_SIZE}, batch {BATCH}, CPU "
        f"(torch {alone['threads']} threads); random-init checkpoints; fastest of {tries} runs each. "
        f"Load average {load[0]:.2f} at the start, {load[1]:.2f} at the end; other processes used {others:.0%} of "
        f"the {contention['cores']} cores over the run (hypervisor steal {contention['steal']:.0f} core-s). "
        "No GPU was lent: no GPU numbers.",
        "",
        "| model | pixel size | workers | micrographs/s | model waits | seconds | vs workers=0 | model alone (mg/s) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for (arch, pixel, workers), run in runs.items():
        rate = run["items"] / run["seconds"]
        base = runs.get((arch, pixel, 0))
        ratio = f"{rate / (base['items'] / base['seconds']):.2f}x" if base and workers else ""
        label = "0 (in-process, the prismPYP way)" if workers == 0 else f"{workers} (default)"
        shown = f"{pixel:.1f} Å" if pixel else "none"
        rows.append(f"| {arch} | {shown} | {label} | {rate:.2f} | {run['waiting']:.0%} | {run['seconds']:.1f} | "
                    f"{ratio} | {1 / alone[arch]:.2f} |")
    numpy_time = spectra["numpy"]
    rows += [
        "",
        f"| per {SIDE} x {SIDE} micrograph, best of {repeats} | seconds | vs numpy.fft |",
        "|---|---:|---:|",
        f"| numpy.fft.fft2 of the whole image, abs()**2, fftshift, log | {numpy_time:.3f} | 1.00x |",
        f"| `power_spectrum`, pixel size {PIXEL_SIZE:.1f} Å (binned to the 4 Å band, 512 px view) | "
        f"{spectra['ours_pixel']:.3f} | {spectra['ours_pixel'] / numpy_time:.2f}x |",
        f"| `power_spectrum`, no pixel size (whole image, 512 px tiles) | {spectra['ours_none']:.3f} | "
        f"{spectra['ours_none'] / numpy_time:.2f}x |",
        f"| read (uint16 MRC to float32) | {spectra['read']:.3f} | |",
        f"| read + both views, pixel size {PIXEL_SIZE:.1f} Å (a worker's job per file) | "
        f"{spectra['views_pixel']:.3f} | |",
        f"| read + both views, no pixel size | {spectra['views_none']:.3f} | |",
        f"| first views from `stream_views`, workers=0 (one file, in-process) | {spectra['first_0']:.3f} | |",
        f"| first views from `stream_views`, workers=2 (process start-up + one file) | {spectra['first_2']:.3f} | |",
        "",
    ]
    verdicts = []
    for arch in ARCHES:
        run = runs.get((arch, PIXEL_SIZE, 2))
        if run:
            met = "met" if run["waiting"] <= TARGET_WAIT else "NOT met"
            verdicts.append(f"{arch} {met} ({run['waiting']:.0%})")
    rows.append(f"Target: the model waits <= {TARGET_WAIT:.0%} of the run with the default workers: "
                + "; ".join(verdicts) + ".")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=64, help="micrographs embedded per run")
    parser.add_argument("--runs", type=int, default=2, help="rounds of embedding runs; each setting's fastest is kept")
    parser.add_argument("--distinct", type=int, default=4, help="distinct files written (the rest are links)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per timing of the spectrum and views")
    parser.add_argument("--out", type=Path, help="append the table to this Markdown file")
    args = parser.parse_args()
    import torch

    before, load_start = Machine(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="micrograph-bench-") as temporary:
        folder = Path(temporary)
        paths = write_micrographs(folder, args.count, min(args.distinct, args.count))
        spectra = spectrum_rows(paths[0], args.repeats)
        spectra |= {f"first_{workers}": first_views(paths, workers) for workers in (0, 2)}
        checkpoints = {arch: folder / f"{arch}.pth.tar" for arch in ARCHES}
        for arch, checkpoint in checkpoints.items():
            write_checkpoint(checkpoint, arch)
        settings = [(arch, pixel, workers) for arch in ARCHES for pixel, workers in
                    [(PIXEL_SIZE, 0), (PIXEL_SIZE, 2)] + ([(None, 2)] if arch == ARCHES[0] else [])]
        alone, tries = {"threads": torch.get_num_threads()}, {setting: [] for setting in settings}
        for round_ in range(args.runs):  # rounds, so that a burst of other work does not hit one setting only
            for arch in ARCHES:
                alone[arch] = min(alone.get(arch, math.inf), model_alone(checkpoints[arch], 2))
            for arch, pixel, workers in settings if round_ % 2 == 0 else settings[::-1]:
                run = embedding_run(folder / "mrc", checkpoints[arch], folder / "atlas", pixel, workers)
                tries[(arch, pixel, workers)].append(run)
                print(f"round {round_ + 1}: {arch}, pixel size {pixel}, workers {workers}: {run['seconds']:.1f} s, "
                      f"waits {run['waiting']:.0%}", file=sys.stderr, flush=True)
        runs = {setting: min(done, key=lambda run: run["seconds"]) for setting, done in tries.items()}
    contention = Machine().since(before) | {"load": (load_start, os.getloadavg()[0])}
    rows = table(args.count, min(args.distinct, args.count), runs, alone, spectra, args.repeats, args.runs,
                 contention)
    report(rows, args.out)


if __name__ == "__main__":
    main()
