"""Thumbnails as PNG files, read straight from the Atlas's thumbnail chunks: no separate image server.

Encoding favours speed (zlib level 1): a hover must show its image at once, and the recent ones are kept.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image

from embedscope.atlas import Atlas

CACHED_IMAGES = 4096


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 (height, width) grey or (height, width, 3) RGB image as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class ThumbImages:
    """The PNG of any item's thumbnail of any kind, with the most recent few thousand kept in memory."""

    def __init__(self, atlas: Atlas) -> None:
        self.atlas = atlas
        self.kinds = atlas.thumb_kinds()
        self.png = lru_cache(maxsize=CACHED_IMAGES)(self._png)

    def has(self, kind: str, row: int) -> bool:
        """Whether `kind` is a thumbnail kind of the Atlas with an image for `row`."""
        entry = self.kinds.get(kind)
        return entry is not None and 0 <= row < min(entry["n"], self.atlas.n)

    def _png(self, kind: str, row: int) -> bytes:
        return png_bytes(self.atlas.thumbs(kind, [row])[0])
