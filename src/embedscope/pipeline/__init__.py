"""Atlas-level steps (import, info, and later map, cluster, figures, export).

Each reads arrays from an Atlas, calls the algorithms and writes results with provenance; the CLI,
the server and the compatibility commands all call these and repeat none of this glue.
"""

from embedscope.pipeline.describing import describe
from embedscope.pipeline.importing import ImportReport, import_vectors

__all__ = ["ImportReport", "describe", "import_vectors"]
