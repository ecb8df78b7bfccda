"""Viewer speed in a real headless chromium: first render, bytes per point, lasso export, hover latency.

    .venv/bin/python benchmarks/viewer.py --sizes 100000,1000000,5000000 [--out benchmarks/RESULTS.md]

Each size gets its own Atlas (8-d vectors, a 2D map layer of 12 curved clusters, a cluster layer, and 16 px
thumbnails up to 1M items), served by the real uvicorn on 127.0.0.1 and opened by Playwright in Debian's chromium
with SwiftShader WebGL. Targets (issue 6): 1M rendered in under 3 s, 5M without a crash, 500k exported in under 2 s.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from reporting import report

from embedscope.atlas import Atlas

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
THUMBS_UP_TO = 1_000_000
BATCH = 1_000_000


def build_atlas(path: Path, n: int, seed: int = 0) -> None:
    """An Atlas of n items whose map has 12 curved clusters; thumbnails when n is at most THUMBS_UP_TO."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, 12, n).astype(np.int32)
    angle = rng.uniform(0, np.pi, n) + cluster
    radius = 3 + cluster % 4 + rng.normal(0, 0.15, n)
    xy = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)]).astype(np.float32)
    with Atlas.building(path, 8, metric="euclidean") as atlas:
        for start in range(0, n, BATCH):
            stop = min(n, start + BATCH)
            atlas.append(rng.normal(size=(stop - start, 8)).astype(np.float32))
        atlas.add_layer("umap", {"x": xy[:, 0], "y": xy[:, 1]}, {"method": "synthetic"})
        atlas.add_layer("kmeans", {"cluster": cluster}, {"method": "synthetic"})
        if n <= THUMBS_UP_TO:
            atlas.add_thumbs("patch", (rng.integers(0, 255, (min(BATCH, n - s), 16, 16), dtype=np.uint8)
                                       for s in range(0, n, BATCH)))


def serve_in_thread(atlas_path: Path) -> tuple[str, object]:
    """A real uvicorn on 127.0.0.1 with a free port; returns its URL and the server to stop."""
    import uvicorn

    from embedscope.server.app import create_app

    config = uvicorn.Config(create_app(atlas_path), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}/", server


def measure(url: str, n: int, browser) -> dict:
    """Render, transfer, lasso-export and hover timings of one page load."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    transferred = [0]
    page.on("response", lambda response: transferred.__setitem__(0, transferred[0] + _size(response)))
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_function("document.body.dataset.ready === '1'", timeout=120_000)
    result = {"render_s": time.perf_counter() - started, "bytes_per_point": transferred[0] / n}
    if n <= THUMBS_UP_TO:
        half = [[-20, -20], [0, -20], [0, 20], [-20, 20]]  # the left half of the map
        started = time.perf_counter()
        page.evaluate("polygon => window.embedscope.lasso(polygon)", half)
        count = page.evaluate("() => window.embedscope.selected().length")
        with page.expect_download(timeout=120_000) as download:
            page.click("[data-export='csv']")
        download.value.path()
        result.update(selected=count, export_s=time.perf_counter() - started)
        x, y = page.evaluate("() => window.embedscope.pointScreenPosition(0)")
        started = time.perf_counter()
        page.mouse.move(x, y)
        page.wait_for_function("() => { const img = document.querySelector('#tooltip img');"
                               " return img && img.complete && img.naturalWidth > 0; }", timeout=30_000)
        result["hover_ms"] = 1000 * (time.perf_counter() - started)
    page.close()
    return result


def _size(response) -> int:
    """Bytes of a response's body as received (Playwright's own count; works for streamed bodies too)."""
    try:
        return int(response.request.sizes()["responseBodySize"])
    except Exception:  # redirects and aborted requests have no size
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000,5000000")
    parser.add_argument("--out", type=Path, help="append the table to this Markdown file")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    rows = ["| points | first render (s) | bytes per point | lasso + CSV export (s) | selected "
            "| hover -> thumbnail (ms) |", "|---|---|---|---|---|---|"]
    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="viewer-bench-") as folder:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for n in (int(size) for size in args.sizes.split(",")):
            path = Path(folder) / f"bench-{n}.atlas"
            build_atlas(path, n)
            url, server = serve_in_thread(path)
            try:
                found = measure(url, n, browser)
            except Exception as error:  # a crash or time-out is a result too
                found = {"error": f"{type(error).__name__}: {str(error).splitlines()[0]}"}
            finally:
                server.should_exit = True
            rows.append(_row(n, found))
            print(rows[-1], flush=True)
        browser.close()
    report(rows, args.out)


def _row(n: int, found: dict) -> str:
    if "error" in found:
        return f"| {n:,} | failed: {found['error']} | | | | |"
    export = f"{found['export_s']:.2f}" if "export_s" in found else "-"
    hover = f"{found['hover_ms']:.0f}" if "hover_ms" in found else "-"
    selected = f"{found['selected']:,}" if "selected" in found else "-"
    return (f"| {n:,} | {found['render_s']:.2f} | {found['bytes_per_point']:.1f} | {export} | {selected} | "
            f"{hover} |")


if __name__ == "__main__":
    main()
