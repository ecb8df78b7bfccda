"""docs/python.md runs as written: its code blocks, in order, in one namespace, as a notebook would run them, and
each cell's last value shows the way a notebook shows it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

PAGE = Path(__file__).parents[1] / "docs" / "python.md"


def code_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def run_cell(source: str, namespace: dict) -> object:
    """Run a cell and return what a notebook shows of it: its last line's value, as HTML when it has that form."""
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<docs/python.md>", "exec"), namespace)
    value = eval(compile(ast.Expression(last.value), "<docs/python.md>", "eval"), namespace) if last else None
    return Shown(value._repr_html_()) if hasattr(value, "_repr_html_") else value


class Shown(str):
    """The HTML a notebook displayed for a cell."""


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list[object], Path]:
    folder = tmp_path_factory.mktemp("notebook")
    namespace: dict = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        shown = [run_cell(block, namespace) for block in code_blocks(PAGE.read_text())]
    return namespace, shown, folder


def test_the_page_has_the_whole_session():
    blocks = code_blocks(PAGE.read_text())
    assert len(blocks) >= 8
    text = "\n".join(blocks)
    for name in ("embedscope.map(", "embedscope.cluster(", "embedscope.draw(", "embedscope.export(",
                 "embedscope.import_vectors(", "UMAP(", "TSNE(", "PCA(", "PHATE(", "KMeans(", "Spectral(",
                 "HDBSCAN(", "Leiden(", "OverCluster(", "trustworthiness(", "knn_recall("):
        assert name in text, f"docs/python.md should show {name}"


def test_the_atlas_holds_what_the_session_made(session):
    namespace, _, folder = session
    atlas = namespace["embedscope"].Atlas.open(folder / "cells.atlas")
    assert atlas.n == 2000 and set(atlas.layers()) >= {"umap", "kmeans"}
    steps = [entry["step"] for entry in atlas.provenance]
    assert steps.count("map") == 1 and steps.count("cluster") == 1 and "figures" in steps
    assert namespace["mapped"].scores["trustworthiness"] > 0.9
    assert namespace["clustered"].n_clusters == 6
    assert namespace["imported"].added == 2000


def test_the_figure_shows_inline(session):
    _, shown, folder = session
    inline = [value for value in shown if isinstance(value, Shown)]
    assert inline and all('<img src="data:image/' in html for html in inline)
    assert list((folder / "figures").glob("*.webp"))
    assert (folder / "umap-by-label.png").stat().st_size > 1000


def test_the_export_is_the_asked_clusters(session):
    namespace, _, folder = session
    exported = (folder / "clusters-0-1.csv").read_text().splitlines()
    clusters = namespace["embedscope"].Atlas.open(folder / "cells.atlas").layer("kmeans").column("cluster")
    assert len(exported) - 1 == namespace["exported"].count == int(np.isin(clusters.to_numpy(), [0, 1]).sum())


def test_the_estimators_recover_the_clusters(session):
    namespace, shown, _ = session
    scores = next(value for value in shown if isinstance(value, dict) and "overcluster" in value)
    assert scores["kmeans"] > 0.8 and scores["spectral"] > 0.8 and scores["overcluster"] > 0.5
    trust = next(value for value in shown if isinstance(value, dict) and "phate" in value)
    assert trust["umap"] > 0.9 and trust["tsne"] > 0.9
    assert namespace["umap_xy"].shape == (2000, 2) and namespace["umap_xy"].dtype == np.float32
