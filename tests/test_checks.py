"""The exclusion checks (docs/protocols.md §4), stored per session when it completes."""

from datetime import timedelta

import pytest
from django.utils import timezone

from experiments.models import Event, Response, Session, SessionCheck, Trial


@pytest.fixture
def finished(participant):
    """A careful participant: 20 s of instructions, 10 minutes in all, answers spread over both positions."""
    participant.through_instructions()
    participant.pass_practice()
    participant.answer_all()
    now = timezone.now()
    Session.objects.filter(pk=participant.id).update(consented_at=now - timedelta(minutes=10))
    events = participant.session.events
    events.filter(type=Event.Type.INSTRUCTIONS_START).update(created_at=now - timedelta(minutes=9))
    events.filter(type=Event.Type.INSTRUCTIONS_END).update(
        created_at=now - timedelta(minutes=9) + timedelta(seconds=20)
    )
    return participant


def checks_of(participant) -> dict[str, SessionCheck]:
    participant.complete()
    return {check.name: check for check in participant.session.checks.all()}


def test_a_careful_session_passes_every_check(finished):
    checks = checks_of(finished)
    assert set(checks) == {
        "practice_attempts", "instruction_time", "catch_trials", "total_time", "position_bias", "lock_boundary",
        "timing_regularity", "hard_units",
    }
    assert all(check.passed for check in checks.values())
    assert finished.session.passed is True


def test_more_than_three_practice_attempts_fail(finished):
    Session.objects.filter(pk=finished.id).update(practice_attempts=4)
    check = checks_of(finished)["practice_attempts"]
    assert (check.value, check.passed) == (4, False)


def test_less_than_fifteen_seconds_of_instructions_fail(finished):
    end = finished.session.events.get(type=Event.Type.INSTRUCTIONS_END)
    start = finished.session.events.get(type=Event.Type.INSTRUCTIONS_START)
    Event.objects.filter(pk=end.pk).update(created_at=start.created_at + timedelta(seconds=14))
    check = checks_of(finished)["instruction_time"]
    assert check.value == pytest.approx(14) and not check.passed


def test_fewer_than_four_correct_catch_trials_fail(finished):
    catch = Response.objects.filter(session_id=finished.id, session_trial__trial__kind=Trial.Kind.CATCH)
    Response.objects.filter(pk__in=list(catch.values_list("pk", flat=True))[:2]).update(correct=False)
    check = checks_of(finished)["catch_trials"]
    assert (check.value, check.passed) == (3, False)


def test_a_session_faster_than_135_seconds_fails(finished):
    Session.objects.filter(pk=finished.id).update(consented_at=timezone.now() - timedelta(seconds=100))
    check = checks_of(finished)["total_time"]
    assert check.value < 135 and not check.passed


def test_a_session_slower_than_2500_seconds_fails(finished):
    Session.objects.filter(pk=finished.id).update(consented_at=timezone.now() - timedelta(seconds=2600))
    assert not checks_of(finished)["total_time"].passed


def test_choosing_one_position_almost_always_fails(finished):
    main = Response.objects.filter(session_id=finished.id, session_trial__phase="main")
    main.update(answer={"choice": 0, "confidence": 3})
    Response.objects.filter(pk__in=list(main.values_list("pk", flat=True))[:4]).update(
        answer={"choice": 1, "confidence": 3}
    )
    check = checks_of(finished)["position_bias"]
    assert (check.value, check.passed) == (4, False)


def test_a_study_s_own_thresholds_are_used(finished):
    finished.study.min_instruction_s = 30
    finished.study.save()
    assert not checks_of(finished)["instruction_time"].passed
