"""The participant API: one thin view per operation; the work is in services and selectors."""

from __future__ import annotations

from typing import cast

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments import arrivals, selectors, services
from experiments.addresses import address_key
from experiments.api import serializers as s
from experiments.api.auth import OwnsSession, SessionTokenAuthentication
from experiments.api.negotiation import JSONOnly
from experiments.errors import WrongStage
from experiments.models import Session, Study

ERRORS = {
    400: OpenApiResponse(description="Malformed input: {'error': message, 'detail': ...}"),
    401: OpenApiResponse(description="Missing or invalid token."),
    403: OpenApiResponse(description="The token belongs to another session."),
    409: OpenApiResponse(description="Not possible in the session's state now, or an answer sooner than the lock."),
    429: OpenApiResponse(description="Too many starts or events from one address, or sessions open at once."),
}
BUSY = {503: OpenApiResponse(description="Others are starting right now: send the same call after Retry-After.")}


class ParticipantView(APIView):
    content_negotiation_class = JSONOnly


class SessionView(ParticipantView):
    """Base for calls on one session, authorized by its bearer token."""

    authentication_classes = [SessionTokenAuthentication]
    permission_classes = [OwnsSession]

    @property
    def session(self) -> Session:
        # SessionTokenAuthentication puts the session where DRF keeps the token.
        return cast(Session, self.request.auth)


class StartSession(ParticipantView):
    @extend_schema(
        request=s.SessionStartSerializer,
        responses={
            201: s.SessionStartedSerializer,
            200: s.SessionStartedSerializer,
            404: OpenApiResponse(description="Unknown or closed study."),
            **ERRORS,
            **BUSY,
        },
        summary="Start a session, or resume the participant's session.",
    )
    def post(self, request: Request) -> Response:
        arrival = s.SessionStartSerializer(data=request.data)
        arrival.is_valid(raise_exception=True)
        data = arrival.validated_data
        session, created = arrivals.start_session(data["study"], data, address_key(request))
        body = {**selectors.session_state(session), "token": session.token}
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class SessionDetail(SessionView):
    @extend_schema(responses={200: s.SessionStateSerializer, **ERRORS}, summary="Where the session stands.")
    def get(self, request: Request, session_id: int) -> Response:
        return Response(selectors.session_state(self.session))


class CurrentTrial(SessionView):
    # The current trial and the trials whose images it preloads (the default number; a study that preloads
    # more, or a practice round's first trial, reads them again) come with the session.
    reads_trials_ahead = Study._meta.get_field("preload_trials").get_default()
    serves_trial = True  # the lookup marks the current trial served (services.serve_trial)

    @extend_schema(
        responses={200: s.TRIAL_SCHEMA, **ERRORS},
        summary="The first unanswered trial in the study's protocol's shape, or {'done': true}.",
    )
    def get(self, request: Request, session_id: int) -> Response:
        if self.session.consented_at is None:
            raise WrongStage("Please give your consent first.")
        return Response(services.serve_trial(self.session))


class AnswerTrial(SessionView):
    # The answered trial and the one after it (none at the round's end) come with the session: whether the answer
    # ends its round decides how it is stored (services.answer_trial).
    reads_trials_ahead = 1

    @extend_schema(
        request=s.ANSWER_SCHEMA,
        responses={201: s.AnswerResultSerializer, 200: s.AnswerResultSerializer, **ERRORS},
        summary="Answer the current trial in its protocol's shape; a replayed client_id returns the stored answer.",
    )
    def post(self, request: Request, session_id: int) -> Response:
        answer = s.validated_answer(self.session.study.protocol, request.data)
        result, created = services.answer_trial(
            self.session,
            index=answer.pop("index"),
            client_id=answer.pop("client_id"),
            rt_ms=answer.pop("rt_ms"),
            geometry=answer.pop("geometry"),
            answer=answer,
        )
        return Response(result.reply, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class RecordEvent(SessionView):
    @extend_schema(
        request=s.EventSerializer,
        responses={201: s.EventRecordedSerializer, **ERRORS, **BUSY},
        summary="Record consent, instruction timing, or window focus changes.",
    )
    def post(self, request: Request, session_id: int) -> Response:
        event = s.EventSerializer(data=request.data)
        event.is_valid(raise_exception=True)
        recorded = services.record_event(
            self.session, event.validated_data["type"], event.validated_data["payload"], address_key(request)
        )
        return Response(s.EventRecordedSerializer(recorded).data, status=status.HTTP_201_CREATED)


class CalibrateSize(SessionView):
    @extend_schema(
        request=s.CalibrationSerializer,
        responses={200: s.CalibrationSerializer, **ERRORS},
        summary="Store the screen's scale from the size calibration (once; the same value again is a replay).",
    )
    def post(self, request: Request, session_id: int) -> Response:
        body = s.CalibrationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        px_per_mm = services.calibrate_size(self.session, body.validated_data["px_per_mm"])
        return Response({"px_per_mm": px_per_mm})


class CompleteSession(SessionView):
    @extend_schema(
        request=s.CompleteSerializer,
        responses={200: s.CompletedSerializer, **ERRORS},
        summary="Finish the session and get the completion code or recruiter hand-back.",
    )
    def post(self, request: Request, session_id: int) -> Response:
        body = s.CompleteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(services.complete_session(self.session, body.validated_data["feedback"]))


class DeclineSession(SessionView):
    @extend_schema(
        request=None,
        responses={200: s.DeclinedSerializer, **ERRORS},
        summary="The participant does not agree: the unconsented session and its events are deleted.",
    )
    def post(self, request: Request, session_id: int) -> Response:
        services.decline_session(self.session)
        return Response({"declined": True})
