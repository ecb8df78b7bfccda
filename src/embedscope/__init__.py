"""embedscope: embedding maps of images, micrographs, tomograms, text and existing vectors.

The Atlas is the one data model; every command reads it and adds to it.
"""

from embedscope.atlas import Atlas
from embedscope.errors import UserError

__version__ = "0.1.0"
__all__ = ["Atlas", "UserError", "__version__"]
