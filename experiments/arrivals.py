"""Who may start a session or resume one.

A start holds nothing: units are held only once the participant consents (see
services.record_event), so that made-up arrivals cannot fill a study. Starts are
limited per client address (a rate, and a cap on the sessions active at once);
arrivals from links the platform signed are exempt, so that a lab whose
participants share one address is never blocked. Resuming takes the recruiter's
own ids of the session (MTurk's assignment, Prolific's session), which only the
participant has. Refusals are counted per study, reason and day for the admin.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from experiments.admission import ARRIVALS
from experiments.assignment import NO_PLACES_LEFT, has_open_places, release_abandoned
from experiments.errors import AlreadyTakenPart, InvalidArrival, NoPlacesLeft, StudyUnavailable, TooManyRequests
from experiments.limits import retry_after
from experiments.models import Session, StartRefusal, Study
from experiments.planning import plan_practice_round
from experiments.pseudonyms import pseudonymize
from experiments.recruiters import Arrival, ArrivalRefused, recruiter_for


def resumable(session: Session) -> Session:
    """The session, if it can go on; otherwise why not (with the hand-back again for a completed one)."""
    if session.status == Session.Status.COMPLETED:
        # The hand-back again, so that a worker whose submission got lost can submit once more.
        raise AlreadyTakenPart(
            "You have already completed this study. Thank you!",
            hand_back=recruiter_for(session.source).hand_back(session),
        )
    if session.status != Session.Status.ACTIVE:
        raise AlreadyTakenPart("This session has expired and cannot be resumed.")
    return session


def count_refusal(study: Study, reason: str) -> None:
    day = timezone.now().date()
    counted = StartRefusal.objects.filter(study=study, reason=reason, day=day).update(count=F("count") + 1)
    if not counted:
        try:
            with transaction.atomic():
                StartRefusal.objects.create(study=study, reason=reason, day=day, count=1)
        except IntegrityError:  # another refusal created the row meanwhile
            StartRefusal.objects.filter(study=study, reason=reason, day=day).update(count=F("count") + 1)


def _refuse(study: Study, reason: str, error: Exception) -> Exception:
    count_refusal(study, reason)
    return error


def _open_study(slug: str) -> Study:
    # Cached (Study.cached): arrivals come in bursts when a study is published, and each needs the study.
    study = Study.cached_by_slug(slug)
    if study is None:
        raise StudyUnavailable(f"There is no study {slug!r}.")
    if study.status != Study.Status.OPEN:
        raise StudyUnavailable("This study is not open to participants.")
    return study


def _arrival(study: Study, data: dict[str, Any]) -> Arrival:
    source = data.get("source") or ""
    try:
        recruiter = recruiter_for(source)
        if source != study.recruiter:
            # Such a session would hold units without ever counting toward the target or being paid.
            where = recruiter_for(study.recruiter).label
            raise ArrivalRefused(f"This link cannot start this study: it takes participants only through {where}.")
        return recruiter.arrival(study, data)
    except ArrivalRefused as exc:
        raise _refuse(study, exc.reason, exc) from None
    except ValueError as exc:
        # Recruiters reject their own malformed fields with ValueError.
        raise InvalidArrival(str(exc)) from exc


def _limit_starts(study: Study, address: str) -> None:
    wait = retry_after("starts", address, settings.RATE_LIMIT_STARTS)
    if wait is not None:
        raise _refuse(
            study,
            StartRefusal.Reason.RATE,
            TooManyRequests(
                f"Too many studies were started from your network. Please try again in {wait} seconds.",
                retry_after=wait,
            ),
        )


def _limit_sessions(study: Study, address: str) -> None:
    active = Session.objects.filter(address=address, status=Session.Status.ACTIVE).count()
    if active >= settings.MAX_ACTIVE_SESSIONS_PER_ADDRESS:
        raise _refuse(
            study,
            StartRefusal.Reason.SESSIONS,
            TooManyRequests(
                "Too many sessions are open from your network at once. Please finish one, or try again later."
            ),
        )


@ARRIVALS.turn()
def start_session(slug: str, data: dict[str, Any], address: str) -> tuple[Session, bool]:
    """Start a session for an arriving participant, or resume theirs; returns (session, created).

    address is the client's address as a keyed hash (experiments.addresses).
    """
    study = _open_study(slug)
    arrival = _arrival(study, data)
    recruiter = recruiter_for(study.recruiter)
    if not arrival.signed:
        _limit_starts(study, address)
    pseudonym = pseudonymize(study.recruiter, arrival.participant_id)
    existing = Session.objects.filter(study=study, pseudonym=pseudonym).first()
    if existing:
        if existing.external != arrival.external:
            raise AlreadyTakenPart(
                "You already have a session in this study, started from another link "
                "(another assignment or submission): please go back to that one."
            )
        return resumable(existing), False
    if recruiter.has_taken_part(study, arrival.participant_id):
        raise AlreadyTakenPart("You have already taken part in a related study. Thank you!")
    release_abandoned(study)
    if not arrival.signed:
        _limit_sessions(study, address)
    if not has_open_places(study):
        raise _refuse(study, StartRefusal.Reason.FULL, NoPlacesLeft(NO_PLACES_LEFT))
    try:
        with transaction.atomic():
            session = Session.objects.create(
                study=study,
                source=study.recruiter,
                pseudonym=pseudonym,
                participant_id=arrival.participant_id,
                external=arrival.external,
                address=address,
                signed_link=arrival.signed,
                practice_attempts=1,
            )
            plan_practice_round(session, start=0)
            recruiter.session_started(session)
    except IntegrityError:
        # The same participant started twice at once: the other request won.
        return resumable(Session.objects.get(study=study, pseudonym=pseudonym)), False
    return session, True
