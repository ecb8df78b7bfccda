"""The viewer's server, run for real (uvicorn on 127.0.0.1): every endpoint against the Atlas it reads,
its safety (token, host, origin, body sizes, no path traversal) and the static export."""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from fastapi import HTTPException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from embedscope.atlas import Atlas
from embedscope.errors import AtlasError, ParameterError
from embedscope.formats.star import read_particles_star
from embedscope.maps.neighbors import knn_graph
from embedscope.pipeline.exporting import export_rows
from embedscope.server import create_app, export_static_site
from embedscope.server.security import is_loopback, row_number, rows_from_bytes, rows_from_text
from embedscope.server.serve import bind_socket, running_in_thread

N, DIM = 300, 8
CACHED_K = 10
APP_SCRIPT = '<script type="module" crossorigin src="./assets/app.js"></script>'


# ----------------------------------------------------------------------------- Atlases and servers
def cells_atlas(path: Path) -> dict:
    """A 2D, a 3D and a cluster layer, two thumbnail kinds and a cached exact graph; returns what went in."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(N, DIM)).astype(np.float32)
    score = rng.random(N)
    score[5] = np.nan
    truth = {
        "vectors": vectors,
        "ids": [f"item-{row:04d}" for row in range(N)],
        "tomogram": [f"t{row % 3}" for row in range(N)],
        "x": rng.integers(0, 1000, N).astype(np.int32),
        "y": rng.integers(0, 1000, N).astype(np.int32),
        "z": rng.integers(0, 10, N).astype(np.int32),
        "score": score,
        "path": [f"/data/Cell_{row:04d}.mrc" for row in range(N)],
        "umap": rng.normal(size=(N, 2)).astype(np.float32),
        "pca3": rng.normal(size=(N, 3)).astype(np.float32),
        "cluster": rng.integers(0, 4, N).astype(np.int32),
        "mg": rng.integers(0, 256, (N, 12, 10), dtype=np.uint8),
        "rgb": rng.integers(0, 256, (N, 6, 5, 3), dtype=np.uint8),
    }
    metadata = pa.table({name: truth[name] for name in ("tomogram", "x", "y", "z", "score", "path")})
    atlas = Atlas.create(path, DIM, metric="euclidean")
    atlas.append(vectors, pa.array(truth["ids"]), metadata)
    atlas.add_layer("pca3", {axis: truth["pca3"][:, i] for i, axis in enumerate("xyz")})
    atlas.add_layer("umap", {"x": truth["umap"][:, 0], "y": truth["umap"][:, 1]})
    atlas.add_layer("overcluster", {"cluster": truth["cluster"]})
    atlas.add_thumbs("mg", [truth["mg"]])
    atlas.add_thumbs("rgb", [truth["rgb"][:100], truth["rgb"][100:]])
    atlas.save_graph(knn_graph(vectors, CACHED_K, "euclidean", method="exact"), "raw")
    return truth


def sequence_atlas(path: Path, frames: int = 3, per_frame: int = 20) -> np.ndarray:
    """The same ids in each frame (a `frame` column), cosine metric, one 2D layer; returns the vectors."""
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(frames * per_frame, 4)).astype(np.float32)
    atlas = Atlas.create(path, 4, metric="cosine")
    ids = [f"cell{item}" for _ in range(frames) for item in range(per_frame)]
    frame = np.repeat(np.arange(frames, dtype=np.int32), per_frame)
    atlas.append(vectors, pa.array(ids), pa.table({"frame": frame, "group": ["a", "b"] * (frames * per_frame // 2)}))
    atlas.add_layer("aligned", {"x": rng.normal(size=len(ids)).astype(np.float32),
                                "y": rng.normal(size=len(ids)).astype(np.float32)})
    return vectors


def front_end_build(folder: Path) -> Path:
    """A stand-in for the built front end: an index.html with a module script and one asset."""
    (folder / "assets").mkdir(parents=True)
    (folder / "assets" / "app.js").write_text("console.log('viewer');\n")
    (folder / "favicon.svg").write_text("<svg/>")
    (folder / "index.html").write_text(f"<!doctype html><html><head><title>v</title>{APP_SCRIPT}</head>"
                                       "<body><div id=app></div></body></html>")
    return folder


@pytest.fixture(scope="module")
def cells(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("cells") / "cells.atlas"
    return path, cells_atlas(path)


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    return front_end_build(tmp_path_factory.mktemp("build") / "static")


@pytest.fixture(scope="module")
def server(cells, build) -> str:
    with running_in_thread(create_app(cells[0], static_dir=build)) as url:
        yield url


def fetch(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """Status, headers and body of one request (errors included), never through a proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def get_json(url: str, data: bytes | None = None, headers: dict | None = None):
    status, _, body = fetch(url, data, headers)
    assert status == 200, body
    return json.loads(body)


def arrow(url: str) -> pa.Table:
    status, headers, body = fetch(url)
    assert status == 200, body
    assert headers["content-type"] == "application/vnd.apache.arrow.stream"
    return ipc.open_stream(body).read_all()


def raw_get(base: str, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    """GET a path exactly as written (no normalising of '..' or percent escapes)."""
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def uint32(rows) -> bytes:
    return np.asarray(rows, dtype="<u4").tobytes()


def detail(body: bytes) -> str:
    return json.loads(body)["detail"]


def brute_force(vectors: np.ndarray, row: int, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    data = vectors.astype(np.float64)
    if metric == "cosine":
        unit = data / np.linalg.norm(data, axis=1, keepdims=True)
        distances = 1 - unit @ unit[row]
    else:
        distances = np.linalg.norm(data - data[row], axis=1)
    distances[row] = np.inf
    order = np.argsort(distances, kind="stable")[:k]
    return order, distances[order]


# ----------------------------------------------------------------------------- the catalogue and the data
def test_meta_describes_layers_columns_thumbnails(server):
    meta = get_json(f"{server}/api/meta")
    assert (meta["n"], meta["dim"], meta["metric"], meta["static"]) == (N, DIM, "euclidean", False)
    assert meta["default_layer"] == "umap"  # the newest 2D map layer, though pca3 came first
    assert meta["layers"] == {"umap": {"dims": 2, "columns": ["x", "y"]},
                              "pca3": {"dims": 3, "columns": ["x", "y", "z"]}}
    columns = meta["columns"]
    assert list(columns) == ["id", "tomogram", "x", "y", "z", "score", "path", "overcluster_cluster"]
    assert columns["id"] == {"type": "text"} and columns["path"] == {"type": "text"}
    assert columns["tomogram"] == {"type": "category", "categories": ["t0", "t1", "t2"]}
    assert columns["z"] == {"type": "category", "categories": [str(value) for value in range(10)]}
    assert columns["x"] == {"type": "number"} and columns["score"] == {"type": "number"}
    assert columns["overcluster_cluster"]["categories"] == ["0", "1", "2", "3"]
    assert meta["thumbs"] == {"mg": {"shape": [12, 10]}, "rgb": {"shape": [6, 5, 3]}}
    assert meta["frames"] is None and meta["groups"] is None


def test_points_are_float32_positions_in_row_order(server, cells):
    truth = cells[1]
    umap = arrow(f"{server}/api/points?layer=umap")
    assert umap.schema == pa.schema([("x", pa.float32()), ("y", pa.float32())])
    assert np.array_equal(np.column_stack([umap["x"].to_numpy(), umap["y"].to_numpy()]), truth["umap"])
    assert arrow(f"{server}/api/points").equals(umap)
    pca = arrow(f"{server}/api/points?layer=pca3")
    assert np.array_equal(np.column_stack([pca[axis].to_numpy() for axis in "xyz"]), truth["pca3"])
    assert fetch(f"{server}/api/points?layer=overcluster")[0] == 404
    assert fetch(f"{server}/api/points?layer=nope")[0] == 404


def test_columns_give_category_codes_or_numbers(server, cells):
    truth, meta = cells[1], get_json(f"{server}/api/meta")
    for name, expected in (("tomogram", truth["tomogram"]), ("overcluster_cluster", truth["cluster"])):
        table = arrow(f"{server}/api/column?name={name}")
        assert table.schema == pa.schema([("values", pa.int16())])
        names = np.array(meta["columns"][name]["categories"])
        assert names[table["values"].to_numpy()].tolist() == [str(value) for value in expected]
    score = arrow(f"{server}/api/column?name=score")["values"].to_numpy()
    assert score.dtype == np.float32 and np.isnan(score[5])
    assert np.allclose(np.delete(score, 5), np.delete(truth["score"], 5).astype(np.float32))
    status, _, body = fetch(f"{server}/api/column?name=path")
    assert status == 400 and "text" in detail(body)
    assert fetch(f"{server}/api/column?name=umap_x")[0] == 404


def test_items_in_the_order_asked(server, cells):
    truth = cells[1]
    items = get_json(f"{server}/api/items?rows=5,0,5")
    assert [item["row"] for item in items] == [5, 0, 5]
    assert items[1] == {"row": 0, "id": "item-0000", "tomogram": "t0", "x": int(truth["x"][0]),
                        "y": int(truth["y"][0]), "z": int(truth["z"][0]), "score": truth["score"][0],
                        "path": "/data/Cell_0000.mrc", "overcluster_cluster": int(truth["cluster"][0])}
    assert items[0]["score"] is None  # NaN has no JSON form
    assert get_json(f"{server}/api/items?rows=") == []
    assert fetch(f"{server}/api/items?rows={','.join(['1'] * 1001)}")[0] == 400
    assert fetch(f"{server}/api/items?rows=1,{N}")[0] == 400
    assert fetch(f"{server}/api/items?rows=1,-2")[0] == 400


@pytest.mark.parametrize("kind", ["mg", "rgb"])
def test_thumbnails_are_pngs_of_the_stored_images(server, cells, kind):
    for row in (0, 150, N - 1):
        status, headers, body = fetch(f"{server}/api/thumb/{kind}/{row}.png")
        assert status == 200 and headers["content-type"] == "image/png"
        assert headers["cache-control"] == "public, max-age=31536000, immutable"
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(body))), cells[1][kind][row])
    for path in (f"/api/thumb/{kind}/{N}.png", f"/api/thumb/{kind}/x.png", f"/api/thumb/{kind}/1",
                 "/api/thumb/ps/1.png", f"/api/thumb/{kind}/-1.png", f"/api/thumb/{kind}/1.jpg"):
        assert fetch(server + path)[0] == 404, path


@pytest.mark.parametrize("k", [8, 25])  # 8 from the cached graph of 10, 25 from a scan of the vectors
def test_neighbours_are_the_true_nearest_items(server, cells, k):
    vectors = cells[1]["vectors"]
    for row in (0, 77, N - 1):
        answer = get_json(f"{server}/api/neighbors/{row}?k={k}")
        rows, distances = brute_force(vectors, row, k, "euclidean")
        assert answer["rows"] == rows.tolist()
        assert np.allclose(answer["distances"], distances, rtol=1e-4)
    assert get_json(f"{server}/api/neighbors/3")["rows"] == brute_force(vectors, 3, 8, "euclidean")[0].tolist()
    assert fetch(f"{server}/api/neighbors/{N}")[0] == 404
    assert fetch(f"{server}/api/neighbors/1?k=0")[0] == 400
    status, _, body = fetch(f"{server}/api/neighbors/1?k=many")
    assert status == 400 and "\n" not in detail(body)


def test_search_finds_ids_and_text_ignoring_case(server):
    assert get_json(f"{server}/api/search?q=CELL_0012")["rows"] == [12]
    assert get_json(f"{server}/api/search?q=item-01&limit=5")["rows"] == [100, 101, 102, 103, 104]
    assert len(get_json(f"{server}/api/search?q=T2")["rows"]) == 50  # category column tomogram
    assert get_json(f"{server}/api/search?q=no%20such%20thing")["rows"] == []
    assert get_json(f"{server}/api/search?q=")["rows"] == []
    assert get_json(f"{server}/api/search?q=%25")["rows"] == []  # no wildcards
    assert fetch(f"{server}/api/search?q=a&limit=0")[0] == 400


def test_query_runs_sql_conditions_over_items_and_layers(server, cells):
    truth = cells[1]
    where = "overcluster_cluster = 1 AND score > 0.5 AND tomogram <> 't0'"
    answer = get_json(f"{server}/api/query", json.dumps({"where": where}).encode())
    expected = np.flatnonzero((truth["cluster"] == 1) & (truth["score"] > 0.5) & (np.arange(N) % 3 != 0))
    assert answer == {"count": len(expected), "rows": expected.tolist()}
    assert get_json(f"{server}/api/query", json.dumps({"where": "umap_x > 100"}).encode()) == {"count": 0, "rows": []}
    status, _, body = fetch(f"{server}/api/query", json.dumps({"where": "nope >>> 3"}).encode())
    assert status == 400 and "nope >>> 3" in detail(body) and "\n" not in detail(body)
    status, _, body = fetch(f"{server}/api/query", json.dumps({"where": "read_csv('/etc/passwd') IS NULL"}).encode())
    assert status == 400
    for body in (b"not json", b"[]", b'{"where": 3}', json.dumps({"where": "  "}).encode()):
        assert fetch(f"{server}/api/query", body)[0] == 400, body
    assert fetch(f"{server}/api/query", json.dumps({"where": "x" * 70_000}).encode())[0] == 413


def test_counts_per_category_of_a_selection(server, cells):
    rows = np.arange(0, N, 7)
    counts = get_json(f"{server}/api/counts?column=overcluster_cluster", uint32(rows),
                      {"Content-Type": "application/octet-stream"})
    labels, tally = np.unique(cells[1]["cluster"][rows], return_counts=True)
    assert counts == {str(label): int(count) for label, count in zip(labels, tally)}
    assert get_json(f"{server}/api/counts?column=tomogram", uint32([0, 3, 1, 0])) == {"t0": 2, "t1": 1}
    assert fetch(f"{server}/api/counts?column=score", uint32([1]))[0] == 400
    assert fetch(f"{server}/api/counts?column=nope", uint32([1]))[0] == 404


# ----------------------------------------------------------------------------- export
def atlas_files(path: Path) -> dict[str, float]:
    return {str(file.relative_to(path)): file.stat().st_mtime_ns for file in path.rglob("*")
            if file.is_file() and "selections" not in file.parts}


@pytest.mark.parametrize("fmt", ["parquet", "csv", "json", "milopyp-coords", "star"])
def test_export_writes_exactly_the_posted_rows_into_selections(server, cells, fmt):
    path, truth = cells
    before = atlas_files(path)
    posted = [250, 3, 5, 99, 3]
    status, headers, body = fetch(f"{server}/api/export?format={fmt}", uint32(posted),
                                  {"Content-Type": "application/octet-stream"})
    assert status == 200, body
    name = re.fullmatch(r'attachment; filename="(\d{8}T\d{6}Z-4(-\d+)?\.(\w+))"', headers["content-disposition"])
    assert name, headers["content-disposition"]
    written = path / "selections" / name.group(1)
    assert written.read_bytes() == body and headers["x-embedscope-saved"] == f"selections/{written.name}"
    assert atlas_files(path) == before  # nothing else in the Atlas is written
    rows = [3, 5, 99, 250]
    ids = [truth["ids"][row] for row in rows]
    if fmt == "parquet":
        table = pq.read_table(io.BytesIO(body))
        assert table.column("id").to_pylist() == ids
        assert table.column("umap_x").to_pylist() == truth["umap"][rows, 0].tolist()
    elif fmt == "csv":
        assert pacsv.read_csv(io.BytesIO(body)).column("id").to_pylist() == ids
    elif fmt == "json":
        records = json.loads(body)
        assert [record["id"] for record in records] == ids
        assert records[1]["score"] is None and records[0]["overcluster_cluster"] == truth["cluster"][3]
    elif fmt == "milopyp-coords":
        lines = body.decode().splitlines()
        assert lines[0] == "image_name\tx_coord\ty_coord\tz_coord"
        assert lines[1:] == [f"t{row % 3}\t{truth['x'][row]}\t{truth['y'][row]}\t{truth['z'][row]}" for row in rows]
    else:
        table = read_particles_star(written)
        assert table.column("tomogram").to_pylist() == [truth["tomogram"][row] for row in rows]
        assert table.column("z").to_pylist() == truth["z"][rows].tolist()


def test_export_refuses_bad_requests_and_oversize_bodies(server, cells):
    url = f"{server}/api/export?format=csv"
    assert fetch(f"{server}/api/export?format=xlsx", uint32([1]))[0] == 400
    assert fetch(url, b"")[0] == 400
    assert fetch(url, b"\x01\x00\x00")[0] == 400
    assert fetch(url, uint32([N]))[0] == 400
    assert fetch(url, uint32(np.zeros(N + 1)))[0] == 413
    address = urlsplit(server)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    connection.request("POST", "/api/export?format=csv", body=iter([uint32(np.zeros(N))] * 2), encode_chunked=True)
    assert connection.getresponse().status == 413  # no Content-Length: counted while it streams
    connection.close()
    assert fetch(f"{server}/api/query", b'{"where": "1=1"}', {"Origin": "http://elsewhere.example"})[0] == 403


def test_export_rows_refuses_nothing_and_rows_outside_the_atlas(cells, tmp_path):
    atlas = Atlas.open(cells[0])
    with pytest.raises(ParameterError, match="nothing is selected"):
        export_rows(atlas, [], "csv", tmp_path / "none.csv")
    with pytest.raises(ParameterError, match=f"0..{N - 1}"):
        export_rows(atlas, [0, N], "csv", tmp_path / "beyond.csv")
    with pytest.raises(ParameterError, match="unknown export format"):
        export_rows(atlas, [0], "xlsx", tmp_path / "x.xlsx")
    assert list(tmp_path.iterdir()) == []
    report = export_rows(atlas, np.array([7, 2, 7]), "json", tmp_path / "two.json")
    assert report.count == 2 and [record["id"] for record in json.loads(report.output.read_text())] == [
        "item-0002", "item-0007"]


# ----------------------------------------------------------------------------- safety
@pytest.mark.parametrize("path", [
    "/api/thumb/../../atlas.json", "/api/thumb/mg/../../atlas.json", "/api/thumb/%2e%2e/%2e%2e/atlas.json",
    "/api/thumb/..%2F..%2Fatlas.json", "/api/thumb/mg/..%2F..%2Fatlas.json.png", "/api/thumb/..%2Fatlas.json/0.png",
    "/api/thumb/mg/%2e%2e%2f%2e%2e%2fatlas.json", "/assets/../../cells.atlas/atlas.json",
    "/assets/..%2F..%2Fatlas.json", "/..%2Fatlas.json", "/api/../cells.atlas/atlas.json", "/atlas.json",
])
def test_no_path_reaches_the_file_system(server, path):
    status, body = raw_get(server, path)
    assert status == 404, (path, status)
    assert b'"dim"' not in body


def test_front_end_files_and_placeholder(server, build, cells, tmp_path):
    status, _, body = fetch(f"{server}/")
    assert status == 200 and APP_SCRIPT.encode() in body
    assert fetch(f"{server}/assets/app.js")[2] == b"console.log('viewer');\n"
    assert fetch(f"{server}/favicon.svg")[2] == b"<svg/>"
    assert fetch(f"{server}/index.htm")[0] == 404
    with running_in_thread(create_app(cells[0], static_dir=tmp_path / "not-built")) as url:
        status, _, body = fetch(f"{url}/")
        assert status == 200 and b"not built" in body


def test_a_token_guards_every_api_request(cells, build):
    with running_in_thread(create_app(cells[0], token="s3cret", static_dir=build)) as url:
        assert fetch(f"{url}/api/meta")[0] == 401
        assert fetch(f"{url}/api/meta?token=wrong")[0] == 401
        assert fetch(f"{url}/api/thumb/mg/0.png")[0] == 401
        assert fetch(f"{url}/api/meta?token=s3cret")[0] == 200
        assert fetch(f"{url}/api/meta", headers={"X-Embedscope-Token": "s3cret"})[0] == 200
        assert fetch(f"{url}/api/export?format=csv", uint32([1]))[0] == 401
        assert fetch(f"{url}/")[0] == 200  # the page itself holds no data; it reads the token from its URL
        assert fetch(f"{url}/api/meta?token=s3cret", headers={"Host": "viewer.example:80"})[0] == 200


def test_without_a_token_only_loopback_host_names_are_answered(server):
    port = urlsplit(server).port
    assert raw_get(server, "/api/meta", {"Host": f"localhost:{port}"})[0] == 200
    assert raw_get(server, "/api/meta", {"Host": f"attacker.example:{port}"})[0] == 403  # DNS rebinding
    assert raw_get(server, "/", {"Host": f"192.168.1.5:{port}"})[0] == 403


def test_serve_on_all_interfaces_makes_a_token_and_stops_on_ctrl_c(cells):
    code = f"from embedscope.server.serve import serve; serve({str(cells[0])!r}, host='0.0.0.0', open_browser=False)"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = process.stdout.readline()
        address = urlsplit(re.search(r"http://\S+", line).group(0))
        token = re.fullmatch(r"token=([\w-]{20,})", address.query).group(1)
        local = f"http://127.0.0.1:{address.port}"
        assert fetch(f"{local}/api/meta")[0] == 401
        assert get_json(f"{local}/api/meta?token={token}")["n"] == N
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0, process.stderr.read()
        assert "Traceback" not in process.stderr.read()
    finally:
        process.kill()


def test_a_port_in_use_is_a_one_line_error():
    taken = bind_socket("127.0.0.1", 0)
    taken.listen()
    try:
        with pytest.raises(ParameterError, match="choose another --port"):
            bind_socket("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


def test_atlases_the_viewer_cannot_show(tmp_path, cells):
    with pytest.raises(ParameterError, match="not a map layer"):
        create_app(cells[0], layer="overcluster")
    bare = Atlas.create(tmp_path / "bare.atlas", 2)
    bare.append(np.ones((3, 2), np.float32))
    with pytest.raises(ParameterError, match="embedscope map"):
        create_app(bare.path)
    with pytest.raises(AtlasError):
        create_app(tmp_path / "missing.atlas")


# ----------------------------------------------------------------------------- sequences and changes
def test_sequence_points_carry_frame_and_track(tmp_path):
    vectors = sequence_atlas(tmp_path / "seq.atlas")
    with running_in_thread(create_app(tmp_path / "seq.atlas")) as url:
        meta = get_json(f"{url}/api/meta")
        assert meta["frames"] == ["0", "1", "2"] and meta["groups"] == ["a", "b"] and meta["metric"] == "cosine"
        points = arrow(f"{url}/api/points?layer=aligned")
        assert points.schema.names == ["x", "y", "frame", "track"]
        assert points.schema.field("frame").type == pa.int16() and points.schema.field("track").type == pa.int32()
        assert points["frame"].to_numpy().tolist() == np.repeat([0, 1, 2], 20).tolist()
        assert points["track"].to_numpy().tolist() == list(range(20)) * 3  # the same id, the same track
        for row in (0, 31):
            answer = get_json(f"{url}/api/neighbors/{row}?k=5")
            rows, distances = brute_force(vectors, row, 5, "cosine")
            assert answer["rows"] == rows.tolist() and np.allclose(answer["distances"], distances, atol=1e-5)


def test_changes_to_the_atlas_show_without_a_restart(tmp_path):
    path = tmp_path / "seq.atlas"
    sequence_atlas(path)
    with running_in_thread(create_app(path)) as url:
        assert list(get_json(f"{url}/api/meta")["layers"]) == ["aligned"]
        Atlas.open(path).add_layer("kmeans", {"cluster": np.arange(60) % 2})
        meta = get_json(f"{url}/api/meta")
        assert meta["columns"]["kmeans_cluster"]["categories"] == ["0", "1"]
        assert arrow(f"{url}/api/column?name=kmeans_cluster")["values"].to_numpy().tolist() == [0, 1] * 30


# ----------------------------------------------------------------------------- static export
def read_script(path: Path, prefix: str):
    text = path.read_text()
    assert text.startswith(prefix) and text.endswith(";\n")
    return json.loads(text[len(prefix) : -2])


def test_static_export_holds_the_viewer_and_every_answer(server, cells, build, tmp_path):
    path, truth = cells
    site = export_static_site(path, tmp_path / "site", static_dir=build)
    page = (site / "index.html").read_text()
    tags = re.findall(r'<script src="(data/[^"]+)"></script>', page)
    assert tags[0] == "data/meta.js" and page.index(tags[-1]) < page.index(APP_SCRIPT)
    assert all((site / tag).is_file() for tag in tags) and (site / "assets" / "app.js").is_file()
    assert sorted(tags) == sorted(f"data/{file.name}" for file in (site / "data").glob("*.js"))
    static = read_script(site / "data" / "meta.js", "window.EMBEDSCOPE_STATIC = ")
    assert static["meta"] == {**get_json(f"{server}/api/meta"), "static": True} and static["blobs"] == {}
    blobs = {}
    for tag in tags:
        for key, value in re.findall(r'^window\.EMBEDSCOPE_STATIC\.blobs\[("[^"]+")\] = "([^"]*)";$',
                                     (site / tag).read_text(), re.MULTILINE):
            blobs[json.loads(key)] = base64.b64decode(value)
    expected_keys = {"points?layer=umap", "points?layer=pca3"} | {
        f"column?name={name}" for name, column in static["meta"]["columns"].items() if column["type"] != "text"}
    assert set(blobs) == expected_keys
    for key, stream in blobs.items():
        assert stream == fetch(f"{server}/api/{quote(key, safe='?=')}")[2], key
    items = read_script(site / "data" / "items.js", "window.EMBEDSCOPE_STATIC.items = ")
    assert items == get_json(f"{server}/api/items?rows={','.join(map(str, range(N)))}")
    neighbors = read_script(site / "data" / "neighbors.js", "window.EMBEDSCOPE_STATIC.neighbors = ")
    rows = np.frombuffer(base64.b64decode(neighbors["rows"]), "<i4").reshape(N, 8)
    assert neighbors["k"] == 8
    assert all(rows[row].tolist() == brute_force(truth["vectors"], row, 8, "euclidean")[0].tolist() for row in (0, 9))
    for kind in ("mg", "rgb"):
        assert len(list((site / "data" / "thumbs" / kind).glob("*.png"))) == N
        image = Image.open(site / "data" / "thumbs" / kind / "17.png")
        assert np.array_equal(np.asarray(image), truth[kind][17])

    again = export_static_site(path, site, static_dir=build)  # an earlier export is replaced whole
    assert again == site and (site / "data" / "meta.js").is_file()
    assert not [entry for entry in tmp_path.iterdir() if entry.name.startswith(".site")]


def test_static_export_refuses_to_overwrite_other_folders_or_run_unbuilt(cells, build, tmp_path):
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"jpeg")
    with pytest.raises(ParameterError, match="not an earlier viewer export"):
        export_static_site(cells[0], other, static_dir=build)
    assert (other / "holiday.jpg").read_bytes() == b"jpeg"
    with pytest.raises(ParameterError, match="make setup"):
        export_static_site(cells[0], tmp_path / "site", static_dir=tmp_path / "nothing")
    assert not (tmp_path / "site").exists()


# ----------------------------------------------------------------------------- validators of user input
@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=40), n=st.integers(1, 10**6))
def test_row_lists_as_text_are_rows_or_a_400(text, n):
    try:
        rows = rows_from_text(text, n)
    except HTTPException as error:
        assert error.status_code == 400
    else:
        assert all(isinstance(row, int) and 0 <= row < n for row in rows)


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.integers(0, 999), max_size=50))
def test_row_lists_read_back(rows):
    assert rows_from_text(",".join(map(str, rows)), 1000) == rows
    assert rows_from_bytes(uint32(rows), 1000).tolist() == sorted(set(rows))


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=64), n=st.integers(1, 2**32))
def test_row_bodies_are_rows_or_a_400(body, n):
    try:
        rows = rows_from_bytes(body, n)
    except HTTPException as error:
        assert error.status_code == 400
    else:
        assert len(body) % 4 == 0 and np.all(np.diff(rows) > 0) and (rows.size == 0 or rows.max() < n)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=20))
def test_row_numbers_in_paths_are_rows_or_a_404(text):
    try:
        row = row_number(text, 500)
    except HTTPException as error:
        assert error.status_code == 404
    else:
        assert str(row) == text.lstrip("0") or (row == 0 and set(text) == {"0"})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.text(min_size=1, max_size=12), row=st.text(min_size=1, max_size=6))
def test_any_thumbnail_path_is_an_image_or_a_404(server, kind, row):
    status, body = raw_get(server, f"/api/thumb/{quote(kind, safe='')}/{quote(row, safe='')}.png")
    known = kind in ("mg", "rgb") and re.fullmatch(r"[0-9]+", row) is not None and int(row) < N
    assert status == (200 if known else 404), (kind, row, status)


def test_loopback_names():
    assert all(map(is_loopback, ["127.0.0.1", "localhost", "::1", "[::1]", "127.8.9.1", "LOCALHOST"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.4", "example.org", "localhost.example.org", ""]))
