"""Rows that never change once written, kept by id in the process after their first read.

A stored image's URL (its name is the hash of its bytes) and a trial's images (written with the trial, in
its transaction, and never again) hold for as long as the row exists, and an id is never given twice
(PostgreSQL's sequences, SQLite's AUTOINCREMENT): a process may keep them without expiry. Bounded: past
`limit` ids it starts again from none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar, cast

V = TypeVar("V")
_ABSENT = object()


class KeptById(Generic[V]):
    def __init__(self, read: Callable[[list[int]], dict[int, V]], limit: int) -> None:
        self._read, self._limit = read, limit
        self._kept: dict[int, V] = {}

    def of(self, ids: Iterable[int]) -> dict[int, V]:
        """The value of each id that has one, read for those the process does not hold yet."""
        # One lookup per id, and what is read returned as read: another thread may start the process's values
        # again from none at any moment.
        found: dict[int, V] = {}
        missing = []
        for pk in ids:
            value = self._kept.get(pk, _ABSENT)
            if value is _ABSENT:
                missing.append(pk)
            else:
                found[pk] = cast(V, value)
        if missing:
            read = self._read(missing)
            if len(self._kept) > self._limit:
                self._kept.clear()
            self._kept.update(read)
            found.update(read)
        return found

    def forget(self) -> None:
        self._kept.clear()
