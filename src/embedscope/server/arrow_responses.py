"""Arrow IPC streams built straight from numpy arrays: the viewer's points and columns, with no per-row Python.

A browser reads them with apache-arrow's `tableFromIPC` into typed arrays that go to the GPU as they are.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from fastapi.responses import Response

ARROW_STREAM = "application/vnd.apache.arrow.stream"


def arrow_stream(columns: dict[str, np.ndarray]) -> bytes:
    """One record batch of the named arrays (equal lengths) as Arrow IPC stream bytes."""
    arrays = [pa.array(np.ascontiguousarray(values)) for values in columns.values()]
    batch = pa.RecordBatch.from_arrays(arrays, names=list(columns))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def arrow_response(stream: bytes) -> Response:
    """An HTTP response carrying Arrow stream bytes."""
    return Response(stream, media_type=ARROW_STREAM)
