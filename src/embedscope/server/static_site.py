"""`embedscope view ATLAS --export DIR`: the viewer and its data as a static site that opens from `file://`.

Browsers refuse fetch() from file://, so the endpoints' answers are saved as scripts that set globals
(`window.EMBEDSCOPE_STATIC`), loaded by index.html before the app. The site is built in a hidden
sibling folder and renamed into place, so DIR is the old site or the new one, never half of one.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from embedscope.atlas.thumb_store import CHUNK_ROWS
from embedscope.errors import ParameterError
from embedscope.progress import SILENT, Reporter
from embedscope.server.app import STATIC_DIR
from embedscope.server.atlas_data import AtlasData, AtlasState
from embedscope.server.thumb_images import png_bytes

STATIC_NEIGHBORS = 8
SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
GLOBAL = "window.EMBEDSCOPE_STATIC"


def export_static_site(
    atlas_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    layer: str | None = None,
    reporter: Reporter = SILENT,
    *,
    static_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the viewer of an Atlas with all its data into `out_dir` (replacing an earlier export there).

    `static_dir` is the built front end (default: the package's); its index.html gains the data scripts.
    """
    build = Path(static_dir) if static_dir is not None else STATIC_DIR
    if not (build / "index.html").is_file():
        raise ParameterError(f"the viewer's front end is not built ({build / 'index.html'} is missing); "
                             "run `make setup` first")
    target = Path(out_dir)
    _check_target(target)
    state = AtlasData(atlas_path, layer).current()
    staging = target.parent / f".{target.name}.building-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        shutil.copytree(build, staging)
        scripts = _write_data(state, staging / "data", reporter)
        index = staging / "index.html"
        index.write_text(with_data_scripts(index.read_text(encoding="utf-8"), scripts), encoding="utf-8")
        _swap_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def with_data_scripts(page: str, scripts: list[str]) -> str:
    """index.html with `<script src>` tags for the data scripts, placed before the app's first script."""
    tags = "".join(f'<script src="{html.escape(src)}"></script>\n' for src in scripts)
    first_script = re.search(r"<script\b", page, re.IGNORECASE) or re.search(r"</head>", page, re.IGNORECASE)
    at = first_script.start() if first_script else 0
    return page[:at] + tags + page[at:]


def _write_data(state: AtlasState, folder: Path, reporter: Reporter) -> list[str]:
    """Write every data script and thumbnail; return the scripts' paths relative to the site, meta first."""
    folder.mkdir()
    scripts = {"meta.js": f"{GLOBAL} = {_json({'meta': state.meta(static=True), 'blobs': {}})};\n"}
    for layer in state.layers:
        scripts[f"points-{layer}.js"] = _blob(f"points?layer={layer}", state.points(layer))
    for index, (name, column) in enumerate(state.columns.items()):
        if column.kind != "text":
            file = f"column-{name}.js" if SAFE_NAME.fullmatch(name) else f"column-{index}~.js"
            scripts[file] = _blob(f"column?name={name}", state.column_stream(name))
    with reporter.phase("static site: items and neighbours", 2) as advance:
        scripts["items.js"] = f"{GLOBAL}.items = {_json(state.items(list(range(state.n))))};\n"
        advance(1)
        scripts["neighbors.js"] = f"{GLOBAL}.neighbors = {_json(_all_neighbors(state))};\n"
        advance(1)
    for file, text in scripts.items():
        (folder / file).write_text(text, encoding="utf-8")
    _write_thumbs(state, folder / "thumbs", reporter)
    return [f"data/{file}" for file in scripts]


def _all_neighbors(state: AtlasState) -> dict[str, Any]:
    """The nearest neighbours of every item as base64 little-endian int32 rows and float32 distances (n x k)."""
    k = min(STATIC_NEIGHBORS, state.n - 1)
    if k < 1:
        return {"k": 0, "rows": "", "distances": ""}
    graph = state.neighbors.graph(k)
    return {
        "k": k,
        "rows": _base64(np.asarray(graph.indices, dtype="<i4")),
        "distances": _base64(np.asarray(graph.distances, dtype="<f4")),
    }


def _write_thumbs(state: AtlasState, folder: Path, reporter: Reporter) -> None:
    kinds = state.atlas.thumb_kinds()
    total = sum(min(entry["n"], state.n) for entry in kinds.values())
    with reporter.phase("static site: thumbnails", total) as advance:
        for kind, entry in kinds.items():
            (folder / kind).mkdir(parents=True)
            count = min(entry["n"], state.n)
            for start in range(0, count, CHUNK_ROWS):
                rows = np.arange(start, min(start + CHUNK_ROWS, count))
                for row, image in zip(rows, state.atlas.thumbs(kind, rows)):
                    (folder / kind / f"{row}.png").write_bytes(png_bytes(image))
                advance(len(rows))


def _check_target(target: Path) -> None:
    """Refuse to replace a folder that is neither empty nor an earlier static export."""
    if not target.exists():
        if not target.parent.is_dir():
            raise ParameterError(f"cannot write {target}: the folder {target.parent} does not exist")
        return
    earlier_export = (target / "index.html").is_file() and (target / "data" / "meta.js").is_file()
    if not target.is_dir() or not (earlier_export or not any(target.iterdir())):
        raise ParameterError(f"{target} exists and is not an earlier viewer export; give a new or empty folder")


def _swap_into_place(staging: Path, target: Path) -> None:
    if not target.exists():
        os.rename(staging, target)
        return
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    shutil.rmtree(old, ignore_errors=True)
    os.rename(target, old)
    os.rename(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def _blob(key: str, stream: bytes) -> str:
    return f"{GLOBAL}.blobs[{_json(key)}] = \"{base64.b64encode(stream).decode('ascii')}\";\n"


def _base64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)
