"""Atlas-level steps (import, info, and later map, cluster, figures, export).

Each reads arrays from an Atlas, calls the algorithms and writes results with provenance; the CLI,
the server and the compatibility commands all call these and repeat none of this glue.
"""

from embedscope.pipeline.assessing import assess_layer
from embedscope.pipeline.clustering import ClusterReport, cluster_atlas
from embedscope.pipeline.describing import describe
from embedscope.pipeline.importing import ImportReport, import_vectors
from embedscope.pipeline.mapping import MapReport, map_atlas

__all__ = [
    "ClusterReport",
    "ImportReport",
    "MapReport",
    "assess_layer",
    "cluster_atlas",
    "describe",
    "import_vectors",
    "map_atlas",
]
