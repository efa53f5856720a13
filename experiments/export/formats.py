"""Writing a table as CSV, JSON Lines or Parquet, as a stream of byte chunks (an HTTP response, a
file or a zip member takes them as they come), a chunk of rows at a time."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from itertools import islice
from typing import Any

from experiments.export.table import CHUNK, Table


def _text(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def csv_chunks(table: Table) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(table.names)
    while chunk := list(islice(table.rows, CHUNK)):
        writer.writerows([_text(value) for value in row] for row in chunk)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue().encode()


def jsonl_chunks(table: Table) -> Iterator[bytes]:
    names = table.names
    while chunk := list(islice(table.rows, CHUNK)):
        lines = (json.dumps(dict(zip(names, map(_text, row), strict=True))) for row in chunk)
        yield ("\n".join(lines) + "\n").encode()


class _Drain:
    """A write-only file that hands what was written back out, so that Parquet can stream."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        """Nothing is buffered here."""

    def close(self) -> None:
        self.closed = True

    def drain(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def parquet_chunks(table: Table) -> Iterator[bytes]:
    # pyarrow (about 60 MB) is loaded by the Parquet export only; its columns are built from buffers
    # (experiments.export.arrow), which, unlike pa.array, never loads pandas (about 50 MB more).
    import pyarrow as pa
    import pyarrow.parquet as pq

    from experiments.export.arrow import arrow_column, arrow_type

    schema = pa.schema([(name, arrow_type(kind)) for name, kind in table.columns])
    sink = _Drain()
    with pq.ParquetWriter(sink, schema) as writer:
        # Row groups of 4,000 rows: 10,000 took 20 MB more at the peak (about 1 kB a row in Python) and were no faster.
        while chunk := list(islice(table.rows, CHUNK * 2)):
            columns = zip(*chunk, strict=True)
            arrays = [arrow_column(values, kind) for values, (_, kind) in zip(columns, table.columns, strict=True)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            yield sink.drain()
    yield sink.drain()


FORMATS: dict[str, Callable[[Table], Iterator[bytes]]] = {
    "csv": csv_chunks,
    "jsonl": jsonl_chunks,
    "parquet": parquet_chunks,
}
CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}
