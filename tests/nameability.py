"""Nameability studies for the tests: a small describe study rendered on the tiny model, participants who name
its units, and the verify study built from it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from experiments.models import Session, SessionTrial, Study
from experiments.rendering import render_study
from tests.conftest import Participant
from tests.factories import ImagePoolFactory, StudyFactory

# 200 crops of scikit-image's 8 photographs: about 25 of each known concept.
DESCRIBE = {
    "protocol": "nameability",
    "status": Study.Status.DRAFT,
    "n_units": 5,
    "trials_per_unit": 2,
    "n_main_trials": 4,
    "n_catch_trials": 2,
    "n_practice_trials": 2,
    "main_feedback": False,
    "min_instruction_s": 0,
    "min_total_s": 0,
    "params": {"n_exemplars": 4, "n_held_out": 2, "min_catch_correct": 1},
}


def rendered_describe_study(model: Any, **changes: Any) -> Study:
    study = StudyFactory(
        model=model, image_pool=ImagePoolFactory(name="crops-200", size=200), **{**DESCRIBE, **changes}
    )
    render_study(study)
    study.status = Study.Status.OPEN
    study.save()
    return study


class Namer(Participant):
    """A participant of a describe study: practice and catch sets get their label, units a name of `naming`."""

    def __init__(self, study: Study, participant: str, naming: Callable[[SessionTrial], str]) -> None:
        super().__init__(study, participant)
        self.naming = naming

    def name(self, index: int, text: str, **signals: Any):
        body = {"index": index, "text": text, "rt_ms": 4000, "client_id": str(uuid.uuid4()),
                "keystrokes": len(text), "typing_ms": 3000, **signals}
        return self.client.post(self.url("/responses"), body, format="json")

    def name_current(self, **signals: Any):
        index = self.trial().json()["index"]
        planned = SessionTrial.objects.select_related("trial").get(session_id=self.id, index=index)
        text = planned.key.get("label") or self.naming(planned)
        return self.name(index, text, **signals)

    def take_whole_session(self) -> Session:
        self.start()
        self.through_instructions()
        while not self.trial().json()["done"]:
            assert self.name_current().status_code == 201
        assert self.complete().status_code == 200
        return self.session


def spelled(unit_id: int) -> str:
    """A unit's id spelled out: "one two" for unit 12."""
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    return " ".join(words[int(digit)] for digit in str(unit_id))


def unit_names(trial: SessionTrial) -> str:
    """A name per unit (its id spelled out), the same for every participant."""
    return spelled(trial.trial.unit_id)


def answered_describe_study(model: Any, participants: int = 3) -> Study:
    study = rendered_describe_study(model, target_per_unit=participants)
    for number in range(participants):
        session = Namer(study, f"namer-{number}", unit_names).take_whole_session()
        assert session.passed, list(session.checks.filter(passed=False).values_list("name", "rule"))
    return study
