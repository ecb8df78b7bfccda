"""Where a micrograph run's pictures come from: image files (MRC, TIFF, PNG ...) or prismPYP's webp folder.

Both `embed micrographs` / `train micrographs` and the prismPYP commands resolve their inputs here, so the
names, their order, the metadata join and the per-file warnings are the same whichever door a user comes in by.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedscope.errors import InputError, ParameterError, UserError
from embedscope.progress import SILENT, Reporter
from embedscope.sources.micrograph_views import WORKING_SIZE, MicrographViews, stream_views, views_from_webp
from embedscope.sources.micrographs import (
    MicrographMetadata,
    find_micrographs,
    header_pixel_size,
    read_metadata,
    read_pixel_size,
)

DEFAULT_BAND = (30.0, 4.0)  # Å: from below the first Thon ring out to where micrograph quality is judged
PRISMPYP_LIST = "all_micrographs_list.micrographs"


@dataclass(frozen=True)
class MicrographSet:
    """The micrographs of a run, in order, with where each one's views come from and the metadata joined to them."""

    names: list[str]
    paths: list[Path] | None  # image files; None when the views are prismPYP's webp pictures
    webp: Path | None
    metadata: MicrographMetadata | None
    missing: list[str]  # listed names with no picture
    pixel_size: float | None

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, rows: Sequence[int]) -> MicrographSet:
        """The same set restricted to `rows`, in the order given."""
        take = lambda values: [values[row] for row in rows]  # noqa: E731
        return MicrographSet(take(self.names), None if self.paths is None else take(self.paths), self.webp,
                             self.metadata, self.missing, self.pixel_size)


def collect_micrographs(
    inputs: Sequence[str | Path],
    *,
    metadata: Path | None = None,
    webp: Path | None = None,
    pixel_size: float | None = None,
    search: Sequence[Path] = (),
    reporter: Reporter = SILENT,
) -> MicrographSet:
    """Resolve inputs (files, folders, globs, list files) into a MicrographSet; with `webp`, pictures come from there.

    Names in list files are looked up beside the list, then in the `search` folders, then in the metadata folder.
    The pixel size is the one given, else the metadata folder's pixel_size.txt; missing metadata rows and
    listed names without a file are reported as notes, not errors.
    """
    if pixel_size is not None and not pixel_size > 0:
        raise ParameterError(f"--pixel-size must be a positive size in Å per pixel; got {pixel_size:g}")
    if webp is not None:
        names, paths, missing = _webp_names(inputs, webp)
    else:
        folders = [*search, *([metadata] if metadata is not None and metadata.is_dir() else [])]
        found = find_micrographs(inputs, search=folders)
        names, paths, missing = found.names, found.paths, found.missing
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        reporter.note(f"warning: {len(missing):,} listed micrographs have no picture and are left out: {shown}")
    if not names:
        raise InputError(f"no micrograph could be found for {', '.join(map(str, inputs))}; check the paths")
    table = None
    if metadata is not None:
        table = read_metadata(names, metadata)
        pixel_size = pixel_size or table.pixel_size
        if table.missing:
            reporter.note(f"warning: {len(table.missing):,} of {len(names):,} micrographs have no metadata row "
                          f"in {metadata} (e.g. {table.missing[0]}); their metadata columns are empty")
    if pixel_size is None:
        pixel_size = _found_pixel_size(inputs, paths, reporter)
    return MicrographSet(names, paths, webp, table, missing, pixel_size)


def _found_pixel_size(inputs: Sequence[str | Path], paths: list[Path] | None, reporter: Reporter) -> float | None:
    """A pixel_size.txt beside a list or folder given, else the first micrograph's MRC header; noted when found."""
    places = {Path(item) if Path(item).is_dir() else Path(item).parent for item in inputs}
    for place in sorted(places):
        size = read_pixel_size(place)
        if size is not None:
            reporter.note(f"pixel size {size:g} Å from {place / 'pixel_size.txt'}")
            return size
    size = header_pixel_size(paths[0]) if paths else None
    if size is not None:
        reporter.note(f"pixel size {size:g} Å from the header of {paths[0].name} (give --pixel-size to change it)")
    return size


def prismpyp_inputs(metadata_path: Path) -> tuple[list[Path], Path | None]:
    """The list and webp folder of prismPYP's metadata folder (`--metadata-path`), checked before any work."""
    folder = Path(metadata_path)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such metadata folder; give --metadata-path the folder holding "
                         f"{PRISMPYP_LIST}, micrograph_metadata.csv and webp/")
    listing = folder / PRISMPYP_LIST
    if not listing.is_file():
        raise InputError(f"{folder}: has no {PRISMPYP_LIST}; write the micrograph names there, one per line")
    webp = folder / "webp"
    return [listing], webp if webp.is_dir() else None


def stream_micrograph_views(
    micrographs: MicrographSet,
    *,
    size: int = WORKING_SIZE,
    band: tuple[float, float] = DEFAULT_BAND,
    workers: int = 2,
) -> Iterator[tuple[int, MicrographViews | UserError]]:
    """(row, views or the error that file raised) for every micrograph in order; files are read in `workers` processes.

    prismPYP's webp pictures are small and decoded here; image files go through `sources.stream_views`. The caller
    shows the progress, as it knows what the views are for.
    """
    if micrographs.paths is not None:
        yield from stream_views(micrographs.paths, size=size, pixel_size=micrographs.pixel_size, band=band,
                                workers=workers)
        return
    for row, name in enumerate(micrographs.names):
        try:
            yield row, views_from_webp(micrographs.webp, name, size)
        except UserError as error:
            yield row, error


class ViewProblems:
    """Per-file trouble met while reading views: warned about one line each, summed up at the end."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.failed: list[str] = []
        self.flat: list[str] = []
        self.shapes: Counter[tuple[int, int]] = Counter()

    def accept(self, name: str, views: MicrographViews | UserError) -> bool:
        """True when `views` can be used; else warn about `name` and remember why it was left out."""
        if isinstance(views, UserError):
            self.failed.append(name)
            self.reporter.note(f"warning: {views} (left out)")
            return False
        self.shapes[views.shape] += 1
        if views.flat:
            self.flat.append(name)
            self.reporter.note(f"warning: {name} has (almost) no contrast, a blank or broken exposure (left out)")
            return False
        return True

    def summary(self, size: int) -> str | None:
        """One line on what was left out and on mixed image sizes, or None when all went well."""
        parts = []
        if self.failed:
            parts.append(f"{len(self.failed):,} unreadable")
        if self.flat:
            parts.append(f"{len(self.flat):,} without contrast")
        if len(self.shapes) > 1:
            sizes = ", ".join(f"{h}x{w}: {count:,}" for (h, w), count in self.shapes.most_common(4))
            parts.append(f"micrographs come in {len(self.shapes)} sizes ({sizes}); each was resampled to {size} px")
        return "; ".join(parts) if parts else None

    @property
    def left_out(self) -> int:
        return len(self.failed) + len(self.flat)


def _webp_names(inputs: Sequence[str | Path], webp: Path) -> tuple[list[str], list[Path] | None, list[str]]:
    """Names from list files (or every `<name>.webp` in the folder when no input is given) that have pictures."""
    if not Path(webp).is_dir():
        raise InputError(f"{webp}: no such webp folder; give the folder holding <name>.webp and <name>_ctffit.webp")
    from embedscope.sources.micrographs import read_name_list

    if inputs:
        listed = [name for item in inputs for name in read_name_list(Path(item))]
    else:
        listed = sorted(path.stem for path in Path(webp).glob("*.webp") if not path.stem.endswith("_ctffit"))
    present = [name for name in listed if (Path(webp) / f"{name}.webp").is_file()]
    missing = sorted(set(listed) - set(present))
    duplicates = [name for name, count in Counter(present).items() if count > 1]
    if duplicates:
        raise InputError(f"micrograph {duplicates[0]!r} is listed {Counter(present)[duplicates[0]]} times; "
                         "list each micrograph once")
    return present, None, missing


def stack_views(views: Sequence[MicrographViews], kind: str) -> np.ndarray:
    """The (n, size, size) uint8 stack of the `image` or `spectrum` view of each item."""
    return np.stack([getattr(item, kind) for item in views])
