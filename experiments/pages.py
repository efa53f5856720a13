"""The participant page: one HTML document; the browser script drives the session over the API."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from experiments.models import Study


def participant_page(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug)
    return render(request, "participant/study.html", {"study": study})
