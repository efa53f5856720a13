"""Whole studies for tests that go through sessions: units, trials, practice and catch trials."""

from __future__ import annotations

from typing import Any

from experiments.models import Study, StudyUnit, Trial
from tests.factories import StudyFactory, StudyUnitFactory, TrialFactory


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
