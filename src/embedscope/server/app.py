"""The viewer's web app: the built front end at `/` and the JSON, Arrow and PNG endpoints under `/api`.

Everything is read from the Atlas on demand (see `atlas_data`); only exports write, and only into the
Atlas's `selections/` folder. No request names a file: kinds, layers, columns and rows are looked up.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from embedscope.errors import UserError
from embedscope.server.arrow_responses import arrow_response
from embedscope.server.atlas_data import EXTENSIONS, AtlasData
from embedscope.server.neighbor_search import MAX_K
from embedscope.server.security import (
    QUERY_BODY_BYTES,
    AccessGuard,
    read_body,
    row_number,
    rows_from_bytes,
    rows_from_text,
)

STATIC_DIR = Path(__file__).parent / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
MAX_SEARCH_ROWS = 1000
MAX_QUERY_ROWS = 100_000
MEDIA_TYPES = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv", "json": "application/json",
               "milopyp-coords": "text/plain", "star": "text/plain"}
PLACEHOLDER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>embedscope viewer</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>embedscope viewer</h1>
<p>The server is running, but the viewer's front end is not built. Build it with <code>make setup</code>
(or <code>npm ci &amp;&amp; npm run build</code> in <code>frontend/</code>) and start
<code>embedscope view</code> again.</p>
</body></html>
"""


def create_app(
    atlas_path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    token: str | None = None,
    static_dir: str | os.PathLike[str] | None = None,
) -> FastAPI:
    """The viewer of one Atlas as an ASGI app, opening on map layer `layer` (default: the newest 2D one).

    With a `token`, every /api request must carry it; without, only loopback host names are answered.
    `static_dir` holds the built front end (index.html, assets/); a placeholder page shows when it is absent.
    """
    data = AtlasData(atlas_path, layer)
    app = FastAPI(title="embedscope viewer", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(UserError, _user_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    _add_api(app, data)
    _add_front_end(app, Path(static_dir) if static_dir is not None else STATIC_DIR)
    app.add_middleware(AccessGuard, token=token)
    return app


def _add_api(app: FastAPI, data: AtlasData) -> None:
    @app.get("/api/meta")
    def meta() -> dict[str, Any]:
        return data.current().meta()

    @app.get("/api/points")
    def points(layer: str | None = None) -> Response:
        state = data.current()
        name = state.default_layer if layer is None else layer
        if name not in state.layers:
            raise HTTPException(404, f"no map layer {name!r}; map layers are {', '.join(state.layers)}")
        return arrow_response(state.points(name))

    @app.get("/api/column")
    def column(name: str) -> Response:
        state = data.current()
        if name not in state.columns:
            raise HTTPException(404, f"no column {name!r} to show; /api/meta lists the columns")
        return arrow_response(state.column_stream(name))

    @app.get("/api/items")
    def items(rows: str = "") -> list[dict[str, Any]]:
        state = data.current()
        return state.items(rows_from_text(rows, state.n))

    @app.get("/api/thumb/{kind}/{row}.png")
    def thumb(kind: str, row: str) -> Response:
        state = data.current()
        number = row_number(row, state.n)
        if not state.thumbs.has(kind, number):
            raise HTTPException(404, f"no thumbnail {kind!r} of row {number}")
        return Response(state.thumbs.png(kind, number), media_type="image/png", headers={"Cache-Control": IMMUTABLE})

    @app.get("/api/neighbors/{row}")
    def neighbors(row: str, k: int = 8) -> dict[str, list]:
        state = data.current()
        number = row_number(row, state.n)
        if not 1 <= k <= MAX_K:
            raise HTTPException(400, f"k={k}: ask for 1 to {MAX_K} neighbours")
        rows, distances = state.neighbors.find(number, k)
        return {"rows": rows.tolist(), "distances": distances.tolist()}

    @app.get("/api/search")
    def search(q: str = "", limit: int = 50) -> dict[str, list[int]]:
        if not 1 <= limit <= MAX_SEARCH_ROWS:
            raise HTTPException(400, f"limit={limit}: ask for 1 to {MAX_SEARCH_ROWS} rows")
        return {"rows": data.current().search(q, limit)}

    @app.post("/api/query")
    async def query(request: Request) -> dict[str, Any]:
        where = _condition(await read_body(request, QUERY_BODY_BYTES))
        state = await run_in_threadpool(data.current)
        rows = await run_in_threadpool(state.query, where)
        answer: dict[str, Any] = {"count": len(rows)}
        if len(rows) <= MAX_QUERY_ROWS:
            answer["rows"] = rows.tolist()
        return answer

    @app.post("/api/counts")
    async def counts(request: Request, column: str) -> dict[str, int]:
        state = await run_in_threadpool(data.current)
        if column not in state.columns:
            raise HTTPException(404, f"no column {column!r} to count; /api/meta lists the columns")
        rows = rows_from_bytes(await read_body(request, 4 * state.n), state.n)
        return await run_in_threadpool(state.counts, column, rows)

    @app.post("/api/export")
    async def export(request: Request, fmt: str = Query(alias="format")) -> Response:
        if fmt not in EXTENSIONS:
            raise HTTPException(400, f"unknown export format {fmt!r}; use one of {', '.join(EXTENSIONS)}")
        state = await run_in_threadpool(data.current)
        rows = rows_from_bytes(await read_body(request, 4 * state.n), state.n)
        if not rows.size:
            raise HTTPException(400, "nothing is selected; select at least one item to export")
        written = await run_in_threadpool(state.export, rows, fmt)
        headers = {"Content-Disposition": f'attachment; filename="{written.name}"',
                   "X-Embedscope-Saved": f"{written.parent.name}/{written.name}"}
        return Response(written.read_bytes(), media_type=MEDIA_TYPES[fmt], headers=headers)

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"])
    def unknown(rest: str) -> None:
        raise HTTPException(404, "no such endpoint")


def _add_front_end(app: FastAPI, static_dir: Path) -> None:
    """`/` (index.html or a placeholder), the build's `assets/`, and its other top-level files by exact name."""
    index = static_dir / "index.html"
    files = {path.name for path in static_dir.iterdir() if path.is_file()} if static_dir.is_dir() else set()

    @app.get("/", response_class=HTMLResponse)
    def page() -> Response:
        if index.is_file():
            return FileResponse(index, headers={"Cache-Control": "no-cache"})
        return HTMLResponse(PLACEHOLDER)

    if (static_dir / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=static_dir / "assets"), name="assets")

    @app.get("/{name}")
    def top_level_file(name: str) -> Response:
        if name not in files:
            raise HTTPException(404, "not found")
        return FileResponse(static_dir / name)


def _condition(body: bytes) -> str:
    """The `where` of a query body {"where": "..."}; 400 for anything else."""
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HTTPException(400, f'the body is not JSON ({error.__class__.__name__}); send {{"where": "..."}}') \
            from error
    if not isinstance(request, dict) or not isinstance(request.get("where"), str):
        raise HTTPException(400, 'send {"where": "a SQL condition"} as the body')
    return request["where"]


async def _user_error(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=400)


async def _invalid_request(request: Request, error: Exception) -> JSONResponse:
    first = error.errors()[0] if isinstance(error, RequestValidationError) and error.errors() else {}
    place = ".".join(str(part) for part in first.get("loc", ())[1:]) or "the request"
    return JSONResponse({"detail": f"{place}: {first.get('msg', 'invalid')}"}, status_code=400)
