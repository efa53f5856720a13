"""Each registered protocol's own `static/` folder, for Django's staticfiles (collectstatic, runserver).

Protocols are not Django apps (adding one must not touch INSTALLED_APPS), so
the app-directories finder cannot see their files; this finder looks in the
folder of every protocol the registry holds at the time of the lookup.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal, overload

from django.contrib.staticfiles.finders import BaseFinder
from django.contrib.staticfiles.utils import get_files
from django.core.checks import CheckMessage
from django.core.files.storage import FileSystemStorage

from protocols import all_protocols


def _storages() -> list[FileSystemStorage]:
    folders = [protocol.folder / "static" for protocol in all_protocols()]
    return [FileSystemStorage(location=str(folder)) for folder in folders if folder.is_dir()]


class ProtocolStaticFinder(BaseFinder):
    def check(self, **kwargs: Any) -> list[CheckMessage]:
        return []

    @overload
    def find(self, path: str, find_all: Literal[False] = False) -> str | None: ...

    @overload
    def find(self, path: str, find_all: Literal[True]) -> list[str]: ...

    def find(self, path: str, find_all: bool = False) -> str | list[str] | None:
        found = [storage.path(path) for storage in _storages() if storage.exists(path)]
        if find_all:
            return found
        return found[0] if found else None

    def list(self, ignore_patterns: Iterable[str] | None) -> Iterator[tuple[str, FileSystemStorage]]:
        for storage in _storages():
            for path in get_files(storage, list(ignore_patterns or [])):
                yield path, storage
