"""What the browser tests share: small Atlases written in tmp, chromium's settings, and opening the viewer.

Chromium draws WebGL with SwiftShader, so the tests run on machines without a GPU or a display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from embedscope.atlas import Atlas

CHROMIUM = Path("/usr/bin/chromium")
BUILT_VIEWER = Path(__file__).resolve().parents[2] / "src" / "embedscope" / "server" / "static" / "index.html"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1100, "height": 700}
CLUSTERS = 5
THUMB_SIZE = 16


def write_cluster_atlas(path: Path, n: int = 300, seed: int = 0) -> dict[str, np.ndarray]:
    """An Atlas of `n` tomogram particles in CLUSTERS blobs: vectors, a 2D and a 3D map, clusters, thumbnails.

    Returns what the tests compare against: vectors, ids, the 2D map and the cluster labels.
    """
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=6.0, size=(CLUSTERS, 8))
    labels = rng.integers(0, CLUSTERS, n)
    vectors = (centers[labels] + rng.normal(size=(n, 8))).astype(np.float32)
    ids = np.array([f"p{row:04d}" for row in range(n)])
    layout = (vectors[:, :2] * 1.5 + rng.normal(scale=0.3, size=(n, 2))).astype(np.float32)
    metadata = pa.table({
        "tomogram": pa.array([f"tomo_{'ab'[row % 2]}" for row in range(n)]),
        "x": pa.array(rng.integers(0, 500, n), pa.int32()),
        "y": pa.array(rng.integers(0, 500, n), pa.int32()),
        "z": pa.array(rng.integers(0, 100, n), pa.int32()),
        "score": pa.array(rng.random(n)),
    })
    images = np.zeros((n, THUMB_SIZE, THUMB_SIZE), np.uint8)
    images[:] = (np.arange(n, dtype=np.uint8) * 37)[:, None, None]
    images[:, 4:12, 4:12] = 255
    with Atlas.building(path, 8, metric="euclidean") as atlas:
        atlas.append(vectors, ids=pa.array(ids), metadata=metadata)
        atlas.add_layer("umap", {"x": layout[:, 0], "y": layout[:, 1]}, {"method": "umap"})
        atlas.add_layer("pca3d", {"x": vectors[:, 0], "y": vectors[:, 1], "z": vectors[:, 2]}, {"method": "pca"})
        atlas.add_layer("kmeans", {"cluster": labels.astype(np.int32)}, {"method": "kmeans"})
        atlas.add_thumbs("particle", [images])
    return {"vectors": vectors, "ids": ids, "layout": layout, "labels": labels}


def write_sequence_atlas(path: Path, tracks: int = 40, frames: int = 3, seed: int = 1) -> dict[str, np.ndarray]:
    """The same `tracks` ids in `frames` snapshots (each snapshot's map shifted right), in groups odd and even."""
    rng = np.random.default_rng(seed)
    start = rng.normal(size=(tracks, 2)).astype(np.float32)
    positions = np.concatenate([start + np.float32(frame * 2.0) * np.array([1, 0], np.float32)
                                for frame in range(frames)])
    ids = np.tile(np.array([f"cell{track:03d}" for track in range(tracks)]), frames)
    frame_names = np.repeat(np.array([f"t{frame}" for frame in range(frames)]), tracks)
    vectors = rng.normal(size=(tracks * frames, 4)).astype(np.float32)
    with Atlas.building(path, 4, metric="euclidean") as atlas:
        groups = pa.array(np.tile(np.array(["even", "odd"])[np.arange(tracks) % 2], frames))
        atlas.append(vectors, ids=pa.array(ids), metadata=pa.table({"frame": pa.array(frame_names), "group": groups}))
        atlas.add_layer("umap", {"x": positions[:, 0], "y": positions[:, 1]}, {"method": "umap"})
    return {"ids": ids, "frames": frame_names, "groups": np.asarray(groups), "positions": positions}


def open_viewer(browser: object, url: str) -> object:
    """A new page on the viewer at `url`, once its first full render is done."""
    page = browser.new_page(viewport=VIEWPORT, accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_function("document.body.dataset.ready !== undefined", timeout=20_000)
    state = page.evaluate("document.body.dataset.ready")
    assert state == "1", f"viewer failed: {page.inner_text('#status')} {errors}"
    return page
