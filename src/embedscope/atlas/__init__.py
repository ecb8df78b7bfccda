"""The store: an Atlas is a folder of Parquet items, derived layers, cached graphs and thumbnails, and a manifest.

Everything above reads and adds to it; each write commits whole (new files, then one manifest rename) or not at all.
"""

from embedscope.atlas.store import Atlas, as_atlas, check_layer_name

__all__ = ["Atlas", "as_atlas", "check_layer_name"]
