"""The embedded default's media view: stored stimuli, served with a cache lifetime of a year."""

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.views.static import serve


def serve_media(request: HttpRequest, path: str) -> HttpResponseBase:
    """A file of the media folder; content-addressed, so cacheable for good (settings.MEDIA_CACHE_CONTROL)."""
    response = serve(request, path, document_root=str(settings.MEDIA_ROOT))
    response["Cache-Control"] = settings.MEDIA_CACHE_CONTROL
    return response
