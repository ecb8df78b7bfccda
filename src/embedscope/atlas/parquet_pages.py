"""Reads a plain, uncompressed float32 list column straight from its Parquet data pages.

Arrow's reader decodes repetition levels value by value and allocates a second copy of the data;
for the vector column that costs 3x a `numpy.load`. Here each page's values are read with one
`readinto` into the caller's array. Anything else (compression, dictionaries, other encodings,
nulls) returns False and the caller falls back to Arrow, so files written by other tools still read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

DATA_PAGE, DICTIONARY_PAGE, DATA_PAGE_V2 = 0, 2, 3
PLAIN, RLE = 0, 3
FLOAT_BYTES = 4
HEADER_PEEK, LARGE_HEADER_PEEK = 256, 1 << 20


def read_float_column(
    parquet: pq.ParquetFile, path: Path, column: int, out: np.ndarray, groups: list[int] | None = None
) -> bool:
    """Fill `out` (C-contiguous float32) with leaf column `column` of the row groups `groups`
    (default all), in order; return False, with `out` partly written, where this is not possible."""
    metadata = parquet.metadata
    schema = parquet.schema.column(column)
    if schema.physical_type != "FLOAT" or not out.flags.c_contiguous or out.dtype != np.float32:
        return False
    groups = range(metadata.num_row_groups) if groups is None else groups
    chunks = [metadata.row_group(group).column(column) for group in groups]
    if any(not _plain(chunk) for chunk in chunks) or sum(chunk.num_values for chunk in chunks) != out.size:
        return False
    target = memoryview(out.reshape(-1)).cast("B")
    position = 0
    with open(path, "rb", buffering=0) as handle:
        for chunk in chunks:
            read = _read_chunk(handle, chunk.data_page_offset, chunk.total_compressed_size, schema, target[position:])
            if read != chunk.num_values * FLOAT_BYTES:
                return False
            position += read
    return True


def _plain(chunk: pq.ColumnChunkMetaData) -> bool:
    return (
        chunk.compression == "UNCOMPRESSED"
        and not chunk.has_dictionary_page
        and set(chunk.encodings) <= {"PLAIN", "RLE", "BIT_PACKED"}
    )


def _read_chunk(handle, offset: int, size: int, schema: pq.ColumnSchema, target: memoryview) -> int:
    """Copy the values of every data page of one column chunk into `target`; bytes copied or -1."""
    end, written = offset + size, 0
    while offset < end:
        header, header_size = _page_header(handle, offset)
        if header is None:
            return -1
        body_start = offset + header_size
        body_size = header["compressed_page_size"]
        values = _values_range(handle, header, body_start, body_size, schema)
        if values is None:
            return -1
        start, length = values
        if written + length > len(target):
            return -1
        handle.seek(start)
        if handle.readinto(target[written : written + length]) != length:
            return -1
        written += length
        offset = body_start + body_size
    return written


def _values_range(handle, header: dict, start: int, size: int, schema: pq.ColumnSchema) -> tuple[int, int] | None:
    """Where a page's PLAIN values lie, skipping its repetition and definition levels."""
    kind = header["type"]
    if kind == DATA_PAGE_V2:
        page = header.get("data_page_header_v2", {})
        if page.get("encoding") != PLAIN or page.get("num_nulls", 0) or page.get("is_compressed", True) is not False:
            return None
        levels = page["repetition_levels_byte_length"] + page["definition_levels_byte_length"]
        return start + levels, size - levels
    page = header.get("data_page_header", {})
    levels = {page.get("repetition_level_encoding"), page.get("definition_level_encoding")}
    if kind != DATA_PAGE or page.get("encoding") != PLAIN or levels != {RLE}:
        return None
    skip = 0
    for present in (schema.max_repetition_level > 0, schema.max_definition_level > 0):
        if present:
            handle.seek(start + skip)
            skip += 4 + int.from_bytes(handle.read(4), "little")
    length = size - skip
    if length != page["num_values"] * FLOAT_BYTES:
        return None  # nulls, or values of another width
    return start + skip, length


def _page_header(handle, offset: int) -> tuple[dict | None, int]:
    """Decode the Thrift compact-protocol PageHeader at `offset`: its fields and size in bytes."""
    for peek in (HEADER_PEEK, LARGE_HEADER_PEEK):
        handle.seek(offset)
        reader = _Compact(handle.read(peek))
        try:
            return reader.struct(_PAGE_HEADER), reader.position
        except (IndexError, ValueError):
            continue
    return None, 0


_DATA_PAGE_HEADER = {1: "num_values", 2: "encoding", 3: "definition_level_encoding", 4: "repetition_level_encoding"}
_DATA_PAGE_HEADER_V2 = {
    1: "num_values", 2: "num_nulls", 3: "num_rows", 4: "encoding",
    5: "definition_levels_byte_length", 6: "repetition_levels_byte_length", 7: "is_compressed",
}
_PAGE_HEADER = {
    1: "type", 2: "uncompressed_page_size", 3: "compressed_page_size",
    5: ("data_page_header", _DATA_PAGE_HEADER), 8: ("data_page_header_v2", _DATA_PAGE_HEADER_V2),
}


class _Compact:
    """Just enough of Thrift's compact protocol to read page headers and skip what they add."""

    def __init__(self, data: bytes) -> None:
        self.data, self.position = data, 0

    def byte(self) -> int:
        value = self.data[self.position]
        self.position += 1
        return value

    def varint(self) -> int:
        shift = result = 0
        while True:
            byte = self.byte()
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        value = self.varint()
        return (value >> 1) ^ -(value & 1)

    def struct(self, names: dict) -> dict:
        fields, last = {}, 0
        while (head := self.byte()) != 0:
            delta, kind = head >> 4, head & 0x0F
            last = last + delta if delta else self.zigzag()
            name = names.get(last)
            if isinstance(name, tuple) and kind == 12:
                fields[name[0]] = self.struct(name[1])
            elif name is not None and not isinstance(name, tuple):
                fields[name] = self.value(kind)
            else:
                self.value(kind)
        return fields

    def value(self, kind: int):
        if kind in (1, 2):
            return kind == 1
        if kind == 3:
            return self.byte()
        if kind in (4, 5, 6):
            return self.zigzag()
        if kind == 7:
            self.position += 8
            return None
        if kind == 8:
            length = self.varint()  # read before moving: `+=` would use the position before it
            self.position += length
            return None
        if kind in (9, 10):
            head = self.byte()
            count = head >> 4 if head >> 4 != 15 else self.varint()
            for _ in range(count):
                self.value(head & 0x0F)
            return None
        if kind == 11:
            count = self.varint()
            if count:
                types = self.byte()
                for _ in range(count):
                    self.value(types >> 4)
                    self.value(types & 0x0F)
            return None
        if kind == 12:
            self.struct({})
            return None
        raise ValueError(f"unknown Thrift type {kind}")
