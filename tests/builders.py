"""Whole studies for tests that go through sessions: units, trials, practice and catch trials."""

from __future__ import annotations

from typing import Any

from experiments.models import Study, StudyUnit, Trial
from experiments.rendering import render_study
from stimuli.models import VisionModel
from tests.factories import ImagePoolFactory, RenderableStudyFactory, StudyFactory, StudyUnitFactory, TrialFactory


def build_2afc_study(n_units: int = 44, **study_fields: Any) -> Study:
    """An open 2-AFC study with n_units main units (one main and one catch trial each) and practice."""
    study = StudyFactory(n_units=n_units, trials_per_unit=1, **study_fields)
    for _ in range(n_units):
        study_unit = StudyUnitFactory(study=study)
        TrialFactory(study=study, unit=study_unit.unit, kind=Trial.Kind.MAIN)
        TrialFactory(study=study, unit=study_unit.unit, kind=Trial.Kind.CATCH)
    for number in range(study.n_practice_trials):
        study_unit = StudyUnitFactory(study=study, role=StudyUnit.Role.PRACTICE)
        obvious = number < study.protocol_params.n_practice_obvious
        TrialFactory(
            study=study,
            unit=study_unit.unit,
            kind=Trial.Kind.PRACTICE,
            practice_level=Trial.PracticeLevel.OBVIOUS if obvious else Trial.PracticeLevel.LESS_OBVIOUS,
        )
    return study


def render_localizability_study(model: VisionModel, **study_fields: Any) -> Study:
    """An open localizability study rendered on `model` (the tests' tiny network): 64 px stimuli from
    40 crops, 4 main units at t = 1 with a catch trial each, 2 practice units."""
    fields: dict[str, Any] = {
        "protocol": "localizability",
        "params": {},
        "model": model,
        "image_pool": ImagePoolFactory(name="crops-40", size=40),
        "image_size": 64,
        "resize_to": 72,
        "n_units": 4,
        "trials_per_unit": 1,
        "n_main_trials": 4,
        "n_catch_trials": 2,
        "n_practice_trials": 2,
        "seed": 5,
        **study_fields,
    }
    study = RenderableStudyFactory(**fields)
    render_study(study)
    study.status = Study.Status.OPEN
    study.save()
    return study
