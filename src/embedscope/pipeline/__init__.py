"""Atlas-level steps (import, info, map, cluster, quality, thumbs, figures, and later export).

Each reads arrays from an Atlas, calls the algorithms and writes results with provenance; the CLI,
the server and the compatibility commands all call these and repeat none of this glue.
"""

from embedscope.pipeline.assessing import assess_layer
from embedscope.pipeline.clustering import ClusterReport, cluster_atlas
from embedscope.pipeline.describing import describe
from embedscope.pipeline.figuring import FiguresReport, figures_atlas
from embedscope.pipeline.importing import ImportReport, import_vectors
from embedscope.pipeline.mapping import MapReport, map_atlas
from embedscope.pipeline.thumbnailing import ThumbsReport, thumbs_atlas

__all__ = [
    "ClusterReport",
    "FiguresReport",
    "ImportReport",
    "MapReport",
    "ThumbsReport",
    "assess_layer",
    "cluster_atlas",
    "describe",
    "figures_atlas",
    "import_vectors",
    "map_atlas",
    "thumbs_atlas",
]
