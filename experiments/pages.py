"""The participant page: one HTML document; the browser script drives the session over the API."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.clickjacking import xframe_options_exempt

from experiments.models import Study
from experiments.recruiters import registered
from experiments.selectors import sample_screen
from protocols import NotImplementedProtocol

# MTurk shows the page in an iframe on its worker sites; nobody else may frame it.
# X-Frame-Options cannot name origins, so the page relies on CSP frame-ancestors alone.
FRAME_ANCESTORS = "frame-ancestors 'self' https://www.mturk.com https://workersandbox.mturk.com"


@xframe_options_exempt
def participant_page(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug)
    try:
        protocol = study.protocol_plugin
    except NotImplementedProtocol as exc:
        raise Http404(str(exc)) from exc
    # A preview is a property of the link (MTurk's preview assignment id): it never starts a session.
    previewing = any(recruiter.is_preview(request.GET) for recruiter in registered())
    context = {
        "study": study,
        "protocol": protocol,
        "previewing": previewing,
        "sample": sample_screen(study) if previewing else None,
        # Which fields of POST /sessions the script reads from which URL parameters, per recruiter.
        "arrival_params": {recruiter.name: dict(recruiter.url_params) for recruiter in registered()},
    }
    response = render(request, "participant/study.html", context)
    response["Content-Security-Policy"] = FRAME_ANCESTORS
    return response
