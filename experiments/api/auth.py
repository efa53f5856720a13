"""Bearer session tokens: a session's token opens that session's calls and no other's."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from experiments.models import Session, Study
from experiments.selectors import session_by_token


class SessionTokenAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[None, Session] | None:
        header = get_authorization_header(request).split()
        if not header:
            return None
        if header[0].decode(errors="replace") != self.keyword or len(header) != 2:
            raise exceptions.AuthenticationFailed("Use the header 'Authorization: Bearer <token>'.")
        token = header[1].decode(errors="replace")
        # A view that reads the current trial (a fetch, an answer) has it read with the session, and one that
        # serves it has it marked served: one statement that authenticates, reads and marks.
        view = (request.parser_context or {}).get("view")
        serve_at = timezone.now() if getattr(view, "serves_trial", False) else None
        session = session_by_token(token, ahead=getattr(view, "reads_trials_ahead", None), serve_at=serve_at)
        if session is None:
            raise exceptions.AuthenticationFailed("Invalid session token.")
        session.study = Study.cached(session.study_id)
        return None, session

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class OwnsSession(BasePermission):
    """The token must belong to the session named in the URL."""

    message = "This token belongs to another session."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.auth is None:
            raise exceptions.NotAuthenticated("Send 'Authorization: Bearer <token>'.")
        return request.auth.pk == view.kwargs.get("session_id")


class SessionTokenScheme(OpenApiAuthenticationExtension):
    target_class = SessionTokenAuthentication
    name = "sessionToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "The token from POST /sessions."}
