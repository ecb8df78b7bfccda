"""Pipeline: the Atlas-level steps. import, info, map, cluster, quality, thumbs, figures and export here; paint and
the tomogram steps in their modules. Each takes an Atlas (or its path), calls the algorithms, writes with provenance.

The CLI, the server, notebooks and the compatibility commands all call these and repeat none of this glue.
"""

from embedscope.pipeline.assessing import assess_layer
from embedscope.pipeline.clustering import ClusterReport, cluster_atlas
from embedscope.pipeline.describing import describe
from embedscope.pipeline.exporting import ExportReport, export_rows, export_selection, select_rows
from embedscope.pipeline.figuring import FiguresReport, figures_atlas
from embedscope.pipeline.importing import ImportReport, import_vectors
from embedscope.pipeline.mapping import MapReport, map_atlas
from embedscope.pipeline.thumbnailing import ThumbsReport, thumbs_atlas

__all__ = [
    "ClusterReport",
    "ExportReport",
    "FiguresReport",
    "ImportReport",
    "MapReport",
    "ThumbsReport",
    "assess_layer",
    "cluster_atlas",
    "describe",
    "export_rows",
    "export_selection",
    "figures_atlas",
    "import_vectors",
    "map_atlas",
    "select_rows",
    "thumbs_atlas",
]
