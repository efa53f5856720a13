"""Writes of the participant workflow after the start (experiments.arrivals): events, trials served,
answers, completion."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from experiments import checks
from experiments.admission import ARRIVALS
from experiments.arrivals import count_refusal, resumable
from experiments.assignment import assign_units, release_slots
from experiments.comparisons import compare_session
from experiments.errors import InvalidAnswer, NoPlacesLeft, NotCurrentTrial, TooEarly, TooManyRequests, WrongStage
from experiments.limits import retry_after
from experiments.models import Event, Response, Session, SessionTrial, Study, Trial
from experiments.planning import plan_main_block, plan_practice_round
from experiments.prepared import PreparedInsert, PreparedUpdate, PreparedUpdateThenInsert, writes_in_a_with
from experiments.recruiters import ArrivalRefused, recruiter_for
from experiments.selectors import (
    StoredImageURLs,
    Upcoming,
    first_unanswered,
    session_by_token,
    trial_payload,
    trials_ahead,
    upcoming,
)
from protocols.base import AnswerRefused, Score
from stimuli.kept_maps import kept_maps


def record_event(session: Session, type_: str, payload: dict[str, Any], address: str) -> Event:
    """Store an event. Consent is when the session starts to hold units: the recruiter confirms the
    participant where it can, then units are assigned; with none left, the session ends here."""
    resumable(session)
    if not session.signed_link:
        wait = retry_after("events", address, settings.RATE_LIMIT_EVENTS)
        if wait is not None:
            raise TooManyRequests(
                f"Too many requests from your network. Please try again in {wait} seconds.", retry_after=wait
            )
    now = timezone.now()
    if type_ == Event.Type.CONSENT and session.consented_at is None:
        return _consent(session, payload, now)
    # The event's row and the session's last call need not be one transaction: two statements fewer.
    event = Event.objects.create(session=session, type=type_, payload=payload, created_at=now)
    session.last_seen_at = now
    session.save(update_fields=["last_seen_at"])
    return event


@ARRIVALS.turn()  # it assigns units: an arrival's work
def _consent(session: Session, payload: dict[str, Any], now: datetime) -> Event:
    try:
        with transaction.atomic():
            event = Event.objects.create(session=session, type=Event.Type.CONSENT, payload=payload, created_at=now)
            recruiter_for(session.source).before_holding(session)
            assign_units(session)
            session.consented_at = session.last_answer_at = session.last_seen_at = now
            session.save(update_fields=["last_seen_at", "consented_at", "last_answer_at"])
    except (NoPlacesLeft, ArrivalRefused) as exc:
        # Nothing is held; the session ends so that it counts no more toward its address's limit.
        Session.objects.filter(pk=session.pk).update(status=Session.Status.ABANDONED)
        if isinstance(exc, ArrivalRefused):
            count_refusal(session.study, exc.reason)
        raise
    return event


def calibrate_size(session: Session, px_per_mm: float) -> float:
    """Store the screen's scale the participant's size calibration found (the range is the serializer's).

    Once only: every answer of a session is shown at one scale, which its geometry then carries. The same value
    again is the page retrying a call whose reply it lost."""
    resumable(session)
    if not session.study.calibrate_size:
        raise WrongStage("This study does not calibrate the screen's size.")
    if session.consented_at is None:
        raise WrongStage("Please give your consent first.")
    with transaction.atomic():
        session = Session.objects.select_for_update().get(pk=session.pk)
        if session.px_per_mm is not None and session.px_per_mm != px_per_mm:
            raise WrongStage("This session's screen size was calibrated already.")
        session.px_per_mm = px_per_mm
        session.last_seen_at = timezone.now()
        session.save(update_fields=["px_per_mm", "last_seen_at"])
    return px_per_mm


def serve_trial(session: Session) -> dict[str, Any]:
    """The current trial's payload. The session was looked up with the trial marked served
    (selectors.session_by_token's serve_at: the trial fetch's lookup), so that the answer lock counts from then."""
    return trial_payload(session, upcoming(session, ahead=trials_ahead(session)))


@dataclass(frozen=True)
class AnswerResult:
    index: int
    correct: bool | None
    done: bool
    practice: dict[str, Any] | None
    feedback: dict[str, Any]  # the protocol's own reply fields

    @property
    def reply(self) -> dict[str, Any]:
        """What the participant's page is told (AnswerResultSerializer in the schema), the protocol's fields beside."""
        return {
            "correct": self.correct,
            "index": self.index,
            "done": self.done,
            "practice": self.practice,
            **self.feedback,
        }


def _result(response: Response, following: SessionTrial | None) -> AnswerResult:
    """The reply to an answer; following is the trial after the answered one (None at its round's end)."""
    answered = response.session_trial
    session = response.session
    protocol = session.study.protocol_plugin
    practice = None
    if answered.phase == Session.Phase.PRACTICE and following is None:
        round_responses = Response.objects.filter(
            session=session, session_trial__phase=Session.Phase.PRACTICE, session_trial__attempt=answered.attempt
        )
        scores = [Score(correct, score) for correct, score in round_responses.values_list("correct", "score")]
        practice = {
            "attempt": answered.attempt,
            "passed": protocol.practice_passed(scores),
            "wrong": sum(1 for score in scores if score.correct is False),
            "of": len(scores),
        }
    done = answered.phase == Session.Phase.MAIN and following is None
    if answered.phase == Session.Phase.MAIN and not session.study.main_feedback:
        # Nothing drawn from the key, so that replies never add up to an answer key over sessions.
        return AnswerResult(answered.index, None, done, practice, {})
    urls = StoredImageURLs(protocol.image_ids(answered.layout) + protocol.feedback_images(answered.key))
    feedback = protocol.feedback(response.answer, answered.key, answered.layout, urls)
    return AnswerResult(answered.index, response.correct, done, practice, feedback)


def _stored_answer(session: Session, client_id: uuid.UUID) -> AnswerResult | None:
    """The reply to the session's answer with this client_id, as it was first given; None if there is none."""
    stored = Response.objects.filter(session=session, client_id=client_id).select_related("session_trial").first()
    if stored is None:
        return None
    stored.session = session  # with its study already read
    answered = stored.session_trial
    following = (
        SessionTrial.objects.filter(session=session, index=answered.index + 1)
        .filter(phase=answered.phase, attempt=answered.attempt)
        .first()
    )
    return _result(stored, following)


def _check_timing(current: SessionTrial, lock_ms: int, now: datetime) -> int:
    """Milliseconds from sending the trial to this answer; refused sooner than the lock, which the
    browser enforces too, but a script need not."""
    if current.served_at is None:
        raise NotCurrentTrial(f"Trial {current.index} has not been shown yet: fetch it first.")
    elapsed = round((now - current.served_at).total_seconds() * 1000)
    if elapsed < lock_ms:
        raise TooEarly(
            f"This answer came {elapsed} ms after the trial was shown; answers open after {lock_ms} ms. "
            "Please look at the images before answering."
        )
    return elapsed


@dataclass(frozen=True)
class _Answer:
    """An answer as the page sent it: the protocol's validated fields and what the page says of them."""

    index: int
    client_id: uuid.UUID
    rt_ms: int
    fields: dict[str, Any]
    geometry: dict[str, Any]


# An answer is written as a Response and a Session update (experiments.prepared). Where it does not end its round,
# the two are one statement, in which the session only moves on if it is still where the answer was judged: on
# the answered trial, active, the client_id unused (a concurrent answer that got there first moved it on).
_RESPONSE = PreparedInsert(Response)
_ANSWERED = PreparedUpdate(
    Session,
    lambda pk: Session.objects.filter(pk=pk),
    ("last_seen_at", "last_answer_at", "phase", "practice_attempts", "next_index"),
    pk=Session._meta.pk,
)
_ANSWERED_IF_CURRENT = PreparedUpdateThenInsert(
    PreparedUpdate(
        Session,
        lambda pk, answering, client_id: Session.objects.filter(
            ~Exists(Response.objects.filter(session=OuterRef("pk"), client_id=client_id)),
            pk=pk,
            next_index=answering,
            status=Session.Status.ACTIVE,
        ),
        ("last_seen_at", "last_answer_at", "next_index"),
        pk=Session._meta.pk,
        answering=Session._meta.get_field("next_index"),
        client_id=Response._meta.get_field("client_id"),
    ),
    _RESPONSE,
)


def answer_trial(
    session: Session,
    *,
    index: int,
    client_id: uuid.UUID,
    rt_ms: int,
    answer: dict[str, Any],
    geometry: dict[str, Any] | None = None,
) -> tuple[AnswerResult, bool]:
    """Store the answer (the protocol's validated fields) to the current trial; returns (result, created).

    A replayed client_id returns the stored result and writes nothing; two tabs cannot both answer a trial.
    Mostly the answer is judged on the session as it was read (the answer view reads it with its current trial
    and the one after) and stored with a single statement that moves the session on only if nothing else has.
    An answer that ends its round (the next round is planned with it), or whose single statement found the
    session moved on, is judged again and stored in a transaction with the session's row locked: only the
    session's, as joining the study would lock it too and serialize every session's answers.
    """
    given = _Answer(index, client_id, rt_ms, answer, geometry or {})
    trials = upcoming(session)
    replayed = _replayed(session, trials, given)
    if replayed is not None:
        return replayed, False
    if trials.following is not None and writes_in_a_with():
        stored = _store_if_current(session, trials, given, _judged(session, trials, given))
        if stored is not None:
            return stored, True
    with transaction.atomic():
        locked = session_by_token(session.token, lock=True, ahead=1)
        if locked is None:
            raise WrongStage("This session no longer exists.")
        locked.study = session.study
        trials = upcoming(locked)
        replayed = _replayed(locked, trials, given)
        if replayed is not None:
            return replayed, False
        return _store_locked(locked, trials, given, _judged(locked, trials, given))


@dataclass(frozen=True)
class _Judged:
    """The answer as judged against its trial, at `at`: what is stored of it."""

    trial: SessionTrial
    verdict: Score
    fields: dict[str, Any]  # the protocol's completed answer
    server_ms: int
    at: datetime


def _replayed(session: Session, trials: Upcoming, given: _Answer) -> AnswerResult | None:
    """The stored reply where the page sends an answer again (its retry names the trial it answered, before the
    current one); None where the answer is to the current trial. Otherwise why it cannot be taken."""
    current = trials.current
    answers_current = current is not None and current.index == given.index
    if not answers_current:
        replayed = _stored_answer(session, given.client_id)
        if replayed is not None:
            return replayed
    resumable(session)
    if session.consented_at is None:
        raise WrongStage("Please give your consent first.")
    if not answers_current:
        expected = "none" if current is None else current.index
        raise NotCurrentTrial(f"Trial {given.index} is not the current trial (current: {expected}).")
    return None


def _judged(session: Session, trials: Upcoming, given: _Answer) -> _Judged:
    """The answer judged against the current trial (the one it answers); refused sooner than the lock."""
    current = trials.current
    assert current is not None  # _replayed refuses an answer to no trial
    now = timezone.now()
    study = session.study
    server_ms = _check_timing(current, study.lock_ms, now)
    protocol = study.protocol_plugin
    try:
        fields = protocol.complete_answer(given.fields, study.protocol_params)
    except AnswerRefused as exc:
        raise InvalidAnswer(str(exc)) from exc
    maps = kept_maps(protocol.maps_read(current.key))
    return _Judged(current, protocol.judge(fields, current.key, study.protocol_params, maps), fields, server_ms, now)


def _response_fields(session: Session, given: _Answer, judged: _Judged) -> dict[str, Any]:
    return {
        "session": session,
        "session_trial": judged.trial,
        "client_id": given.client_id,
        "answer": judged.fields,
        "rt_ms": given.rt_ms,
        "server_ms": judged.server_ms,
        "correct": judged.verdict.correct,
        "score": judged.verdict.score,
        "geometry": _with_scale(given.geometry, session),
        "details": judged.verdict.details,
        "created_at": judged.at,
    }


def _store_if_current(session: Session, trials: Upcoming, given: _Answer, judged: _Judged) -> AnswerResult | None:
    """Stored with one statement, if the session is still where the answer was judged; None otherwise."""
    current, now = judged.trial, judged.at
    where = {
        "pk": session.pk,
        "answering": current.index,
        "client_id": given.client_id,
        "last_seen_at": now,
        "last_answer_at": now,
        "next_index": current.index + 1,
    }
    response = _ANSWERED_IF_CURRENT.run(where, **_response_fields(session, given, judged))
    if response is None:
        return None
    _moved_on(session, judged)
    return _result(response, trials.following)


def _moved_on(session: Session, judged: _Judged) -> None:
    """The session as an answer leaves it, on the trial after the answered one."""
    session.last_seen_at = session.last_answer_at = judged.at
    session.next_index = judged.trial.index + 1


def _store_locked(session: Session, trials: Upcoming, given: _Answer, judged: _Judged) -> tuple[AnswerResult, bool]:
    """Stored with the session's row locked; the next round planned where the answer ends its round."""
    current = judged.trial
    response = _RESPONSE.create_unless_conflict(**_response_fields(session, given, judged))
    if response is None:
        # The client_id answered an earlier trial (the session's row is locked, so not this one): that answer
        # is what the client_id names, and nothing was written.
        stored = _stored_answer(session, given.client_id)
        assert stored is not None
        return stored, False
    result = _result(response, trials.following)
    passed = result.practice is not None and result.practice["passed"]
    _moved_on(session, judged)
    if passed:
        session.phase = Session.Phase.MAIN
    elif result.practice is not None:
        session.practice_attempts += 1  # another round
    _ANSWERED.run(
        pk=session.pk,
        last_seen_at=session.last_seen_at,
        last_answer_at=session.last_answer_at,
        phase=session.phase,
        practice_attempts=session.practice_attempts,
        next_index=session.next_index,
    )
    # The answered trial was its round's last, so the next round starts right after it.
    if passed:
        plan_main_block(session, start=current.index + 1)
    elif result.practice is not None:
        plan_practice_round(session, start=current.index + 1)
    return result, True


def _with_scale(geometry: dict[str, Any], session: Session) -> dict[str, Any]:
    """The browser's geometry with the screen scale the page drew the trial at: the session's calibrated one,
    never the browser's word for it (none where the session has no calibration)."""
    shown = {key: value for key, value in geometry.items() if key != "px_per_mm"}
    if session.px_per_mm is not None:
        shown["px_per_mm"] = session.px_per_mm
    return shown


def decline_session(session: Session) -> None:
    """The participant does not agree: the unconsented session is deleted, with its events, so that
    nothing about them is kept (it held no units yet)."""
    with transaction.atomic():
        session = Session.objects.select_for_update().get(pk=session.pk)
        if session.consented_at is not None:
            raise WrongStage("You have already agreed to take part; you may stop at any time by closing this page.")
        session.delete()


def complete_session(session: Session, feedback: str = "") -> dict[str, Any]:
    """Close the session once every trial is answered, run the checks, and hand back."""
    with transaction.atomic():
        session = Session.objects.select_for_update().get(pk=session.pk)
        if session.status != Session.Status.COMPLETED:
            resumable(session)
            if session.phase != Session.Phase.MAIN or first_unanswered(session) is not None:
                raise WrongStage("Please answer every trial before completing.")
            session.status = Session.Status.COMPLETED
            session.completed_at = timezone.now()
            session.feedback = feedback
            # The session's own code, so that a code shows which session it belongs to (admin search).
            session.completion_code = secrets.token_hex(4).upper()
            # Signals comparing its answers with other participants' are stored first: checks may use them.
            compare_session(session)
            session.passed = checks.record_checks(session)
            session.save(update_fields=["status", "completed_at", "feedback", "completion_code", "passed"])
            if not session.passed:
                # A failing session does not count: its units go back to the pool.
                release_slots(Session.objects.filter(pk=session.pk))
    return {"completed": True, **recruiter_for(session.source).hand_back(session)}


# Which trials may be hand-picked for what: any screen of a unit as practice, only catch trials (their
# queries are copies of their references) as catch trials.
PICKABLE_KINDS = {"practice": (Trial.Kind.PRACTICE, Trial.Kind.MAIN), "catch": (Trial.Kind.CATCH,)}


@transaction.atomic
def pick_trials(study: Study, purpose: str, trial_ids: list[int]) -> int:
    """Hand-pick the study's practice or catch trials from any rendered study of its protocol; no ids
    gives the automatic choice back. Returns how many are picked; bad picks change nothing."""
    if purpose not in PICKABLE_KINDS:
        raise ValidationError(f"Trials are picked as practice or catch trials, not {purpose!r}.")
    kinds = PICKABLE_KINDS[purpose]
    trials = list(Trial.objects.filter(pk__in=set(trial_ids)).select_related("study"))
    problems = []
    if len(trials) < len(set(trial_ids)):
        problems.append("Some of the trials no longer exist.")
    if any(trial.kind not in kinds for trial in trials):
        problems.append(f"{purpose.capitalize()} trials are picked among {' and '.join(kinds)} trials.")
    if any(trial.study.protocol != study.protocol for trial in trials):
        problems.append(f"Only trials of {study.protocol} studies can be shown in this study.")
    if purpose == "catch" and trials and len(trials) < study.n_catch_trials:
        problems.append(f"Pick at least {study.n_catch_trials} catch trials (the study's n_catch_trials).")
    if problems:
        raise ValidationError(problems)
    getattr(study, f"{purpose}_trials").set(trials)
    return len(trials)
