"""Each registered protocol's own `templates/` folder, for Django's template engine (see finders.py for why)."""

from __future__ import annotations

from pathlib import Path

from django.template.loaders.filesystem import Loader as FilesystemLoader

from protocols import all_protocols


class ProtocolTemplateLoader(FilesystemLoader):
    def get_dirs(self) -> list[str | Path]:
        return [protocol.folder / "templates" for protocol in all_protocols()]
