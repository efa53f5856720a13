"""Which units a session gets: evenly up to the target, never twice, slots released when abandoned."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.utils import timezone

from experiments.models import Session, SessionUnit
from tests.builders import build_2afc_study
from tests.conftest import Participant


def held_per_unit(study) -> Counter:
    return Counter(
        SessionUnit.objects.filter(session__study=study, released_at__isnull=True).values_list(
            "study_unit", flat=True
        )
    )


def test_a_session_holds_nothing_before_consent(participant):
    assert not participant.session.slots.exists()


def test_a_session_holds_forty_distinct_units_from_its_consent(participant):
    participant.event("consent")
    units = participant.session.slots.values_list("study_unit", flat=True)
    assert len(units) == 40 and len(set(units)) == 40


def test_units_fill_evenly(db):
    study = build_2afc_study(n_units=44, target_per_unit=10)
    for number in range(11):
        Participant(study, f"p{number}").take_part()
    counts = held_per_unit(study)
    assert max(counts.values()) - min(counts.values()) <= 1
    assert sum(counts.values()) == 11 * 40


def test_a_full_study_refuses_new_participants(db):
    study = build_2afc_study(n_units=44, target_per_unit=1)
    assert Participant(study, "first").take_part().status_code == 201
    response = Participant(study, "second").start()
    assert response.status_code == 409
    assert "no places left" in response.json()["error"]
    assert Session.objects.count() == 1


def test_a_participant_who_consents_after_the_last_places_went_is_told_and_holds_nothing(db):
    study = build_2afc_study(n_units=44, target_per_unit=1)
    late = Participant(study, "late")
    late.start()
    Participant(study, "first").take_part()
    response = late.event("consent")
    assert response.status_code == 409 and "no places left" in response.json()["error"]
    assert late.session.status == Session.Status.ABANDONED and not late.session.slots.exists()


def test_an_abandoned_session_gives_its_slots_back(db):
    study = build_2afc_study(n_units=44, target_per_unit=1, slot_timeout_minutes=30)
    first = Participant(study, "first")
    first.take_part()
    Session.objects.update(last_answer_at=timezone.now() - timedelta(minutes=31))
    assert Participant(study, "second").take_part().status_code == 201
    assert first.session.status == Session.Status.ABANDONED
    assert max(held_per_unit(study).values()) == 1


def test_events_do_not_keep_a_silent_session_holding_its_units(db):
    study = build_2afc_study(n_units=44, target_per_unit=1, slot_timeout_minutes=30)
    first = Participant(study, "first")
    first.take_part()
    Session.objects.update(last_answer_at=timezone.now() - timedelta(minutes=31))
    first.event("focus")
    first.event("blur")
    assert Participant(study, "second").take_part().status_code == 201
    assert first.session.status == Session.Status.ABANDONED


def test_an_answer_keeps_a_session_holding_its_units(db):
    study = build_2afc_study(n_units=44, target_per_unit=1, slot_timeout_minutes=30)
    first = Participant(study, "first")
    first.start()
    first.through_instructions()
    Session.objects.update(last_answer_at=timezone.now() - timedelta(minutes=31))
    first.answer_current()
    assert Participant(study, "second").start().status_code == 409
    assert first.session.status == Session.Status.ACTIVE


def test_a_session_that_never_consents_lapses_after_the_consent_timeout(db):
    study = build_2afc_study(n_units=44, target_per_unit=1, consent_timeout_minutes=10)
    idle = Participant(study, "idle")
    idle.start()
    Session.objects.update(created_at=timezone.now() - timedelta(minutes=11))
    Participant(study, "second").start()
    assert idle.session.status == Session.Status.ABANDONED


def test_an_abandoned_participant_cannot_resume(db):
    study = build_2afc_study(n_units=44, target_per_unit=1, slot_timeout_minutes=30)
    Participant(study, "first").take_part()
    Session.objects.update(last_answer_at=timezone.now() - timedelta(minutes=31))
    Participant(study, "second").take_part()
    response = Participant(study, "first").start()
    assert response.status_code == 409
    assert "expired" in response.json()["error"]


def test_a_session_failing_the_checks_gives_its_slots_back(participant):
    participant.through_instructions()
    participant.pass_practice()
    participant.answer_all()
    participant.complete()
    assert participant.session.passed is False
    assert not held_per_unit(participant.study)


def test_successive_participants_see_successive_batches_of_a_unit(db):
    study = build_2afc_study(n_units=40, target_per_unit=3)
    study.trials_per_unit = 2
    study.save()
    for number in range(3):
        Participant(study, f"p{number}").take_part()
    batches = Counter(SessionUnit.objects.values_list("batch", flat=True))
    assert batches == {0: 80, 1: 40}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sessions_never_over_assign(live_server, settings):
    assert connection.vendor == "postgresql"
    # All at once: the database alone keeps the count (server processes each let arrivals in by turns).
    settings.ARRIVALS_AT_ONCE = 0
    study = build_2afc_study(n_units=48, target_per_unit=16)

    def consent(number: int) -> int:
        """201 once consented; 409 when turned away, at consent or, once 19 others consented, already at start."""
        body = {"study": study.slug, "source": "local", "participant": f"c{number}"}
        start = requests.post(f"{live_server.url}/api/v1/sessions", json=body, timeout=60)
        if start.status_code != 201:
            return start.status_code
        started = start.json()
        return requests.post(
            f"{live_server.url}/api/v1/sessions/{started['id']}/events",
            json={"type": "consent"},
            headers={"Authorization": f"Bearer {started['token']}"},
            timeout=60,
        ).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(consent, range(20)))

    # 48 units x 16 places / 40 units per session = 19 full sessions.
    assert Counter(statuses) == {201: 19, 409: 1}
    assert max(held_per_unit(study).values()) <= 16
    for session in Session.objects.filter(consented_at__isnull=False):
        units = list(session.slots.values_list("study_unit", flat=True))
        assert len(units) == len(set(units)) == 40
