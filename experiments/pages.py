"""The participant page: one HTML document; the browser script drives the session over the API."""

from urllib.parse import urlsplit

from django.core.files.storage import default_storage
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.clickjacking import xframe_options_exempt

from experiments.models import Study
from experiments.recruiters import registered
from experiments.selectors import sample_screen, study_terms
from protocols import NotImplementedProtocol

# MTurk shows the page in an iframe on its worker sites; nobody else may frame it.
# X-Frame-Options cannot name origins, so the page relies on CSP frame-ancestors alone.
FRAME_ANCESTORS = "frame-ancestors 'self' https://www.mturk.com https://workersandbox.mturk.com"


def content_security_policy() -> str:
    """The page runs only this site's script files and talks only to this site's API; the stimuli may come from
    the store's own origin. Forms are not restricted: the MTurk hand-back posts to MTurk, and form-action would
    also bind every page MTurk redirects that post to."""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            " ".join(("img-src 'self'", *media_origin())),
            "object-src 'none'",
            "base-uri 'none'",
            FRAME_ANCESTORS,
        )
    )


def media_origin() -> tuple[str, ...]:
    """Where stored stimuli are served from, when it is not this site: an absolute MEDIA_URL, S3, a CDN."""
    url = urlsplit(default_storage.url("stimuli/"))
    if not url.netloc:
        return ()
    return (f"{url.scheme}://{url.netloc}" if url.scheme else url.netloc,)


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
        # The preview's sample screen and the instructions' example screen.
        "sample": sample_screen(study),
        "terms": study_terms(study),
        # Which fields of POST /sessions the script reads from which URL parameters, per recruiter.
        "arrival_params": {recruiter.name: dict(recruiter.url_params) for recruiter in registered()},
    }
    response = render(request, "participant/study.html", context)
    response["Content-Security-Policy"] = content_security_policy()
    return response
