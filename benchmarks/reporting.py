"""How every benchmark hands over its results: the Markdown rows printed, and appended to `--out` when given."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def report(rows: Sequence[str], out: Path | None) -> None:
    """Print the rows as one text, and append it (after a blank line) to `out` for benchmarks/RESULTS.md."""
    text = "\n".join(rows)
    print(text)
    if out:
        with out.open("a") as file:
            file.write("\n" + text + "\n")
