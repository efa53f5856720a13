"""Django's error views, answering the API's JSON shape ({"error": message}) on /api/ paths.

What Django refuses before a view runs (an unknown path, a Host header not in ALLOWED_HOSTS) or a view that
crashes never reaches DRF's exception handler; the rest of the site keeps Django's HTML pages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

ErrorView = Callable[..., HttpResponse]


def json_on_api_paths(page: ErrorView, status: int, message: str) -> ErrorView:
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.path.startswith("/api/"):
            return JsonResponse({"error": message}, status=status)
        return page(request, *args, **kwargs)

    return view


bad_request = json_on_api_paths(defaults.bad_request, 400, "Bad request.")
not_found = json_on_api_paths(defaults.page_not_found, 404, "There is no such API call.")
server_error = json_on_api_paths(defaults.server_error, 500, "Server error. Please try again in a moment.")
