"""Synthetic cryo-EM micrographs showing the faults users sort micrographs by, each with its truth.

Specimens are phase objects (particles, ice, carbon) with amplitude losses (thick ice, crystalline contamination),
imaged through the CTF with shot noise, so their power spectra show Thon rings where the CTF puts them.
"""

from __future__ import annotations

import csv
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import mrcfile
import numpy as np
import scipy.fft
from PIL import Image

from embedscope.datasets.ctf import ctf_2d
from embedscope.errors import ParameterError
from embedscope.progress import SILENT, Reporter
from embedscope.sources import power_spectrum, thumbnail, to_uint8

QUALITY_CLASSES = ("good", "thick_ice", "contamination", "carbon_edge", "empty_hole", "drift")
DOSE = 40.0  # electrons per Å², a typical exposure
MEAN_FREE_PATH_NM = 350.0  # inelastic mean free path at 300 kV: energy-filtered transmission is exp(-t / λ)
CONTRAST_LENGTH_NM = 120.0  # particle contrast falls as exp(-t / this), lost against the scattering of thick ice
PARTICLE_DIAMETER_NM = (15.0, 25.0)
PARTICLE_PHASE = 0.25  # radians across the thickest part of a particle
PARTICLE_TEXTURE = 1.0  # internal structure, relative: it carries the particles' Thon rings to high resolution
ICE_TEXTURE = 0.02  # radians of white phase noise per sqrt(nm) of vitreous ice
CARBON_TEXTURE = 0.35  # radians of white phase noise of a continuous carbon film
CARBON_TRANSMISSION = 0.85
CRYSTAL_OPACITY = (0.6, 0.9)  # the share of the beam a contaminating ice crystal stops
TEMPLATES = 6  # particle shapes per micrograph, each stamped in eight orientations
DEFOCUS_UM = (0.8, 3.0)
DTYPES = ("float32", "uint16", "int16")
COUNT_SCALE = 16  # integer files hold counts times this, as EPU's scaled-count MRCs do
PICTURE_SIDE = 512
TRUTH_COLUMNS = ("micrograph_name", "quality", "defocus_um", "ice_thickness", "drift_px", "contamination_fraction",
                 "carbon_fraction", "particles")
METADATA_COLUMNS = ("micrograph_name", "rel_ice_thickness", "ctf_fit", "est_resolution", "avg_motion",
                    "num_particles", "mean_defocus")
LIST_FILE = "all_micrographs_list.micrographs"
MRC_LABEL = b"embedscope synthetic micrograph"
WORKERS = min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class QualitySet:
    """The files of a synthetic micrograph-quality set: MRC micrographs, their truth and a prismPYP metadata folder."""

    micrographs: list[Path]
    truth: Path
    metadata: Path
    names: list[str]


@dataclass(frozen=True)
class _Look:
    """What one quality class draws: ice thickness (nm), residual or drift motion (px), particle cover, gradient."""

    ice_nm: tuple[float, float]
    motion_px: tuple[float, float] = (0.2, 1.5)
    coverage: tuple[float, float] = (0.2, 0.35)
    gradient: float = 0.05  # relative change of ice thickness from one edge to the centre


LOOKS = {
    "good": _Look(ice_nm=(20, 45)),
    "thick_ice": _Look(ice_nm=(100, 180), gradient=0.3),
    "contamination": _Look(ice_nm=(20, 45)),
    "carbon_edge": _Look(ice_nm=(20, 45)),
    "empty_hole": _Look(ice_nm=(0.5, 5), coverage=(0, 0)),
    "drift": _Look(ice_nm=(20, 45), motion_px=(5, 20)),
}


def synthetic_micrograph(
    kind: str, *, side: int = 1024, pixel_size: float = 1.5, defocus_um: float = 1.5, seed: int = 0
) -> tuple[np.ndarray, dict]:
    """A (side, side) float32 micrograph of quality class `kind`, in electrons per pixel, and its truth row.

    The row holds quality, defocus_um, ice_thickness (nm), drift_px, contamination_fraction, carbon_fraction and
    particles (how many lie visibly in the ice); the micrograph's name is the writer's to give.
    """
    if kind not in LOOKS:
        raise ParameterError(f"unknown micrograph quality {kind!r}; choose one of {', '.join(QUALITY_CLASSES)}")
    if not (isinstance(side, int | np.integer) and side >= 64) or not pixel_size > 0 or not defocus_um > 0:
        raise ParameterError(f"a micrograph needs side >= 64 px, a positive pixel size and underfocus (defocus > 0); "
                             f"got side {side}, pixel size {pixel_size} and defocus {defocus_um}")
    look = LOOKS[kind]
    random = np.random.default_rng([seed, QUALITY_CLASSES.index(kind)])
    thickness = random.uniform(*look.ice_nm)
    phase = random.standard_normal((side, side), dtype=np.float32) * np.float32(ICE_TEXTURE * np.sqrt(thickness))
    transmission = _ice_transmission(side, thickness, look.gradient, random)
    blocked = np.zeros((side, side), bool)  # where particles cannot sit or cannot be seen
    if kind == "contamination":
        blocked = _add_contamination(phase, transmission, random)
    if kind == "carbon_edge":
        blocked = _add_carbon(phase, transmission, random)
    particles, count = _stamp_particles(side, pixel_size, random.uniform(*look.coverage), blocked, random)
    phase += particles * np.float32(np.exp(-thickness / CONTRAST_LENGTH_NM))
    motion = random.uniform(*look.motion_px)
    image = _image(phase, transmission, pixel_size, defocus_um, _b_factor(thickness), motion, random)
    truth = {
        "quality": kind,
        "defocus_um": defocus_um,
        "ice_thickness": thickness,
        "drift_px": motion,
        "contamination_fraction": float(blocked.mean()) if kind == "contamination" else 0.0,
        "carbon_fraction": float(blocked.mean()) if kind == "carbon_edge" else 0.0,
        "particles": count,
    }
    return image, truth


def _image(
    phase: np.ndarray,
    transmission: np.ndarray,
    pixel_size: float,
    defocus_um: float,
    b_factor: float,
    motion_px: float,
    random: np.random.Generator,
) -> np.ndarray:
    """Counts of a weak phase object seen through the CTF, blurred by linear motion and dimmed by `transmission`.

    Intensity is transmission · (1 + 2 · CTF ∗ phase); shot noise is Poisson's at DOSE times that, drawn as its
    normal approximation (exact to well under 1 % at the tens of electrons a pixel gets, and three times faster).
    """
    side = phase.shape[0]
    margin = side // 16  # mirrored around the edges: the FFT's wrap-around then joins no unrelated edges
    padded = scipy.fft.next_fast_len(side + 2 * margin, real=True)
    transfer = ctf_2d(padded, pixel_size, defocus_um, b_factor=b_factor)[:, : padded // 2 + 1]
    transfer *= _motion_transfer(padded, motion_px, random.uniform(0, np.pi))
    spectrum = scipy.fft.rfft2(np.pad(phase, (margin, padded - side - margin), mode="symmetric")) * transfer
    wave = scipy.fft.irfft2(spectrum, s=(padded, padded))[margin : margin + side, margin : margin + side]
    counts = np.float32(DOSE * pixel_size**2) * transmission * np.maximum(1 + 2 * wave, 0)
    counts += np.sqrt(counts) * random.standard_normal(counts.shape, dtype=np.float32)
    return np.maximum(counts, 0, out=counts)


def _motion_transfer(side: int, length_px: float, angle: float) -> np.ndarray:
    """The transfer function, on the rfft grid, of a straight motion of `length_px` at `angle` radians from x."""
    down = (length_px * np.sin(angle) * scipy.fft.fftfreq(side)).astype(np.float32)
    across = (length_px * np.cos(angle) * scipy.fft.rfftfreq(side)).astype(np.float32)
    return np.sinc(down[:, None] + across[None, :])


def _b_factor(ice_thickness_nm: float) -> float:
    """The B factor (Å²) that damps the Thon rings of a micrograph taken through ice this thick.

    Thicker ice scatters more and moves more under the beam: about 55 Å² at 30 nm, 600 Å² at 150 nm.
    """
    return float(30.0 * np.exp(ice_thickness_nm / 50.0))


def _ice_transmission(side: int, thickness: float, gradient: float, random: np.random.Generator) -> np.ndarray:
    """exp(-t / λ) of ice whose thickness changes linearly across the micrograph in a random direction."""
    angle = random.uniform(0, 2 * np.pi)
    ramp = np.linspace(-1, 1, side) * gradient * thickness / MEAN_FREE_PATH_NM
    down, across = (np.exp(-ramp * np.sin(angle)), np.exp(-ramp * np.cos(angle)))
    return (np.exp(-thickness / MEAN_FREE_PATH_NM) * np.outer(down, across)).astype(np.float32)


def _add_contamination(phase: np.ndarray, transmission: np.ndarray, random: np.random.Generator) -> np.ndarray:
    """Add several large, dark, roughly round ice crystals covering 10-30 % of the area; return where they lie.

    Each has a wobbly outline (a few low harmonics of its radius), a soft edge, and lets 10-40 % of the beam through.
    """
    side = phase.shape[0]
    count = int(random.integers(3, 9))
    radii = side * np.sqrt(random.uniform(0.10, 0.30) / count / np.pi) * random.uniform(0.7, 1.3, count)
    covered = np.zeros((side, side), bool)
    for radius, (cy, cx) in zip(radii, random.uniform(0, side, (count, 2))):
        reach = int(radius * 1.4) + 4
        rows = slice(max(int(cy) - reach, 0), min(int(cy) + reach, side))
        columns = slice(max(int(cx) - reach, 0), min(int(cx) + reach, side))
        y, x = np.ogrid[rows, columns]
        angle = np.arctan2(y - cy, x - cx)
        wobble = sum(random.uniform(0, 0.12) * np.cos(m * angle + random.uniform(0, 2 * np.pi)) for m in (2, 3, 4))
        inside = np.clip((radius * (1 + wobble) - np.hypot(y - cy, x - cx)) / 3 + 0.5, 0, 1)  # a 3-px soft edge
        transmission[rows, columns] *= 1 - random.uniform(*CRYSTAL_OPACITY) * inside
        phase[rows, columns] += 0.5 * inside
        covered[rows, columns] |= inside > 0.5
    return covered


def _add_carbon(phase: np.ndarray, transmission: np.ndarray, random: np.random.Generator) -> np.ndarray:
    """Cover one side of a straight or gently curved edge with continuous carbon film; return where it lies.

    Amorphous carbon is a strong phase object with white structure, so it rings brightly, and it absorbs some beam.
    """
    side = phase.shape[0]
    angle = random.uniform(0, 2 * np.pi)
    y, x = ((axis - side / 2) / side for axis in np.ogrid[:side, :side])
    across = x * np.cos(angle) + y * np.sin(angle)
    along = -x * np.sin(angle) + y * np.cos(angle)
    distance = side * (across - random.uniform(-0.25, 0.25) + random.uniform(-0.4, 0.4) * along**2)
    film = np.clip(distance / 2 + 0.5, 0, 1).astype(np.float32)  # a 2-px soft edge
    texture = random.standard_normal((side, side), dtype=np.float32) * np.float32(CARBON_TEXTURE)
    phase += film * (0.5 + texture)
    transmission *= 1 - (1 - CARBON_TRANSMISSION) * film
    return film > 0.5


def _stamp_particles(
    side: int, pixel_size: float, coverage: float, blocked: np.ndarray, random: np.random.Generator
) -> tuple[np.ndarray, int]:
    """The phase of particles covering about `coverage` of the free area without overlapping, and their number.

    A few templates (solid blobs and hollow rings of 15-25 nm) are stamped in eight orientations each.
    """
    templates = [_template(random.uniform(*PARTICLE_DIAMETER_NM) * 10 / pixel_size, random) for _ in range(TEMPLATES)]
    radii = np.array([len(template) / 2 - 2 for template in templates])
    wanted = int(round(coverage * (~blocked).sum() / (np.pi * np.mean(radii**2))))
    chosen = random.integers(TEMPLATES, size=4 * wanted)
    candidates = random.uniform(0, side, (4 * wanted, 2))
    placed: list[int] = []
    for index, (y, x) in enumerate(candidates):
        if len(placed) == wanted or blocked[int(y), int(x)]:
            continue
        gaps = np.hypot(*(candidates[placed] - (y, x)).T) - 0.9 * (radii[chosen[placed]] + radii[chosen[index]])
        if not (gaps < 0).any():
            placed.append(index)
    pad = max(len(template) for template in templates)
    canvas = np.zeros((side + 2 * pad, side + 2 * pad), np.float32)
    for index in placed:
        sprite = np.rot90(templates[chosen[index]][:, :: random.choice((-1, 1))], random.integers(4))
        top, left = (candidates[index] + pad).astype(int) - len(sprite) // 2
        canvas[top : top + len(sprite), left : left + len(sprite)] += sprite
    return PARTICLE_PHASE * canvas[pad:-pad, pad:-pad], len(placed)


def _template(diameter_px: float, random: np.random.Generator) -> np.ndarray:
    """The projected thickness (peak 1, with internal structure) of a solid ellipsoid or a hollow shell."""
    half = int(diameter_px / 2) + 2
    y, x = np.mgrid[-half : half + 1, -half : half + 1] / (diameter_px / 2)
    angle = random.uniform(0, np.pi)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = (-x * np.sin(angle) + y * np.cos(angle)) / random.uniform(0.6, 1.0)
    radius = np.hypot(u, v)
    depth = np.sqrt(np.clip(1 - radius**2, 0, None))
    if random.random() < 0.5:  # hollow: a capsid, or a ring-shaped complex seen end on
        depth -= np.sqrt(np.clip(0.7**2 - radius**2, 0, None))
    structure = 1 + PARTICLE_TEXTURE * random.standard_normal(depth.shape)
    return (depth / depth.max() * structure).astype(np.float32)


def write_quality_micrographs(
    folder: Path,
    *,
    per_class: int = 10,
    side: int = 1024,
    pixel_size: float = 1.5,
    dtype: str = "float32",
    seed: int = 0,
    webp: bool = True,
    reporter: Reporter = SILENT,
) -> QualitySet:
    """Write `per_class` micrographs of every quality class into `folder`, with truth.csv and prismPYP's metadata.

    The set is built in a hidden sibling folder and renamed into place, so it appears whole or not at all; an
    earlier set in `folder` is replaced, any other content is refused.
    """
    if dtype not in DTYPES or not (isinstance(per_class, int | np.integer) and per_class >= 1):
        raise ParameterError(f"need per_class >= 1 and dtype one of {', '.join(DTYPES)}; got {per_class} and {dtype!r}")
    folder = Path(folder)
    _check_replaceable(folder)
    random = np.random.default_rng(seed)
    kinds = random.permutation(np.repeat(QUALITY_CLASSES, per_class)).tolist()
    names = [f"micrograph_{number:04d}" for number in range(len(kinds))]
    seeds = random.integers(2**63, size=(len(kinds), 2))  # the image's and its metadata's
    defoci = np.round(random.uniform(*DEFOCUS_UM, len(kinds)), 3)
    staging = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for part in ("micrographs", "metadata/webp" if webp else "metadata"):
            (staging / part).mkdir(parents=True)
        truth, metadata = [], []
        write = partial(_write_micrograph, staging, side=side, pixel_size=pixel_size, dtype=dtype, webp=webp)
        pool = ThreadPoolExecutor(WORKERS)  # numpy, the FFTs and the encoders release the GIL
        try:
            with reporter.phase("writing quality micrographs", len(kinds)) as advance:
                for row, notes in pool.map(write, names, kinds, seeds, defoci):
                    truth.append(row)
                    metadata.append(notes)
                    advance(1)
        finally:
            pool.shutdown(cancel_futures=True)
        _save_csv(staging / "truth.csv", TRUTH_COLUMNS, truth)
        _save_csv(staging / "metadata" / "micrograph_metadata.csv", METADATA_COLUMNS, metadata)
        (staging / "metadata" / "pixel_size.txt").write_text(f"{pixel_size}\n")
        (staging / "metadata" / LIST_FILE).write_text("".join(f"{name}\n" for name in random.permutation(names)))
        _move_into_place(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return QualitySet([folder / "micrographs" / f"{name}.mrc" for name in names], folder / "truth.csv",
                      folder / "metadata", names)


def _write_micrograph(
    staging: Path, name: str, kind: str, seeds: np.ndarray, defocus: float, *, side: int, pixel_size: float,
    dtype: str, webp: bool
) -> tuple[dict, dict]:
    """Simulate one micrograph, write its MRC file (and pictures) under `staging`; return its truth and metadata."""
    image, row = synthetic_micrograph(kind, side=side, pixel_size=pixel_size, defocus_um=float(defocus),
                                      seed=int(seeds[0]))
    _save_mrc(staging / "micrographs" / f"{name}.mrc", image, dtype, pixel_size)
    truth = {"micrograph_name": name, **row}
    metadata = _metadata_row(truth, pixel_size, np.random.default_rng(seeds[1]))
    if webp:
        _save_pictures(staging / "metadata" / "webp", name, image, pixel_size, metadata)
    return truth, metadata


def _metadata_row(truth: dict, pixel_size: float, random: np.random.Generator) -> dict:
    """What pyp's preprocessing would report for a micrograph: its truth seen through fits, with some scatter.

    The CTF fit reaches as far as the B factor, the motion and the specimen's scattering let Thon rings reach;
    thickness is ln(I0 / I), the mean free paths the beam crossed, raised by crystals and carbon; defocus and
    motion are in Å, and contamination and carbon edges add false particle picks.
    """
    envelope_limit = np.sqrt(_b_factor(truth["ice_thickness"])) / 2
    scattering_limit = min(3.0 * (30 / max(truth["ice_thickness"], 0.1)) ** 0.75, 30.0)
    fit = max(2 * pixel_size, envelope_limit, truth["drift_px"] * pixel_size, scattering_limit)
    fit *= random.lognormal(0, 0.08)
    losses = (truth["ice_thickness"] / MEAN_FREE_PATH_NM
              - np.log(1 - np.mean(CRYSTAL_OPACITY)) * truth["contamination_fraction"]
              - np.log(CARBON_TRANSMISSION) * truth["carbon_fraction"])
    false_picks = random.poisson(1 + 30 * truth["contamination_fraction"] + 15 * truth["carbon_fraction"])
    return {
        "micrograph_name": truth["micrograph_name"],
        "rel_ice_thickness": losses * random.lognormal(0, 0.05),
        "ctf_fit": fit,
        "est_resolution": fit * random.uniform(1.05, 1.3),
        "avg_motion": truth["drift_px"] * pixel_size * random.lognormal(0, 0.05),
        "num_particles": int(round(truth["particles"] * random.uniform(0.85, 1.1))) + int(false_picks),
        "mean_defocus": truth["defocus_um"] * 1e4 + random.normal(0, 30 * fit),
    }


def _save_mrc(path: Path, image: np.ndarray, dtype: str, pixel_size: float) -> None:
    """An MRC file of counts: float32 as they are, uint16 scaled, int16 scaled around their mean."""
    if dtype == "float32":
        data = image
    else:
        centre = 0 if dtype == "uint16" else np.round(image.mean())
        limits = np.iinfo(dtype)
        data = np.clip(np.rint((image - centre) * COUNT_SCALE), limits.min, limits.max).astype(dtype)
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = pixel_size
        mrc.header.label[0] = MRC_LABEL  # in place of mrcfile's, which holds the time: a seed gives the same bytes


def _save_pictures(folder: Path, name: str, image: np.ndarray, pixel_size: float, metadata: dict) -> None:
    """prismPYP's two pictures: the micrograph, and its power spectrum above the fitted CTF² (as pyp draws it)."""
    Image.fromarray(thumbnail(image, PICTURE_SIDE)).save(folder / f"{name}.webp", quality=90, method=0)
    observed = thumbnail(power_spectrum(image, tile=PICTURE_SIDE), PICTURE_SIDE)
    fitted = ctf_2d(PICTURE_SIDE, pixel_size, metadata["mean_defocus"] / 1e4, b_factor=4 * metadata["ctf_fit"] ** 2)
    half = PICTURE_SIDE // 2
    observed[half:] = to_uint8(np.fft.fftshift(fitted**2))[half:]
    Image.fromarray(observed).save(folder / f"{name}_ctffit.webp", quality=90, method=0)


def _save_csv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    """A CSV of `columns`, floats written with 6 significant digits."""
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(columns)
        writer.writerows([f"{row[c]:.6g}" if isinstance(row[c], float) else row[c] for c in columns] for row in rows)


def _check_replaceable(folder: Path) -> None:
    """Refuse a target that holds anything but an earlier quality set, before any work is done."""
    if folder.exists() and not (folder.is_dir() and (not any(folder.iterdir()) or (folder / "truth.csv").is_file())):
        raise ParameterError(f"{folder} exists and is not an empty folder or an earlier quality set; "
                             "give a new folder to write the micrographs into")


def _move_into_place(staging: Path, folder: Path) -> None:
    """Rename the finished `staging` folder to `folder`, moving an earlier set aside first and deleting it after."""
    earlier = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    if folder.exists():
        folder.rename(earlier)
    staging.rename(folder)
    shutil.rmtree(earlier, ignore_errors=True)
