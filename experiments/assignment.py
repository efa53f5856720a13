"""Which units a session answers: every unit fills up to its target evenly, never twice per session.

Assignment locks the study row, so concurrent session starts on PostgreSQL are
serialized per study (on SQLite the IMMEDIATE transaction mode does the same)
and can never over-assign a unit.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from experiments.errors import NoPlacesLeft
from experiments.models import Session, SessionUnit, Study, StudyUnit
from experiments.planning import session_rng


def release_slots(sessions: QuerySet[Session]) -> int:
    """Give the units held by these sessions back to the pool; returns how many slots."""
    return SessionUnit.objects.filter(session__in=sessions, released_at__isnull=True).update(
        released_at=timezone.now()
    )


def end_unfinished(sessions: QuerySet[Session], status: str) -> int:
    """End the active sessions among these (returned, abandoned) and free their slots; returns
    how many slots. A completed session keeps its slots: its answers count."""
    ended = list(sessions.filter(status=Session.Status.ACTIVE).values_list("pk", flat=True))
    if not ended:
        return 0
    # Filtered again: a session completed since the read above keeps its slots.
    Session.objects.filter(pk__in=ended, status=Session.Status.ACTIVE).update(status=status)
    return release_slots(Session.objects.filter(pk__in=ended, status=status))


def release_abandoned(study: Study) -> int:
    """Mark sessions silent for longer than the study's timeout abandoned and free their slots."""
    cutoff = timezone.now() - timedelta(minutes=study.slot_timeout_minutes)
    stale = Session.objects.filter(study=study, last_seen_at__lt=cutoff)
    return end_unfinished(stale, Session.Status.ABANDONED)


@transaction.atomic
def assign_units(session: Session) -> list[SessionUnit]:
    study = Study.objects.select_for_update().get(pk=session.study_id)
    release_abandoned(study)
    candidates = list(
        StudyUnit.objects.filter(study=study, role=StudyUnit.Role.MAIN).annotate(
            held=Count("slots", filter=Q(slots__released_at__isnull=True)),
            ever=Count("slots"),
        )
    )
    open_units = [u for u in candidates if u.held < study.target_per_unit]
    if len(open_units) < study.n_main_trials:
        raise NoPlacesLeft("This study has no places left. Thank you for your interest.")
    rng = session_rng(session, "assignment")
    open_units.sort(key=lambda u: (u.held, rng.random()))
    chosen = open_units[: study.n_main_trials]
    # IMI cycles through a unit's batches, so successive participants see different trials.
    return SessionUnit.objects.bulk_create(
        SessionUnit(session=session, study_unit=u, batch=u.ever % study.trials_per_unit)
        for u in chosen
    )
