"""Writes of the participant workflow: start, events, answers, completion."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from experiments import checks
from experiments.assignment import assign_units, release_slots
from experiments.errors import (
    AlreadyTakenPart,
    InvalidArrival,
    NotCurrentTrial,
    StudyUnavailable,
    WrongStage,
)
from experiments.models import Event, Response, Session, SessionTrial, Study
from experiments.planning import plan_main_block, plan_practice_round
from experiments.pseudonyms import pseudonymize
from experiments.recruiters import ArrivalRefused, recruiter_for
from experiments.selectors import StoredImageURLs, first_unanswered
from protocols.base import Score


def _resumable(session: Session) -> Session:
    if session.status == Session.Status.COMPLETED:
        # The hand-back again, so that a worker whose submission got lost can submit once more.
        raise AlreadyTakenPart(
            "You have already completed this study. Thank you!",
            hand_back=recruiter_for(session.source).hand_back(session),
        )
    if session.status != Session.Status.ACTIVE:
        raise AlreadyTakenPart("This session has expired and cannot be resumed.")
    return session


def start_session(slug: str, data: dict[str, Any]) -> tuple[Session, bool]:
    """Start a session for an arriving participant, or resume theirs; returns (session, created)."""
    study = Study.objects.filter(slug=slug).first()
    if study is None:
        raise StudyUnavailable(f"There is no study {slug!r}.")
    if study.status != Study.Status.OPEN:
        raise StudyUnavailable("This study is not open to participants.")
    source = data.get("source") or ""
    try:
        recruiter = recruiter_for(source)
        if source != study.recruiter:
            # Such a session would hold units' slots without ever counting toward the target or being paid.
            where = recruiter_for(study.recruiter).label
            raise ArrivalRefused(f"This link cannot start this study: it takes participants only through {where}.")
        arrival = recruiter.arrival(study, data)
    except ValueError as exc:
        # Backends reject their own malformed fields with ValueError.
        raise InvalidArrival(str(exc)) from exc
    pseudonym = pseudonymize(source, arrival.participant_id)

    existing = Session.objects.filter(study=study, pseudonym=pseudonym).first()
    if existing:
        return _resumable(existing), False
    if recruiter.has_taken_part(study, arrival.participant_id):
        raise AlreadyTakenPart("You have already taken part in a related study. Thank you!")
    try:
        with transaction.atomic():
            session = Session.objects.create(
                study=study,
                source=source,
                pseudonym=pseudonym,
                participant_id=arrival.participant_id,
                external=arrival.external,
            )
            assign_units(session)
            plan_practice_round(session)
            recruiter.session_started(session)
    except IntegrityError:
        # The same participant started twice at once: the other request won.
        return _resumable(Session.objects.get(study=study, pseudonym=pseudonym)), False
    return session, True


def record_event(session: Session, type_: str, payload: dict[str, Any]) -> Event:
    _resumable(session)
    now = timezone.now()
    with transaction.atomic():
        event = Event.objects.create(session=session, type=type_, payload=payload, created_at=now)
        fields = ["last_seen_at"]
        session.last_seen_at = now
        if type_ == Event.Type.CONSENT and session.consented_at is None:
            session.consented_at = now
            fields.append("consented_at")
        session.save(update_fields=fields)
    return event


@dataclass(frozen=True)
class AnswerResult:
    index: int
    correct: bool | None
    done: bool
    practice: dict[str, Any] | None
    feedback: dict[str, Any]  # the protocol's own reply fields


def _result(response: Response) -> AnswerResult:
    answered = response.session_trial
    session = response.session
    protocol = session.study.protocol_plugin
    practice = None
    if answered.phase == Session.Phase.PRACTICE:
        round_trials = SessionTrial.objects.filter(
            session=session, phase=Session.Phase.PRACTICE, attempt=answered.attempt
        )
        if answered.index == max(round_trials.values_list("index", flat=True)):
            round_responses = Response.objects.filter(session_trial__in=round_trials)
            scores = [Score(correct, score) for correct, score in round_responses.values_list("correct", "score")]
            practice = {"attempt": answered.attempt, "passed": protocol.practice_passed(scores)}
    done = session.phase == Session.Phase.MAIN and first_unanswered(session) is None
    urls = StoredImageURLs(protocol.image_ids(answered.layout))
    feedback = protocol.feedback(response.answer, answered.key, answered.layout, urls)
    return AnswerResult(answered.index, response.correct, done, practice, feedback)


def answer_trial(
    session: Session, *, index: int, client_id: uuid.UUID, rt_ms: int, answer: dict[str, Any]
) -> tuple[AnswerResult, bool]:
    """Store the answer (the protocol's validated fields) to the current trial; returns (result, created).

    A replayed client_id returns the stored result and writes nothing.
    """
    with transaction.atomic():
        # One answer at a time per session, so two tabs cannot both answer a trial.
        session = Session.objects.select_for_update().select_related("study").get(pk=session.pk)
        replay = Response.objects.filter(session=session, client_id=client_id).first()
        if replay:
            return _result(replay), False
        _resumable(session)
        if session.consented_at is None:
            raise WrongStage("Please give your consent first.")
        current = first_unanswered(session)
        if current is None or current.index != index:
            expected = "none" if current is None else current.index
            raise NotCurrentTrial(f"Trial {index} is not the current trial (current: {expected}).")
        study = session.study
        verdict = study.protocol_plugin.score(answer, current.key, study.protocol_params)
        response = Response.objects.create(
            session=session,
            session_trial=current,
            client_id=client_id,
            answer=answer,
            rt_ms=rt_ms,
            correct=verdict.correct,
            score=verdict.score,
        )
        session.last_seen_at = response.created_at
        session.save(update_fields=["last_seen_at"])
        result = _result(response)
        if result.practice is not None:
            if result.practice["passed"]:
                session.phase = Session.Phase.MAIN
                session.save(update_fields=["phase"])
                plan_main_block(session)
            else:
                plan_practice_round(session)
        return result, True


def complete_session(session: Session, feedback: str = "") -> dict[str, Any]:
    """Close the session once every trial is answered, run the checks, and hand back."""
    with transaction.atomic():
        session = Session.objects.select_for_update().get(pk=session.pk)
        if session.status != Session.Status.COMPLETED:
            _resumable(session)
            if session.phase != Session.Phase.MAIN or first_unanswered(session) is not None:
                raise WrongStage("Please answer every trial before completing.")
            session.status = Session.Status.COMPLETED
            session.completed_at = timezone.now()
            session.feedback = feedback
            session.passed = checks.record_checks(session)
            session.save(update_fields=["status", "completed_at", "feedback", "passed"])
            if not session.passed:
                # A failing session does not count: its units go back to the pool.
                release_slots(Session.objects.filter(pk=session.pk))
    return {"completed": True, **recruiter_for(session.source).hand_back(session)}
