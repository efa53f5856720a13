"""The participant page: one HTML document; the browser script drives the session over the API."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.clickjacking import xframe_options_exempt

from experiments.models import Study
from experiments.selectors import sample_screen
from protocols import NotImplementedProtocol
from recruitment.mturk.backend import PREVIEW_ASSIGNMENT_ID

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
    previewing = request.GET.get("assignmentId") == PREVIEW_ASSIGNMENT_ID
    context = {
        "study": study,
        "protocol": protocol,
        "previewing": previewing,
        "sample": sample_screen(study) if previewing else None,
        "arrival_params": {
            "mturk": {"assignment_id": "assignmentId", "hit_id": "hitId", "worker_id": "workerId",
                      "turk_submit_to": "turkSubmitTo"},
            "prolific": {"prolific_pid": "PROLIFIC_PID", "study_id": "STUDY_ID", "session_id": "SESSION_ID"},
            "local": {"participant": "participant"},
        },
    }
    response = render(request, "participant/study.html", context)
    response["Content-Security-Policy"] = FRAME_ANCESTORS
    return response
