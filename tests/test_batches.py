"""IMI's batches: t trials are rendered per unit, only the first n are shown, each answered equally
often; slots given back by failing or abandoned sessions are refilled on the batch they held."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from experiments.models import Session, SessionUnit, Study
from experiments.rendering import render_study
from tests.conftest import Participant
from tests.factories import ImagePoolFactory, RenderableStudyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def imi_batches(isolated_files, tiny_model) -> Study:
    """t = 20 of which 10 are used, 30 answers per unit: 3 per used batch."""
    study = RenderableStudyFactory(
        model=tiny_model,
        image_pool=ImagePoolFactory(name="crops-420", size=420),
        n_units=4,
        trials_per_unit=20,
        batches_used=10,
        target_per_unit=30,
        n_main_trials=4,
        n_catch_trials=1,
        n_practice_trials=1,
        params={"n_practice_obvious": 1, "min_catch_correct": 1, "min_position_count": 0},
        min_instruction_s=0,
        min_total_s=0,
    )
    render_study(study)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.OPEN)
    study.refresh_from_db()
    return study


def run_session(study: Study, name: str, *, fail: bool = False, abandon: bool = False) -> None:
    participant = Participant(study, name)
    participant.start()
    participant.through_instructions()
    participant.pass_practice()
    if abandon:
        participant.answer_current()
        Session.objects.filter(pk=participant.id).update(last_answer_at=timezone.now() - timedelta(hours=1))
        return
    # A failing session gets every main trial wrong, its catch trial included.
    participant.answer_all(right=not fail)
    participant.complete()


def test_every_used_batch_ends_with_the_same_number_of_passing_answers_and_unused_ones_with_none(imi_batches):
    study = imi_batches
    number = 0
    while Session.objects.filter(study=study, passed=True).count() < 30:
        number += 1
        run_session(study, f"p{number}", fail=number % 5 == 0, abandon=number % 7 == 0)
    assert Session.objects.filter(study=study, passed=False).exists()
    assert Session.objects.filter(study=study, status=Session.Status.ABANDONED).exists()

    passing = Counter(
        SessionUnit.objects.filter(session__study=study, session__passed=True).values_list("study_unit", "batch")
    )
    units = study.study_units.filter(role="main").values_list("pk", flat=True)
    assert passing == {(unit, batch): 3 for unit in units for batch in range(10)}
    assert not SessionUnit.objects.filter(session__study=study, batch__gte=10).exists()
    assert study.trials.filter(kind="main").count() == 4 * 20  # all t rendered, for the reference pools


def test_the_used_batches_cannot_exceed_the_rendered_ones():
    study = RenderableStudyFactory.build(trials_per_unit=5, batches_used=6)
    with pytest.raises(ValidationError, match="Cannot exceed the trials"):
        study.clean()
