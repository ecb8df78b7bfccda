"""Draws an Atlas description (from `pipeline.describe`) as readable tables in the terminal.

Presentation only: the same description is printed as JSON by `info --json`.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table


def render_description(description: dict[str, Any], console: Console) -> None:
    """Print the summary line, then tables of columns, layers, thumbnails and provenance."""
    metric = description["metric"] or "unspecified"
    console.print(
        f"[bold]{description['path']}[/]  {description['items']:,} items  dim {description['dim']}  "
        f"metric {metric}  {_size(description['size_bytes'])} on disk"
    )
    columns = Table("column", "type", title="columns", title_justify="left")
    for name, kind in description["columns"].items():
        columns.add_row(name, kind)
    console.print(columns)
    if description["layers"]:
        layers = Table("layer", "columns", "parameters", "created", title="layers", title_justify="left")
        for name, layer in description["layers"].items():
            layers.add_row(name, ", ".join(layer["columns"]), json.dumps(layer["params"]), layer["created"])
        console.print(layers)
    if description["thumbs"]:
        thumbs = Table("thumbnails", "image size", "items", title="thumbnails", title_justify="left")
        for kind, entry in description["thumbs"].items():
            thumbs.add_row(kind, " x ".join(map(str, entry["shape"])), f"{entry['n']:,}")
        console.print(thumbs)
    steps = Table("time", "step", "command", title="provenance", title_justify="left")
    for entry in description["provenance"]:
        steps.add_row(entry["time"], entry["step"], entry.get("command") or "(Python API)")
    console.print(steps)


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
