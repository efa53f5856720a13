"""A table as the formats write it: typed columns and a stream of rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# Column types, as the typed formats (Parquet) store them.
TYPES = ("int", "float", "bool", "str", "datetime")
CHUNK = 2000


@dataclass
class Table:
    name: str
    columns: list[tuple[str, str]]  # (name, type)
    rows: Iterator[tuple[Any, ...]]  # in column order; consumed once

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def records(self) -> Iterator[dict[str, Any]]:
        names = self.names
        for row in self.rows:
            yield dict(zip(names, row, strict=True))
