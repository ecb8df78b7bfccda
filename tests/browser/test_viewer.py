"""The viewer in a real browser: chromium (SwiftShader WebGL) against the real server on 127.0.0.1.

Each test drives the page the way a user does (mouse, dropdowns, buttons) where that is deterministic,
and through `window.embedscope` where a gesture would not be (a lasso polygon, a frame time).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import starfile
from PIL import Image

from browser.browser_pages import CLUSTERS, open_viewer, write_sequence_atlas

NEIGHBORS = 8
EVERYWHERE = [[-1e6, -1e6], [1e6, -1e6], [1e6, 1e6], [-1e6, 1e6]]


def drawn_pixels(page) -> int:
    """How many pixels of the map canvas differ clearly from its white background."""
    image = np.asarray(Image.open(io.BytesIO(page.locator("#canvas").screenshot())).convert("RGB"), dtype=np.int16)
    return int((np.abs(image - 255).sum(axis=2) > 60).sum())


def inside_polygon(x: float, y: float, polygon: list[list[float]]) -> bool:
    """Even-odd rule, the same arithmetic as the viewer's lasso."""
    inside = False
    j = len(polygon) - 1
    for i in range(len(polygon)):
        (xi, yi), (xj, yj) = polygon[i], polygon[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def most_isolated_row(layout: np.ndarray) -> int:
    """The row whose nearest other point on the map is farthest away (so the mouse finds only it)."""
    distances = np.linalg.norm(layout[:, None, :] - layout[None, :, :], axis=2)
    np.fill_diagonal(distances, np.inf)
    return int(np.argmax(distances.min(axis=1)))


def download(page, selector: str) -> Path:
    """Click an export button and return the path of the file the browser downloaded."""
    with page.expect_download() as info:
        page.click(selector)
    return Path(info.value.path())


def test_the_map_draws_and_hover_shows_the_thumbnail(browser, served, cluster_atlas):
    _, truth = cluster_atlas
    page = open_viewer(browser, served)
    assert drawn_pixels(page) > 500
    assert page.locator("#legend li").count() == CLUSTERS  # coloured by the clustering from the start

    row = most_isolated_row(truth["layout"])
    x, y = page.evaluate("row => embedscope.pointScreenPosition(row)", row)
    page.mouse.move(x, y)
    page.wait_for_function(
        "row => { const t = document.querySelector('#tooltip'); const img = t.querySelector('img');"
        " return !t.hidden && t.dataset.row === String(row) && img && img.complete && img.naturalWidth > 0; }",
        arg=row, timeout=10_000,
    )
    assert truth["ids"][row] in page.inner_text("#tooltip")
    page.close()


def test_lasso_then_export_gives_exactly_the_items_inside(browser, served, cluster_atlas):
    atlas_path, truth = cluster_atlas
    layout = truth["layout"].astype(np.float64)
    low, high = np.percentile(layout, 15, axis=0), np.percentile(layout, 85, axis=0)
    polygon = [[low[0], low[1]], [high[0], low[1] + 0.3 * (high[1] - low[1])], [high[0], high[1]],
               [0.5 * (low[0] + high[0]), 0.6 * (low[1] + high[1]) - 0.1 * low[1]], [low[0], high[1]]]
    expected = [row for row, (x, y) in enumerate(layout) if inside_polygon(x, y, polygon)]
    assert 0 < len(expected) < len(layout)

    page = open_viewer(browser, served)
    page.evaluate("polygon => embedscope.lasso(polygon)", polygon)
    assert page.evaluate("embedscope.selected()") == expected
    assert page.inner_text("#selection-count") == f"{len(expected)} items"
    assert page.locator("#selection-gallery figure").count() == min(60, len(expected))

    with download(page, "#export button[data-export=csv]").open(newline="") as file:
        exported = [line["id"] for line in csv.DictReader(file)]
    assert sorted(exported) == sorted(truth["ids"][expected])
    coords = download(page, "#export button[data-export=milopyp-coords]").read_text().splitlines()
    assert coords[0].split("\t") == ["image_name", "x_coord", "y_coord", "z_coord"]
    assert len(coords) == len(expected) + 1
    saved = sorted(path.name for path in (atlas_path / "selections").iterdir())
    assert [name.endswith(f"-{len(expected)}.csv") for name in saved].count(True) == 1
    assert [name.endswith(f"-{len(expected)}.txt") for name in saved].count(True) == 1
    page.close()


def test_colour_by_changes_the_legend_and_its_toggles_hide_points(browser, served, cluster_atlas):
    page = open_viewer(browser, served)
    page.select_option("#color-by", "score")
    page.wait_for_selector("#legend .ramp")
    assert page.inner_text("#legend h3") == "score"
    assert page.locator("#legend li").count() == 0

    page.select_option("#color-by", "tomogram")
    page.wait_for_function("document.querySelector('#legend h3')?.textContent === 'tomogram'")
    assert page.locator("#legend li .name").all_inner_texts() == ["tomo_a", "tomo_b"]
    page.click("#legend li[data-code='0']")  # hide tomo_a
    page.evaluate("polygon => embedscope.lasso(polygon)", EVERYWHERE)
    selected = page.evaluate("embedscope.selected()")
    assert selected == [row for row in range(len(cluster_atlas[1]["ids"])) if row % 2 == 1]  # tomo_b only
    page.close()


def test_clicking_an_item_lists_its_true_nearest_neighbours(browser, served, cluster_atlas):
    _, truth = cluster_atlas
    vectors = truth["vectors"].astype(np.float64)
    row = most_isolated_row(truth["layout"])
    distances = np.linalg.norm(vectors - vectors[row], axis=1)
    distances[row] = np.inf
    nearest = np.argsort(distances)[:NEIGHBORS].tolist()

    page = open_viewer(browser, served)
    x, y = page.evaluate("row => embedscope.pointScreenPosition(row)", row)
    page.mouse.click(x, y)
    page.wait_for_selector(f"#neighbors[data-row='{row}'] li", timeout=10_000)
    listed = [int(value) for value in page.locator("#neighbors-list li").evaluate_all(
        "cells => cells.map(cell => cell.dataset.row)")]
    assert listed == nearest
    assert page.inner_text("#neighbors-of") == truth["ids"][row]
    assert page.evaluate("embedscope.selected()") == sorted([row, *nearest])
    page.close()


def test_a_3d_layer_turns_when_dragged(browser, served):
    page = open_viewer(browser, served)
    page.select_option("#layer", "pca3d")
    page.wait_for_function("document.querySelector('#map').classList.contains('orbit')")
    page.evaluate("embedscope.setLayer('pca3d')")  # resolves once the layer is drawn
    before = page.evaluate("embedscope.pointScreenPosition(0)")
    box = page.locator("#canvas").bounding_box()
    page.mouse.move(box["x"] + 300, box["y"] + 300)
    page.mouse.down()
    page.mouse.move(box["x"] + 420, box["y"] + 340, steps=6)
    page.mouse.up()
    page.wait_for_function("before => { const p = embedscope.pointScreenPosition(0);"
                           " return Math.hypot(p[0] - before[0], p[1] - before[1]) > 3; }", arg=before)
    assert drawn_pixels(page) > 500
    page.close()


def test_the_time_slider_moves_points_between_frames_and_groups_toggle(browser, tmp_path):
    from embedscope.server import create_app
    from embedscope.server.serve import running_in_thread

    truth = write_sequence_atlas(tmp_path / "sequence.atlas")
    first = 0
    same_in_next = int(np.flatnonzero((truth["ids"] == truth["ids"][first]) & (truth["frames"] == "t1"))[0])
    with running_in_thread(create_app(tmp_path / "sequence.atlas")) as url:
        page = open_viewer(browser, url)
        assert not page.locator("#time").is_hidden()
        position = "row => embedscope.pointScreenPosition(row)"
        page.evaluate("embedscope.setFrame(0)")
        start = np.array(page.evaluate(position, first))
        page.evaluate("embedscope.setFrame(1)")
        end = np.array(page.evaluate(position, same_in_next))
        page.evaluate("embedscope.setFrame(0.5)")
        halfway = np.array(page.evaluate(position, first))
        assert np.linalg.norm(end - start) > 20
        assert np.linalg.norm(halfway - (start + end) / 2) < 1.5

        page.fill("#frame", "2")  # the slider itself
        page.wait_for_function("document.querySelector('#frame-label').textContent === 't2'")
        page.evaluate("polygon => embedscope.lasso(polygon)", EVERYWHERE)
        shown = page.evaluate("embedscope.selected()")
        assert {truth["frames"][row] for row in shown} == {"t2"}
        assert len(shown) == int((truth["frames"] == "t2").sum())

        page.uncheck("#groups input[data-group=odd]")
        page.evaluate("polygon => embedscope.lasso(polygon)", EVERYWHERE)
        shown = page.evaluate("embedscope.selected()")
        assert shown == np.flatnonzero((truth["frames"] == "t2") & (truth["groups"] == "even")).tolist()
        page.close()


def test_the_static_export_opens_from_file_and_exports_in_the_browser(browser, cluster_atlas, tmp_path):
    from embedscope.server import export_static_site

    atlas_path, truth = cluster_atlas
    site = export_static_site(atlas_path, tmp_path / "site")
    page = open_viewer(browser, (site / "index.html").as_uri())
    assert "static export" in page.inner_text("#status")
    assert drawn_pixels(page) > 500

    row = most_isolated_row(truth["layout"])
    x, y = page.evaluate("row => embedscope.pointScreenPosition(row)", row)
    page.mouse.move(x, y)
    page.wait_for_function("() => { const img = document.querySelector('#tooltip img');"
                           " return img && img.complete && img.naturalWidth > 0; }", timeout=10_000)

    page.evaluate("rows => embedscope.selectRows(rows)", [3, 5, 8])
    with download(page, "#export button[data-export=csv]").open(newline="") as file:
        assert [line["id"] for line in csv.DictReader(file)] == list(truth["ids"][[3, 5, 8]])
    star = starfile.read(download(page, "#export button[data-export=star]"), always_dict=True)
    assert set(star) == {"optics", "particles"}  # RELION 3.1+ layout, as `embedscope export` writes
    assert len(star["particles"]) == 3 and star["particles"]["rlnTomoName"].str.startswith("tomo_").all()
    page.close()


def test_without_webgl_the_page_says_so_instead_of_drawing_nothing(browser, served):
    page = browser.new_page()
    page.add_init_script("HTMLCanvasElement.prototype.getContext = function () { return null; };")
    page.goto(served)
    page.wait_for_function("document.body.dataset.ready === 'error'")
    assert page.locator("#no-webgl").is_visible()
    assert "WebGL" in page.inner_text("#no-webgl")
    page.close()


def test_with_a_token_every_request_carries_it(browser, cluster_atlas):
    from embedscope.server import create_app
    from embedscope.server.serve import running_in_thread

    with running_in_thread(create_app(cluster_atlas[0], token="s3cret")) as url:
        refused = browser.new_page()
        refused.goto(url)
        refused.wait_for_function("document.body.dataset.ready === 'error'")
        refused.close()

        page = open_viewer(browser, f"{url}/?token=s3cret")
        page.evaluate("rows => embedscope.selectRows(rows)", [1, 2])
        page.wait_for_function("() => { const images = [...document.querySelectorAll('#selection-gallery img')];"
                               " return images.length === 2 && images.every(i => i.complete && i.naturalWidth > 0); }")
        page.close()
