"""`embedscope view`: the static-site export and one-line errors, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from embedscope.atlas import Atlas

from conftest import assert_one_line_error


def _atlas(path: Path) -> Path:
    rng = np.random.default_rng(0)
    with Atlas.building(path, 4) as atlas:
        atlas.append(rng.normal(size=(30, 4)).astype(np.float32))
        atlas.add_layer("umap", {"x": rng.normal(size=30), "y": rng.normal(size=30)})
    return path


def test_view_export_writes_a_static_site(cli, tmp_path: Path) -> None:
    atlas = _atlas(tmp_path / "a.atlas")
    result = cli("view", atlas, "--export", tmp_path / "site", "-q")
    assert result.code == 0, result.err
    assert (tmp_path / "site" / "index.html").is_file()
    script = (tmp_path / "site" / "data" / "meta.js").read_text()
    meta = json.loads(script.split("=", 1)[1].strip().rstrip(";"))["meta"]
    assert meta["static"] is True and meta["n"] == 30 and meta["default_layer"] == "umap"


def test_view_refuses_bad_requests_in_one_line(cli, tmp_path: Path) -> None:
    atlas = _atlas(tmp_path / "a.atlas")
    assert_one_line_error(cli("view", atlas, "--layer", "tsne", "--no-browser"), "tsne")
    assert_one_line_error(cli("view", tmp_path / "missing.atlas", "--no-browser"), "missing.atlas")
