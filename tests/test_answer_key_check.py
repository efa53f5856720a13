"""The hard_units check through the API: a keyed bot among honest participants fails it, an honest
newcomer does not.

A 2-AFC study of 44 units (one main and one catch trial each) whose true
accuracies spread evenly from 0.55 to 0.95, and a crowd of 14 completed, passing
sessions that answered 40 of them each, each right with its unit's accuracy
(written straight to the database: the check reads only their answers), so that
about 13 answers of others back each unit. The bot answers every trial from the
true key, and the newcomer like the crowd, both through the API and paced as
people are (16 s of instructions, four minutes in all), so that they pass every
other check.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from experiments.models import Event, Response, Session, SessionTrial, Study, StudyUnit, Trial
from tests.builders import build_2afc_study
from tests.conftest import Participant

CROWD = 14


def take_part(study: Study, name: str, answers_right: Callable[[SessionTrial], bool]) -> Session:
    participant = Participant(study, name)
    participant.start()
    participant.through_instructions()
    participant.pass_practice()
    while not (trial := participant.trial().json())["done"]:
        planned = SessionTrial.objects.select_related("trial").get(session_id=participant.id, index=trial["index"])
        participant.answer_current(right=answers_right(planned))
    # Paced like a person: 16 s on the instructions, about four minutes in all.
    now = timezone.now()
    Session.objects.filter(pk=participant.id).update(consented_at=now - timedelta(minutes=4))
    events = participant.session.events
    events.filter(type=Event.Type.INSTRUCTIONS_START).update(created_at=now - timedelta(minutes=4))
    events.filter(type=Event.Type.INSTRUCTIONS_END).update(created_at=now - timedelta(minutes=4, seconds=-16))
    participant.complete()
    return participant.session


def honest(study: Study, rng: np.random.Generator) -> Callable[[SessionTrial], bool]:
    """Right on a main trial with its unit's accuracy, and on every catch trial."""
    units = StudyUnit.objects.filter(study=study, role=StudyUnit.Role.MAIN).order_by("order")
    accuracy = {su.unit_id: 0.55 + 0.4 * i / (len(units) - 1) for i, su in enumerate(units)}
    return lambda planned: planned.trial.kind != Trial.Kind.MAIN or bool(rng.random() < accuracy[planned.trial.unit_id])


@pytest.fixture
def crowd(db) -> Study:
    """The study, once its honest crowd has completed and passed."""
    study = build_2afc_study(n_units=44)
    main = list(Trial.objects.filter(study=study, kind=Trial.Kind.MAIN))
    rng = np.random.default_rng(0)
    answers_right = honest(study, rng)
    for number in range(CROWD):
        session = Session.objects.create(
            study=study, source="local", pseudonym=f"crowd-{number}", participant_id=f"crowd-{number}",
            status=Session.Status.COMPLETED, phase=Session.Phase.MAIN, passed=True,
        )
        planned = SessionTrial.objects.bulk_create(
            SessionTrial(session=session, index=index, trial=trial, phase=Session.Phase.MAIN, layout={}, key={"choice": 0})
            for index, trial in enumerate(rng.choice(main, study.n_main_trials, replace=False))
        )
        Response.objects.bulk_create(
            Response(session=session, session_trial=shown, client_id=uuid.uuid4(), rt_ms=1500,
                     answer={"choice": int(not right), "confidence": 2}, correct=right)
            for shown in planned
            for right in [answers_right(shown)]
        )
    return study


def test_an_honest_newcomer_passes_every_check(crowd):
    newcomer = take_part(crowd, "honest", honest(crowd, np.random.default_rng(1)))
    assert newcomer.passed, list(newcomer.checks.values_list("name", "value", "rule"))


def test_a_keyed_bot_among_honest_participants_fails_the_hard_units_check_alone(crowd):
    bot = take_part(crowd, "keyed-bot", lambda planned: True)
    checks = {check.name: check for check in bot.checks.all()}
    assert not checks["hard_units"].passed and checks["hard_units"].value < crowd.hard_units_max_p
    assert all(check.passed for name, check in checks.items() if name != "hard_units")
    assert bot.passed is False


def test_the_hard_units_check_says_what_it_tested(crowd):
    bot = take_part(crowd, "keyed-bot", lambda planned: True)
    rule = bot.checks.get(name="hard_units").rule
    assert rule.startswith("p >= 0.01 (") and rule.endswith("hardest units right)")


def test_the_first_sessions_are_untested_and_pass(db):
    study = build_2afc_study(n_units=44)
    check = take_part(study, "first", lambda planned: True).checks.get(name="hard_units")
    assert (check.value, check.passed) == (1.0, True) and check.rule.startswith("untested")


def test_a_threshold_of_zero_turns_the_check_off(crowd):
    Study.objects.filter(pk=crowd.pk).update(hard_units_max_p=0)
    assert take_part(crowd, "keyed-bot", lambda planned: True).checks.get(name="hard_units").passed
