"""The text files of a micrograph training run: prismPYP's training_config.yaml and best-epoch notes, our CSV log.

prismPYP users read checkpoints/best_epoch.txt and best_collapse_epoch.txt to pick a model, so their wording is
prismPYP's (epochs counted from 0 there); training_log.csv has one row per finished epoch, counted from 1.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from embedscope.formats.atomic_files import atomic_output

CONFIG_FILE = "training_config.yaml"
LOG_FILE = "training_log.csv"
BEST_EPOCH_FILE = "best_epoch.txt"
BEST_COLLAPSE_FILE = "best_collapse_epoch.txt"
LOG_COLUMNS = ("epoch", "loss", "collapse_level", "output_std", "lr", "seconds")


def write_training_config(out_dir: Path, options: Mapping[str, Any]) -> Path:
    """Write training_config.yaml atomically: every option by name, as prismPYP dumps its arguments."""
    path = Path(out_dir) / CONFIG_FILE
    with atomic_output(path) as temporary:
        temporary.write_text(yaml.safe_dump(dict(options), sort_keys=True), encoding="utf-8")
    return path


def write_best_epoch(folder: Path, epoch: int, loss: float, collapse_level: float) -> None:
    """best_epoch.txt in prismPYP's words; `epoch` counts from 0 as prismPYP's does."""
    _write_note(Path(folder) / BEST_EPOCH_FILE,
                f"Best epoch: {epoch}, loss: {loss}, collapse level: {collapse_level}")


def write_best_collapse_epoch(folder: Path, epoch: int, loss: float, collapse_level: float) -> None:
    """best_collapse_epoch.txt in prismPYP's words; `epoch` counts from 0 as prismPYP's does."""
    _write_note(Path(folder) / BEST_COLLAPSE_FILE,
                f"Best collapse epoch: {epoch}, loss: {loss}, collapse level: {collapse_level}")


class TrainingLog:
    """training_log.csv: a header, then one row appended (and flushed) per finished epoch.

    A fresh run starts the file anew; a resumed one keeps the rows of the epochs its checkpoint holds.
    """

    def __init__(self, out_dir: Path, resumed_epoch: int | None) -> None:
        self.path = Path(out_dir) / LOG_FILE
        kept = self._rows_up_to(resumed_epoch) if resumed_epoch is not None else []
        with atomic_output(self.path) as temporary, temporary.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(LOG_COLUMNS)
            writer.writerows(kept)

    def write(self, epoch: int, loss: float, collapse_level: float, output_std: float, lr: float,
              seconds: float) -> None:
        """Append one epoch's row."""
        with self.path.open("a", newline="", encoding="utf-8") as file:
            csv.writer(file).writerow([epoch, f"{loss:.6f}", f"{collapse_level:.6f}", f"{output_std:.6f}",
                                       f"{lr:.6g}", f"{seconds:.2f}"])

    def _rows_up_to(self, epoch: int) -> list[list[str]]:
        """The rows already logged for epochs 1..epoch (a crash may leave a row its checkpoint lacks)."""
        if not self.path.is_file():
            return []
        with self.path.open(newline="", encoding="utf-8") as file:
            rows = list(csv.reader(file))[1:]
        return [row for row in rows if row and row[0].isdigit() and int(row[0]) <= epoch]


def _write_note(path: Path, text: str) -> None:
    with atomic_output(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
