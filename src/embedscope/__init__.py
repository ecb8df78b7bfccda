"""embedscope: embedding maps of images, micrographs, tomograms, text and existing vectors.

The Atlas is the one data model; the Atlas-level steps below (also the CLI's commands) read it and add to it:

    import embedscope
    embedscope.import_vectors(["vectors.npy"], "run.atlas")   # or Atlas.create(...) and atlas.append(arrays)
    atlas = embedscope.Atlas.open("run.atlas")
    embedscope.map(atlas, "umap")
    embedscope.cluster(atlas, "kmeans", k=8)
    embedscope.draw(atlas, "umap", color="kmeans")            # shows inline in a notebook
    embedscope.export(atlas, clusters=[2], fmt="csv", output="cluster2.csv")

Names are loaded on first use, so `import embedscope` stays instant for workers and the CLI.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC = {
    "Atlas": ("embedscope.atlas", "Atlas"),
    "UserError": ("embedscope.errors", "UserError"),
    "import_vectors": ("embedscope.pipeline", "import_vectors"),
    "map": ("embedscope.pipeline", "map_atlas"),
    "cluster": ("embedscope.pipeline", "cluster_atlas"),
    "draw": ("embedscope.pipeline", "figures_atlas"),
    "export": ("embedscope.pipeline", "export_selection"),
}
__all__ = ["Atlas", "UserError", "__version__", "cluster", "draw", "export", "import_vectors", "map"]

if TYPE_CHECKING:
    from embedscope.atlas import Atlas
    from embedscope.errors import UserError
    from embedscope.pipeline import cluster_atlas as cluster
    from embedscope.pipeline import export_selection as export
    from embedscope.pipeline import figures_atlas as draw
    from embedscope.pipeline import import_vectors
    from embedscope.pipeline import map_atlas as map


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'embedscope' has no attribute {name!r}")
    module, attribute = _PUBLIC[name]
    value = getattr(import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
