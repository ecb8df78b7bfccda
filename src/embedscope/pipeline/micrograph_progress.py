"""The finished part of an embedding run, kept as chunk files in a hidden folder beside the Atlas being made.

Each chunk is written under a temporary name and renamed, so a kill at any moment leaves only whole chunks; the
folder's run.json says which command made them, and a different command (other inputs, model or settings)
starts over instead of mixing results.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedscope.progress import Reporter

RUN_FILE = "run.json"


@dataclass(frozen=True)
class EmbeddedRows:
    """Everything the chunks hold, ordered by row: vectors, thumbnails and original shapes of the kept rows."""

    rows: np.ndarray
    vectors: np.ndarray
    mg: np.ndarray
    ps: np.ndarray
    shapes: np.ndarray


class EmbeddingProgress:
    """Chunks of embedded rows for one Atlas: what is done, what to add, and saving it a chunk at a time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._rows: list[int] = []
        self._skipped: list[int] = []
        self._vectors: list[np.ndarray] = []
        self._thumbs: list[tuple[np.ndarray, np.ndarray]] = []
        self._shapes: list[tuple[int, int]] = []

    @classmethod
    def open(cls, output: Path, settings: dict, model_stamp: list, reporter: Reporter) -> EmbeddingProgress:
        """The progress folder of `output`, kept when an earlier run had the same settings, else emptied."""
        folder = Path(output).with_name(f".{Path(output).name}.embedding")
        wanted = {"settings": settings, "model": model_stamp}
        try:
            same = json.loads((folder / RUN_FILE).read_text(encoding="utf-8")) == wanted
        except (OSError, ValueError):
            same = False
        if not same:
            if folder.exists():
                reporter.note(f"starting over: {folder} holds an earlier run with other inputs or settings")
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            _write_atomically(folder / RUN_FILE, json.dumps(wanted).encode())
        return cls(folder)

    def rows_to_do(self, count: int) -> list[int]:
        """The rows of 0..count-1 that no saved chunk holds, in order."""
        done = set()
        for chunk in self._chunks():
            with np.load(chunk) as saved:
                done.update(saved["rows"].tolist())
                done.update(saved["skipped"].tolist())
        return [row for row in range(count) if row not in done]

    def add(self, rows: list[int], vectors: np.ndarray, thumbs: list[tuple[np.ndarray, np.ndarray]],
            shapes: list[tuple[int, int]]) -> None:
        """Remember embedded rows until the next save."""
        self._rows += rows
        self._vectors.append(np.asarray(vectors, np.float32))
        self._thumbs += thumbs
        self._shapes += shapes

    def skip(self, row: int) -> None:
        """Remember a row that was left out (unreadable or blank), so a resumed run does not try it again."""
        self._skipped.append(row)

    @property
    def unsaved(self) -> int:
        return len(self._rows) + len(self._skipped)

    def save(self) -> None:
        """Write what was added since the last save as one chunk file (atomically), then forget it."""
        if not self.unsaved:
            return
        dim = self._vectors[0].shape[1] if self._vectors else 0
        arrays = {
            "rows": np.asarray(self._rows, np.int64),
            "skipped": np.asarray(self._skipped, np.int64),
            "vectors": np.concatenate(self._vectors) if self._vectors else np.zeros((0, dim), np.float32),
            "mg": _stack([mg for mg, _ in self._thumbs]),
            "ps": _stack([ps for _, ps in self._thumbs]),
            "shapes": np.asarray(self._shapes, np.int64).reshape(-1, 2),
        }
        index = len(self._chunks())
        temporary = self.folder / f".chunk-{index:05d}.npz"
        with open(temporary, "wb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.folder / f"chunk-{index:05d}.npz")
        self.__init__(self.folder)

    def gather(self) -> EmbeddedRows:
        """All saved chunks joined and ordered by row."""
        parts: dict[str, list[np.ndarray]] = {key: [] for key in ("rows", "vectors", "mg", "ps", "shapes")}
        for chunk in self._chunks():
            with np.load(chunk) as saved:
                if len(saved["rows"]):
                    for key in parts:
                        parts[key].append(saved[key])
        if not parts["rows"]:
            empty = np.zeros((0,), np.int64)
            return EmbeddedRows(empty, np.zeros((0, 0), np.float32), empty, empty, empty.reshape(0, 2))
        joined = {key: np.concatenate(values) for key, values in parts.items()}
        order = np.argsort(joined["rows"], kind="stable")
        return EmbeddedRows(**{key: value[order] for key, value in joined.items()})

    def remove(self) -> None:
        """Delete the folder once the Atlas holds everything."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def _chunks(self) -> list[Path]:
        return sorted(self.folder.glob("chunk-*.npz"))


def _stack(images: list[np.ndarray]) -> np.ndarray:
    return np.stack(images) if images else np.zeros((0, 0, 0), np.uint8)


def _write_atomically(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)
