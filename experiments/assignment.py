"""Which units a session answers: every unit fills up to its target evenly, never twice per session.

A session holds units from its consent on, while its answers keep coming: one
silent for the study's slot timeout (events do not count), or that never
consented within the consent timeout, lapses and gives its units back.

Assignment locks the study row, so concurrent session starts on PostgreSQL are
serialized per study (on SQLite the IMMEDIATE transaction mode does the same)
and can never over-assign a unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from experiments.errors import NoPlacesLeft
from experiments.models import Session, SessionUnit, Study, StudyUnit
from experiments.planning import session_rng

NO_PLACES_LEFT = "This study has no places left. Thank you for your interest."


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


def lapsed(study: Study) -> QuerySet[Session]:
    """Sessions of the study that no longer hold anything: unconsented or silent past the timeouts."""
    now = timezone.now()
    unconsented = Q(consented_at__isnull=True, created_at__lt=now - timedelta(minutes=study.consent_timeout_minutes))
    silent = Q(consented_at__isnull=False, last_answer_at__lt=now - timedelta(minutes=study.slot_timeout_minutes))
    return Session.objects.filter(unconsented | silent, study=study, status=Session.Status.ACTIVE)


def release_abandoned(study: Study) -> int:
    """Mark the study's lapsed sessions abandoned and free their slots; returns how many slots."""
    return end_unfinished(lapsed(study), Session.Status.ABANDONED)


@dataclass(frozen=True)
class _OpenUnit:
    study_unit_id: int
    held: int  # slots held now


def _open_units(study: Study) -> list[_OpenUnit]:
    candidates = (
        StudyUnit.objects.filter(study=study, role=StudyUnit.Role.MAIN)
        .annotate(held=Count("slots", filter=Q(slots__released_at__isnull=True)))
        .values_list("pk", "held")
    )
    return [_OpenUnit(*row) for row in candidates if row[1] < study.target_per_unit]


def has_open_places(study: Study) -> bool:
    """Whether a session starting now could be given its main block (nothing is held by asking)."""
    return len(_open_units(study)) >= study.n_main_trials


def assign_units(session: Session) -> list[SessionUnit]:
    """Hold the session's main units. Runs in the caller's transaction (the consent's), which keeps the
    study's row locked until it commits; the study's settings are those the session was read with
    (Study.cached, at most STUDY_CACHE_S old), so the lock reads nothing but the row's key."""
    study = session.study
    # Outside a transaction Django refuses select_for_update, so a caller cannot forget one.
    list(Study.objects.select_for_update().filter(pk=study.pk).values_list("pk", flat=True))
    release_abandoned(study)
    open_units = _open_units(study)
    if len(open_units) < study.n_main_trials:
        raise NoPlacesLeft(NO_PLACES_LEFT)
    rng = session_rng(session, "assignment")
    open_units.sort(key=lambda u: (u.held, rng.random()))
    chosen = [u.study_unit_id for u in open_units[: study.n_main_trials]]
    batches = _emptiest_batches(chosen, study.batches_in_use)
    return SessionUnit.objects.bulk_create(
        SessionUnit(session=session, study_unit_id=unit, batch=batches[unit]) for unit in chosen
    )


def _emptiest_batches(study_units: list[int], n_batches: int) -> dict[int, int]:
    """For each unit, the used batch holding the fewest slots now (the lowest first on a tie).

    Held slots are the answers that count or may still count, so every used batch of a unit
    ends with the same number of passing answers, and a slot a failing or abandoned session
    gave back is refilled on its batch.
    """
    held: dict[int, list[int]] = {unit: [0] * n_batches for unit in study_units}
    rows = (
        SessionUnit.objects.filter(study_unit__in=study_units, released_at__isnull=True, batch__lt=n_batches)
        .values_list("study_unit", "batch")
        .annotate(n=Count("pk"))
    )
    for unit, batch, count in rows:
        held[unit][batch] = count
    return {unit: counts.index(min(counts)) for unit, counts in held.items()}
