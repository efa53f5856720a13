"""Arrow columns built from their buffers, for the Parquet export.

pa.array asks pyarrow's pandas shim whether each input is a pandas object, which imports pandas (about
50 MB) in a process that never uses it. Building each column from its validity bitmap and value buffers
(numpy arrays, or the joined UTF-8 bytes and their offsets for text) gives the same arrays without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
# 32-bit offsets: a column chunk's text must stay under 2 GiB.
MAX_TEXT_BYTES = 2**31 - 1


def arrow_type(kind: str) -> pa.DataType:
    """The Arrow type of a table column type (experiments.export.table.TYPES)."""
    return {
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "str": pa.string(),
        "datetime": pa.timestamp("us", tz="UTC"),
    }[kind]


def _validity(values: Sequence[Any]) -> tuple[pa.Buffer | None, int]:
    present = np.fromiter((value is not None for value in values), dtype=bool, count=len(values))
    nulls = len(values) - int(present.sum())
    return (pa.py_buffer(np.packbits(present, bitorder="little")) if nulls else None), nulls


def _filled(values: Sequence[Any], fill: Any) -> list[Any]:
    return [fill if value is None else value for value in values]


def _micros(value: datetime) -> int:
    return (value - EPOCH) // MICROSECOND


def arrow_column(values: Sequence[Any], kind: str) -> pa.Array:
    """One column of a chunk (Python values, None for null) as an Arrow array of arrow_type(kind)."""
    validity, nulls = _validity(values)
    n = len(values)
    if kind == "str":
        encoded = [b"" if value is None else str(value).encode() for value in values]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=n), out=offsets[1:])
        if offsets[-1] > MAX_TEXT_BYTES:
            raise ValueError(f"A column chunk holds {offsets[-1]} bytes of text, more than Arrow strings take.")
        buffers = [validity, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(encoded))]
    elif kind == "bool":
        bits = np.fromiter(_filled(values, False), dtype=bool, count=n)
        buffers = [validity, pa.py_buffer(np.packbits(bits, bitorder="little"))]
    elif kind == "datetime":
        micros = np.fromiter((0 if value is None else _micros(value) for value in values), dtype=np.int64, count=n)
        buffers = [validity, pa.py_buffer(micros)]
    else:
        dtype = np.int64 if kind == "int" else np.float64
        buffers = [validity, pa.py_buffer(np.fromiter(_filled(values, 0), dtype=dtype, count=n))]
    return pa.Array.from_buffers(arrow_type(kind), n, buffers, null_count=nulls)
