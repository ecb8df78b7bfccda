"""Who may use the viewer's API and what they may send: a token, loopback names, same-origin posts, bounded input.

Without a token the server answers only requests addressed to a loopback name, so a web page cannot
reach it by DNS rebinding; with one, every /api request must carry it. Posts from another web page are
refused, and row lists and bodies are checked before anything reads the Atlas.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from fastapi import HTTPException, Request
from starlette.datastructures import Headers
from starlette.responses import JSONResponse

TOKEN_HEADER = "X-Embedscope-Token"
TOKEN_PARAMETER = "token"
MAX_ITEM_ROWS = 1000
QUERY_BODY_BYTES = 64 * 1024
ROW_NUMBER = re.compile(r"[0-9]{1,10}")
BYTE_COUNT = re.compile(r"[0-9]{1,18}")


def is_loopback(host: str) -> bool:
    """Whether a host name or address only reaches this machine (localhost, 127.x.x.x, ::1)."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class AccessGuard:
    """ASGI middleware that refuses requests before they reach a route: wrong host, foreign post, missing token."""

    def __init__(self, app: Any, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                status, message = refusal
                await JSONResponse({"detail": message}, status_code=status)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: dict[str, Any]) -> tuple[int, str] | None:
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if self.token is None and not is_loopback(urlsplit(f"//{host}").hostname or ""):
            return 403, "this viewer answers on localhost only; start it with a token to reach it from elsewhere"
        origin = headers.get("origin")
        if scope["method"] == "POST" and origin is not None and urlsplit(origin).netloc != host:
            return 403, "requests sent by another web page are refused"
        if self.token is not None and scope["path"].startswith("/api"):
            given = headers.get(TOKEN_HEADER)
            if given is None:
                given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(TOKEN_PARAMETER, [""])[0]
            if not secrets.compare_digest(given.encode(), self.token.encode()):
                return 401, "this viewer needs its token: open the URL it printed (with ?token=...)"
        return None


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to pass `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not BYTE_COUNT.fullmatch(declared):
            raise HTTPException(400, "the Content-Length header is not a number")
        if int(declared) > limit:
            raise HTTPException(413, f"the request body holds {int(declared):,} bytes; at most {limit:,} are allowed")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"the request body passes {limit:,} bytes, the most allowed")
    return bytes(body)


def rows_from_bytes(body: bytes, n: int) -> np.ndarray:
    """Little-endian uint32 row numbers as sorted distinct int64 rows; 400 unless each is below n."""
    if len(body) % 4:
        raise HTTPException(400, f"the body holds {len(body)} bytes; send row numbers as little-endian uint32")
    rows = np.frombuffer(body, dtype="<u4")
    if rows.size and int(rows.max()) >= n:
        raise HTTPException(400, f"row {int(rows.max())} is not in the Atlas; rows are 0 to {n - 1}")
    return np.unique(rows).astype(np.int64)


def rows_from_text(text: str, n: int) -> list[int]:
    """Comma-separated row numbers ("1,2,3") in the order given; 400 for anything else or over 1000 rows."""
    parts = [part.strip() for part in text.split(",")] if text.strip() else []
    if len(parts) > MAX_ITEM_ROWS:
        raise HTTPException(400, f"{len(parts)} rows asked for; ask for at most {MAX_ITEM_ROWS} at a time")
    rows = []
    for part in parts:
        if not ROW_NUMBER.fullmatch(part) or int(part) >= n:
            raise HTTPException(400, f"{part[:20]!r} is not a row of the Atlas; rows are 0 to {n - 1}")
        rows.append(int(part))
    return rows


def row_number(text: str, n: int) -> int:
    """A row number from a URL path; 404 when it is not one of the Atlas's rows."""
    if not ROW_NUMBER.fullmatch(text) or int(text) >= n:
        raise HTTPException(404, f"no item {text[:20]!r}; rows are 0 to {n - 1}")
    return int(text)
