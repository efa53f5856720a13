"""The participant API renders JSON only, so it skips DRF's matching of the Accept header to renderers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class JSONOnly(DefaultContentNegotiation):
    """The view's first renderer (JSON), whatever the client asks for: DRF's default negotiation parses the Accept
    header on every call (about 2% of the server's CPU on answers and trial fetches), only to end at the one
    renderer these views have. Bodies are still parsed by their content type."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, Any]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type
