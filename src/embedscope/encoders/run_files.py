"""The text files of a training run, in the formats MiLoPYP's logger writes: opts.txt and log.txt.

opts.txt lists every option, sorted, under torch/cudnn versions and the command line; log.txt has
one line per epoch, `<time>: epoch: 7 |loss -0.912345 | ... | `, which MiLoPYP users read to pick a model.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from embedscope.formats.atomic_files import atomic_output

OPTIONS_FILE = "opts.txt"
LOG_FILE = "log.txt"


def write_options(out_dir: Path, options: Mapping[str, Any]) -> Path:
    """Write opts.txt atomically: versions, `sys.argv`, then `  name: value` for each option by name."""
    lines = [
        f"==> torch version: {torch.__version__}",
        f"==> cudnn version: {torch.backends.cudnn.version()}",
        "==> Cmd:",
        str(sys.argv),
        "==> Opt:",
        *(f"  {name}: {value}" for name, value in sorted(options.items())),
    ]
    path = Path(out_dir) / OPTIONS_FILE
    with atomic_output(path) as temporary:
        temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class EpochLog:
    """log.txt, one whole line appended (and flushed) per finished epoch; a fresh run starts it empty."""

    def __init__(self, out_dir: Path, append: bool) -> None:
        self.path = Path(out_dir) / LOG_FILE
        if not append or not self.path.exists():
            self.path.write_text("", encoding="utf-8")

    def write(self, epoch: int, values: Mapping[str, float]) -> None:
        """Append `<YYYY-mm-dd-HH-MM>: epoch: N |name value | ...` with values printed as `{:8f}`."""
        fields = "".join(f"{name} {value:8f} | " for name, value in values.items())
        with self.path.open("a", encoding="utf-8") as log:
            log.write(f"{time.strftime('%Y-%m-%d-%H-%M')}: epoch: {epoch} |{fields}\n")
