"""The site's URLs and the baseline: a bare Django JSON view doing one indexed query."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from experiments.models import Session

# The error handlers are looked up on the root URLconf, which this module replaces.
from psyplatform.urls import handler400, handler404, handler500  # noqa: F401
from psyplatform.urls import urlpatterns as site


def bare(request: HttpRequest, session_id: int) -> JsonResponse:
    """One primary-key lookup, as plain as Django serves JSON: the ceiling a Django view reaches here."""
    row = Session.objects.filter(pk=session_id).values("id", "phase", "status").first()
    return JsonResponse(row or {}, status=200 if row else 404)


urlpatterns = [path("bench/bare/<int:session_id>", bare), *site]
