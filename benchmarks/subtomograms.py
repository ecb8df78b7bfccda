"""Subtomogram crops against the CryoSiam way: crops per second and peak memory, in the same run; then the
embedding throughput of CryoSiam's network on this machine's CPU (and GPU, when there is one).

Run: `.venv/bin/python benchmarks/subtomograms.py [--size 512] [--instances 500] [--workers 2] [--out FILE]`;
`--embed-only` skips the crops.
A synthetic tomogram (size^3 voxels in [0, 1]) and its CryoSiam instance mask (`instances` in an .h5) are written
once; each side then runs in a fresh process from the files to the last crop, while this process samples the
resident memory of that process and all its children (the workers) every 20 ms. The CryoSiam way is
`cryosiam_crops.crop_like_cryosiam` (whole volumes in RAM, full-volume expansion and one full-volume mask per
region, every crop kept). Both sides' crops are compared by checksum. Times are wall-clock on a shared machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import h5py
import mrcfile
import numpy as np

SETTINGS = {"masking_type": 1, "expand_labels": 3, "min_particle_size": 300, "max_particle_size": None,
            "patch_size": (40, 40, 40), "intensity": (0.0, 1.0, 0.5, 0.15)}


def write_inputs(folder: Path, size: int, instances: int, seed: int = 0) -> dict[str, str]:
    """Write a size^3 synthetic tomogram with about `instances` particles and its instance mask; return the paths."""
    from embedscope.datasets.instance_masks import synthetic_instance_mask
    from embedscope.datasets.tomograms import place_particles, render_particles

    shape = (size, size, size)
    particles = place_particles(shape, max(instances // 4, 1), seed=seed)
    volume = -render_particles(shape, particles)
    volume += np.random.default_rng(seed).standard_normal(shape, dtype=np.float32) * np.float32(0.6)
    volume = np.clip(0.5 + 0.25 * volume, 0.0, 1.0, out=volume)
    paths = {"tomogram": folder / "synthetic.mrc", "mask": folder / "synthetic_instance_preds.h5"}
    with mrcfile.new(paths["tomogram"], overwrite=True) as mrc:
        mrc.set_data(volume)
    del volume
    with h5py.File(paths["mask"], "w") as h5:
        h5.create_dataset("instances", data=synthetic_instance_mask(shape, particles))
    return {key: str(path) for key, path in paths.items()}


def settings(masking: int):
    from embedscope.sources.subtomograms import CropSettings, IntensityScaling

    values = {**SETTINGS, "masking_type": masking}
    return CropSettings(**{**values, "intensity": IntensityScaling(*values["intensity"])})


def run_ours(paths: dict[str, str], masking: int, workers: int) -> dict:
    """embedscope's stream, from the files to the last batch."""
    from embedscope.sources.subtomograms import SubtomogramJob, stream_subtomograms

    started = time.perf_counter()
    job = SubtomogramJob("synthetic", Path(paths["tomogram"]), Path(paths["mask"]))
    sums = [checksum(crop) for batch in stream_subtomograms([job], settings(masking), 32, workers)
            for crop in batch.crops]
    return {"seconds": time.perf_counter() - started, "crops": len(sums), "sums": sums}


def run_cryosiam(paths: dict[str, str], masking: int) -> dict:
    """The CryoSiam way: both volumes read whole, then `crop_like_cryosiam`."""
    from cryosiam_crops import crop_like_cryosiam

    started = time.perf_counter()
    tomogram = mrcfile.read(paths["tomogram"])
    with h5py.File(paths["mask"], "r") as h5:
        mask = h5["instances"][()]
    crops, _ = crop_like_cryosiam(tomogram, mask, settings(masking))
    return {"seconds": time.perf_counter() - started, "crops": len(crops), "sums": [checksum(c) for c in crops]}


def checksum(crop: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(crop, dtype=np.float32).tobytes(), digest_size=8).hexdigest()


def tree_memory_mib(root: int) -> float:
    """Resident memory (MiB) of process `root` and all its descendants, summed, from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(parents.get(pid, []))
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except OSError:
            continue
    return total * 4096 / 2**20


def in_fresh_process(side: str, paths: dict[str, str], masking: int, workers: int) -> dict:
    """Run one side in a new interpreter, sampling its process tree's memory; return its report plus peak_mib."""
    command = [sys.executable, __file__, "--side", side, "--paths", json.dumps(paths), "--masking", str(masking),
               "--workers", str(workers)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak = [0.0]

    def sample() -> None:
        while child.poll() is None:
            peak[0] = max(peak[0], tree_memory_mib(child.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = child.communicate()
    sampler.join()
    if child.returncode:
        raise SystemExit(f"the {side} side failed (exit code {child.returncode})")
    return json.loads(out.strip().splitlines()[-1]) | {"peak_mib": peak[0]}


def measure_crops(size: int = 512, instances: int = 500, masking: int = 1, workers: int = 2) -> dict:
    """Both sides on one synthetic tomogram: their reports (seconds, crops, checksums, peak_mib)."""
    with tempfile.TemporaryDirectory(prefix="subtomogram-bench-") as folder:
        paths = write_inputs(Path(folder), size, instances)
        theirs = in_fresh_process("cryosiam", paths, masking, workers)
        ours = in_fresh_process("ours", paths, masking, workers)
    return {"size": size, "instances": instances, "masking": masking, "workers": workers,
            "cryosiam": theirs, "ours": ours}


def table(result: dict) -> list[str]:
    """Markdown rows comparing both sides, with the targets checked."""
    theirs, ours = result["cryosiam"], result["ours"]
    their_rate, our_rate = theirs["crops"] / theirs["seconds"], ours["crops"] / ours["seconds"]
    speed, memory = our_rate / their_rate, ours["peak_mib"] / theirs["peak_mib"]
    same = sum(a == b for a, b in zip(theirs["sums"], ours["sums"]))
    size = result["size"]
    patch = "x".join(map(str, SETTINGS["patch_size"]))
    return [
        f"Subtomogram crops, {size}^3 synthetic tomogram, {result['instances']} instances, masking_type "
        f"{result['masking']}, expand_labels {SETTINGS['expand_labels']}, patch {patch}; embedscope with "
        f"{result['workers']} workers.",
        "",
        "| measure | CryoSiam way | embedscope | ratio |",
        "|---|---|---|---|",
        f"| files to last crop (s) | {theirs['seconds']:.1f} | {ours['seconds']:.1f} | |",
        f"| crops per second | {their_rate:,.1f} | {our_rate:,.1f} | {speed:.1f}x faster |",
        f"| crops | {theirs['crops']} | {ours['crops']} | {same} identical |",
        f"| peak memory, all processes (MiB) | {theirs['peak_mib']:,.0f} | {ours['peak_mib']:,.0f} | {memory:.2f}x |",
        "",
        f"Targets: >= 3x faster: {'met' if speed >= 3 else 'NOT met'} ({speed:.1f}x); peak memory <= 0.5x: "
        f"{'met' if memory <= 0.5 else 'NOT met'} ({memory:.2f}x).",
    ]


EMBEDDERS = {  # name: network settings, crop side, batch size
    "the seed config's (CryoSiam's defaults, bottleneck 64-128-256-512, dim 1024)": (dict(dim=1024), 64, 10),
    "small (8-16-32-32, dim 64), as the tests train": (dict(num_filters=(8, 16, 32, 32), dim=64, pred_dim=16), 32, 32),
}


def measure_embedding(device: str, batches: int = 3) -> list[dict]:
    """Crops per second of `embed_subtomogram_batches` for each network of EMBEDDERS, after one warm-up batch."""
    import torch

    from embedscope.encoders import NetworkSettings, SubtomogramSimSiam, embed_subtomogram_batches

    torch.manual_seed(0)
    results = []
    for name, (network, side, batch_size) in EMBEDDERS.items():
        model = SubtomogramSimSiam(NetworkSettings(**network))
        crops = np.random.default_rng(0).random((batch_size, side, side, side), dtype=np.float32)
        list(embed_subtomogram_batches(model, [crops], contrastive=False, device=device))  # warm-up
        start = time.perf_counter()
        for vectors in embed_subtomogram_batches(model, [crops] * batches, contrastive=False, device=device):
            assert np.isfinite(vectors).all()
        seconds = time.perf_counter() - start
        results.append({"network": name, "side": side, "batch": batch_size, "device": device,
                        "rate": batch_size * batches / seconds})
    return results


def embedding_table(results: list[dict]) -> list[str]:
    """Markdown rows of embedding throughput."""
    rows = ["| network | crop | batch | device | crops per second |", "|---|---|---|---|---|"]
    rows += [f"| {r['network']} | {r['side']}^3 | {r['batch']} | {r['device']} | {r['rate']:,.1f} |" for r in results]
    return ["Embedding throughput (`embed_subtomogram_batches`, float32, eval mode):", "", *rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512, help="voxels along each side of the tomogram")
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--masking", type=int, choices=[0, 1, 2], default=SETTINGS["masking_type"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, help="append the table to this Markdown file")
    parser.add_argument("--embed-only", action="store_true", help="measure only the embedding throughput")
    parser.add_argument("--side", choices=["ours", "cryosiam"], help=argparse.SUPPRESS)
    parser.add_argument("--paths", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        paths = json.loads(args.paths)
        report = run_ours(paths, args.masking, args.workers) if args.side == "ours" else run_cryosiam(paths,
                                                                                                    args.masking)
        print(json.dumps(report))
        return
    import torch

    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    lines = [] if args.embed_only else [*table(measure_crops(args.size, args.instances, args.masking, args.workers)),
                                        ""]
    lines += embedding_table([result for device in devices for result in measure_embedding(device)])
    report(lines, args.out)


if __name__ == "__main__":
    main()
