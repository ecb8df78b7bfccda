"""The interactive viewer's server: `embedscope view` serves an Atlas to the browser, or exports a static site.

`create_app` builds the FastAPI app, `serve` runs it with uvicorn, `export_static_site` writes it to a folder.
"""

from embedscope.server.app import create_app
from embedscope.server.serve import serve
from embedscope.server.static_site import export_static_site

__all__ = ["create_app", "export_static_site", "serve"]
