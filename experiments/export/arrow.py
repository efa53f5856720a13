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
NUMBERS = {"int": np.int64, "float": np.float64}


def arrow_type(kind: str) -> pa.DataType:
    """The Arrow type of a table column type (experiments.export.table.TYPES)."""
    return {
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "str": pa.string(),
        "json": pa.string(),  # a list or object, as its JSON text
        "datetime": pa.timestamp("us", tz="UTC"),
    }[kind]


def _validity(values: Sequence[Any], nulls: int) -> pa.Buffer | None:
    if not nulls:
        return None
    present = np.fromiter((value is not None for value in values), dtype=bool, count=len(values))
    return pa.py_buffer(np.packbits(present, bitorder="little"))


def _filled(values: Sequence[Any], fill: Any, nulls: int) -> Sequence[Any]:
    return [fill if value is None else value for value in values] if nulls else values


def _text(values: Sequence[Any], nulls: int) -> tuple[np.ndarray, bytes]:
    """Offsets and UTF-8 bytes of a text column; one join and one encode when it is all ASCII."""
    texts = _filled(values, "", nulls)
    try:
        data = "".join(texts).encode()
    except TypeError:  # not all text: written as str() writes them
        texts = [str(text) for text in texts]
        data = "".join(texts).encode()
    if len(data) == sum(map(len, texts)):  # ASCII: a character is a byte
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    else:
        encoded = [text.encode() for text in texts]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(texts))
        data = b"".join(encoded)
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets, data


def _micros(value: datetime) -> int:
    return (value - EPOCH) // MICROSECOND


def arrow_column(values: Sequence[Any], kind: str) -> pa.Array:
    """One column of a chunk (Python values, None for null) as an Arrow array of arrow_type(kind)."""
    n, nulls = len(values), values.count(None)
    validity = _validity(values, nulls)
    if kind in ("str", "json"):
        offsets, data = _text(values, nulls)
        if offsets[-1] > MAX_TEXT_BYTES:
            raise ValueError(f"A column chunk holds {offsets[-1]} bytes of text, more than Arrow strings take.")
        buffers = [validity, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)]
    elif kind == "bool":
        bits = np.array(_filled(values, False, nulls), dtype=bool)
        buffers = [validity, pa.py_buffer(np.packbits(bits, bitorder="little"))]
    elif kind == "datetime":
        micros = np.fromiter((0 if value is None else _micros(value) for value in values), dtype=np.int64, count=n)
        buffers = [validity, pa.py_buffer(micros)]
    else:
        buffers = [validity, pa.py_buffer(np.array(_filled(values, 0, nulls), dtype=NUMBERS[kind]))]
    return pa.Array.from_buffers(arrow_type(kind), n, buffers, null_count=nulls)
