"""prismPYP's `intersect`: keep the micrographs that are good in both the real and the Fourier domain, and write
`intersection.parquet`, `files_in_common.txt` and `files/` (links to their webp images) as prismPYP does.

Dual-domain filtering cuts false positives; the outputs replace an earlier run's whole or not at all.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from embedscope.errors import ParameterError
from embedscope.formats.atomic_files import atomic_output
from embedscope.formats.file_checks import reason
from embedscope.formats.prismpyp import NAME, PrismTable, read_export_parquet
from embedscope.progress import SILENT, Reporter

INTERSECTION = "intersection.parquet"
FILE_LIST = "files_in_common.txt"
LINKS = "files"
LINK_TYPES = ("hard", "soft")
SUFFIXES = ("_x", "_y")  # pandas.merge's, for columns both sides have
PHOENIX_IMAGE_SUFFIXES = (".mrc.combined.jpg", ".combined.jpg")  # replaced by .webp, as prismPYP does
SHOWN = 12  # classes named in an error
_CANNOT_LINK = (errno.EXDEV, errno.EPERM, errno.EMLINK)  # another filesystem, or one without hard links


@dataclass
class IntersectReport:
    """What `intersect` wrote: where, how many micrographs kept of each file's, how many webp files linked."""

    output: Path
    kept: int
    real_rows: int  # micrographs in the real-domain file
    fft_rows: int  # micrographs in the Fourier-domain file
    linked: int
    missing_webp: int
    seconds: float


def intersect_selections(
    real: Path,
    fft: Path,
    *,
    good_real: Sequence[int] | None,
    good_fft: Sequence[int] | None,
    output: Path,
    link_type: str = "hard",
    webp_path: Path | None = None,
    reporter: Reporter = SILENT,
) -> IntersectReport:
    """Keep the micrographs whose real cluster is in `good_real` and Fourier cluster in `good_fft`; write them.

    None keeps every micrograph of that file (as does a file without clusters). Rows follow the real file; the
    columns are pandas.merge's on micrograph_name (shared names get `_x` / `_y`). `files/` holds a hard or soft
    link to `<webp_path>/<name>.webp` per micrograph (a copy where hard links cannot reach); a missing webp is noted.
    """
    started = time.perf_counter()
    if link_type not in LINK_TYPES:
        raise ParameterError(f"unknown link type {link_type!r}; use hard or soft")
    output = Path(output)
    webp_path = Path(os.path.abspath(webp_path)) if webp_path is not None else None  # soft links must not be relative
    if webp_path is not None and not webp_path.is_dir():
        raise ParameterError(f"the webp folder {webp_path} does not exist; give the folder of <name>.webp files")
    if output.exists() and not output.is_dir():
        raise ParameterError(f"{output} is a file; give a folder to write the intersection into")
    real_table, fft_table = read_export_parquet(real), read_export_parquet(fft)
    real_good = _good_rows(real_table, good_real, Path(real), "real")
    fft_good = _good_rows(fft_table, good_fft, Path(fft), "Fourier")
    real_rows, fft_rows = _common_rows(real_table, real_good, fft_table, fft_good)
    intersection = merged(real_table.table.take(pa.array(real_rows)), fft_table.table.take(pa.array(fft_rows)))
    file_names = [webp_file_name(name) for name in intersection.column(NAME).to_pylist()]
    try:
        output.mkdir(parents=True, exist_ok=True)
        with atomic_output(output / INTERSECTION) as table_file, atomic_output(output / FILE_LIST) as list_file:
            pq.write_table(intersection, table_file)
            list_file.write_text("".join(f"{name}\n" for name in file_names), encoding="utf-8")
            linked, missing = _replace_links(output / LINKS, file_names, webp_path, link_type, reporter)
    except OSError as error:
        raise ParameterError(f"cannot write the intersection into {output} ({reason(error)})") from error
    return IntersectReport(output, len(file_names), len(real_table), len(fft_table), linked, missing,
                           round(time.perf_counter() - started, 3))


def _good_rows(table: PrismTable, good: Sequence[int] | None, path: Path, domain: str) -> np.ndarray:
    """The rows whose cluster is one of `good`; every row when `good` is None."""
    if good is None:
        return np.arange(len(table), dtype=np.int64)
    if not len(good):
        raise ParameterError(f"no good {domain} classes given; name at least one, or none at all to keep every "
                             f"micrograph of {path}")
    if table.cluster_id is None:
        raise ParameterError(f"{path} has no cluster column (it has {_listed(table.table.column_names)}); leave out "
                             f"the good {domain} classes to keep all its micrographs")
    present = np.unique(table.cluster_id)
    unknown = sorted(set(int(label) for label in good) - set(present.tolist()))
    if unknown:
        raise ParameterError(f"no {domain} class {_listed(unknown)} in {path} (column {table.cluster_column!r}); "
                             f"its classes are {_listed(present.tolist())}")
    return np.flatnonzero(np.isin(table.cluster_id, list(good))).astype(np.int64)


def _common_rows(real: PrismTable, real_good: np.ndarray, fft: PrismTable,
                 fft_good: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of each table whose micrograph is good in both, paired, in the real table's order."""
    fft_row = {fft.names[row]: row for row in fft_good.tolist()}
    pairs = [(row, fft_row[real.names[row]]) for row in real_good.tolist() if real.names[row] in fft_row]
    paired = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return paired[:, 0], paired[:, 1]


def merged(left: pa.Table, right: pa.Table) -> pa.Table:
    """Row-aligned tables side by side as `pandas.merge(left, right, on="micrograph_name")` names the columns.

    The key stays where `left` has it, `right`'s copy is dropped, and names both sides have get `_x` and `_y`.
    """
    shared = (set(left.column_names) & set(right.column_names)) - {NAME}
    columns, names = [], []
    for table, suffix in zip((left, right.drop_columns([NAME])), SUFFIXES):
        for name, column in zip(table.column_names, table.columns):
            columns.append(column)
            names.append(f"{name}{suffix}" if name in shared else name)
    return pa.table(columns, names=names)


def webp_file_name(name: str) -> str:
    """The webp file prismPYP links for a micrograph name: `<name>.webp`, without folders."""
    file_name = name.rsplit("/", 1)[-1]
    phoenix = next((suffix for suffix in PHOENIX_IMAGE_SUFFIXES if file_name.endswith(suffix)), None)
    if phoenix:
        file_name = file_name[: -len(phoenix)]
    return file_name if file_name.endswith(".webp") else f"{file_name}.webp"


def _replace_links(folder: Path, file_names: list[str], webp_path: Path | None, link_type: str,
                   reporter: Reporter) -> tuple[int, int]:
    """Fill a hidden sibling with the links, then swap it in for `folder`; return (linked, missing) counts.

    Without `webp_path` the folder is left empty, so no link of an earlier run survives.
    """
    staging = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    _remove(staging)
    staging.mkdir()
    try:
        counts = _link_all(staging, file_names, webp_path, link_type, reporter) if webp_path else (0, 0)
        _swap(staging, folder)
    finally:
        _remove(staging)
    return counts


def _link_all(folder: Path, file_names: list[str], webp_path: Path, link_type: str,
              reporter: Reporter) -> tuple[int, int]:
    """Link each distinct webp file into `folder`; a missing one is a note, not a failure."""
    distinct = list(dict.fromkeys(file_names))
    linked = missing = 0
    copying = False
    with reporter.phase(f"linking {len(distinct):,} webp files", len(distinct)) as advance:
        for file_name in distinct:
            source, target = webp_path / file_name, folder / file_name
            if not source.is_file():
                reporter.note(f"no {source}; {file_name} is listed but not linked")
                missing += 1
            elif link_type == "soft":
                target.symlink_to(source)
                linked += 1
            else:
                copied = _hard_link_or_copy(source, target)
                if copied and not copying:
                    reporter.note(f"hard links cannot reach {webp_path} from {folder.parent}; copying the webp files")
                copying = copying or copied
                linked += 1
            advance(1)
    return linked, missing


def _hard_link_or_copy(source: Path, target: Path) -> bool:
    """Hard-link `source` as `target`, or copy it where the filesystem cannot; True when copied."""
    try:
        os.link(source, target)
    except OSError as error:
        if error.errno not in _CANNOT_LINK:
            raise
        shutil.copy2(source, target)
        return True
    return False


def _swap(staging: Path, folder: Path) -> None:
    """Put `staging` in the place of `folder` (whatever was there), removing the old one."""
    retired = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    _remove(retired)
    if folder.exists() or folder.is_symlink():
        os.replace(folder, retired)
    os.replace(staging, folder)
    _remove(retired)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _listed(values: Sequence[object]) -> str:
    shown = ", ".join(str(value) for value in values[:SHOWN])
    return shown + (", ..." if len(values) > SHOWN else "")
