"""`embedscope view`: serve an Atlas's viewer with uvicorn, print its URL and open a browser, until Ctrl-C.

The socket is bound before uvicorn starts, so port 0 gives a free port whose number is known; a host
other than loopback is never served without a token.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import threading
import time
import webbrowser
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from embedscope.errors import ParameterError
from embedscope.formats.file_checks import reason
from embedscope.server.app import create_app
from embedscope.server.security import TOKEN_PARAMETER, is_loopback

STARTUP_SECONDS = 30.0
SHUTDOWN_SECONDS = 2


def serve(
    atlas_path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    open_browser: bool = True,
    token: str | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the viewer of an Atlas until Ctrl-C; `ready` gets the URL (printed when not given) once it answers.

    Port 0 picks a free port. A non-loopback host without a token gets a generated one, in the URL.
    """
    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(24)
    app = create_app(atlas_path, layer=layer, token=token)
    listening = bind_socket(host, port)
    bound_port = listening.getsockname()[1]
    url = viewer_url(socket.gethostname() if _unspecified(host) else host, bound_port, token)
    browser_url = viewer_url("127.0.0.1", bound_port, token) if _unspecified(host) else url
    server = _server(app)
    announce = threading.Thread(
        target=_announce, args=(server, url, ready or _print_url, browser_url if open_browser else None), daemon=True
    )
    announce.start()
    try:
        server.run(sockets=[listening])
    except KeyboardInterrupt:
        pass
    finally:
        listening.close()


@contextmanager
def running_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` from a background thread for the block and yield its base URL (for tests and benchmarks)."""
    listening = bind_socket(host, port)
    server = _server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    try:
        if not _wait_until_started(server, thread.is_alive):
            raise RuntimeError("the viewer's server did not start")
        yield viewer_url(host, listening.getsockname()[1], None).rstrip("/")
    finally:
        server.should_exit = True
        thread.join(STARTUP_SECONDS)
        listening.close()


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (port 0: a free one), or a one-line error naming --host / --port."""
    if not 0 <= port <= 65535:
        raise ParameterError(f"--port {port} is not a port number; give 1 to 65535, or 0 for a free port")
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listening = socket.socket(family, kind, protocol)
    except OSError as error:
        raise ParameterError(f"cannot listen on --host {host!r} ({reason(error)}); give an address of this "
                             "machine, such as 127.0.0.1") from error
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
    except OSError as error:
        listening.close()
        raise ParameterError(f"cannot listen on {host} port {port} ({reason(error)}); choose another --port, "
                             "or 0 for a free one") from error
    return listening


def viewer_url(host: str, port: int, token: str | None) -> str:
    """The viewer's address, with `?token=` when it needs one."""
    host = host.strip("[]")
    shown = f"[{host}]" if ":" in host else host
    query = f"?{TOKEN_PARAMETER}={token}" if token else ""
    return f"http://{shown}:{port}/{query}"


def _server(app: FastAPI) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=SHUTDOWN_SECONDS)
    return uvicorn.Server(config)


def _announce(server: uvicorn.Server, url: str, ready: Callable[[str], None], browser_url: str | None) -> None:
    """Once the server answers: hand over the URL and open a browser on it."""
    if not _wait_until_started(server, lambda: not server.should_exit):
        return
    ready(url)
    if browser_url is not None:
        webbrowser.open(browser_url)


def _wait_until_started(server: uvicorn.Server, alive: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        if not alive() or time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _print_url(url: str) -> None:
    print(f"embedscope viewer: {url}  (Ctrl-C to stop)", flush=True)


def _unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False
