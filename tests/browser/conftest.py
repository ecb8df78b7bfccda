"""Browser fixtures: Debian's chromium through Playwright, and the real viewer server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from browser.browser_pages import BUILT_VIEWER, CHROMIUM, CHROMIUM_ARGS, write_cluster_atlas


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's chromium through Playwright, or a skip when it or the built viewer is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium for the browser tests)")
    if not BUILT_VIEWER.exists():
        pytest.skip(f"the viewer is not built ({BUILT_VIEWER} is missing): run `npm run build` in frontend/")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def cluster_atlas(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path_factory.mktemp("viewer") / "clusters.atlas"
    return path, write_cluster_atlas(path)


@pytest.fixture(scope="module")
def served(cluster_atlas: tuple[Path, dict[str, np.ndarray]]) -> Iterator[str]:
    """The base URL of the real viewer server on the cluster Atlas."""
    from embedscope.server import create_app
    from embedscope.server.serve import running_in_thread

    with running_in_thread(create_app(cluster_atlas[0])) as url:
        yield url
