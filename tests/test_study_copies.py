"""Copying a study with its stimuli, from the service and from the admin."""

import pytest
from django.core.exceptions import ValidationError

from experiments.copies import copy_study
from experiments.models import Study, TrialImage
from tests.builders import build_2afc_study
from tests.conftest import Participant

pytestmark = pytest.mark.django_db


def image_slots(study: Study) -> list[tuple]:
    return sorted(
        TrialImage.objects.filter(trial__study=study).values_list(
            "trial__unit_id", "trial__kind", "trial__batch", "role", "rank", "image_id"
        )
    )


def test_a_copy_has_the_originals_parameters_units_and_trials_sharing_its_images():
    original = build_2afc_study(n_units=6, n_main_trials=4, target_per_unit=7, min_total_s=100)

    copy = copy_study(original, "rerun", recruiter="mturk", status=Study.Status.OPEN)

    assert (copy.target_per_unit, copy.min_total_s, copy.recruiter, copy.status) == (7, 100, "mturk", "open")
    assert sorted(copy.study_units.values_list("unit_id", "role")) == sorted(
        original.study_units.values_list("unit_id", "role")
    )
    assert image_slots(copy) == image_slots(original)


def test_a_copy_of_a_rendered_study_is_ready_with_its_own_code_and_no_sessions():
    original = build_2afc_study(n_units=6, n_main_trials=4)
    Participant(original, "alice").start()

    copy = copy_study(original, "rerun")

    assert copy.status == Study.Status.READY
    assert copy.completion_code and copy.completion_code != original.completion_code
    assert not copy.sessions.exists()


def test_a_study_still_rendering_is_not_copied():
    original = build_2afc_study(n_units=6, n_main_trials=4, status=Study.Status.RENDERING)
    with pytest.raises(ValidationError, match="still rendering"):
        copy_study(original, "rerun")


def test_a_slug_already_taken_is_refused_and_nothing_is_copied():
    original = build_2afc_study(n_units=6, n_main_trials=4)
    with pytest.raises(ValidationError, match="slug"):
        copy_study(original, original.slug)
    assert Study.objects.count() == 1


def test_the_admin_copies_a_study_under_a_free_slug(admin_client):
    original = build_2afc_study(n_units=6, n_main_trials=4, slug="imi")
    copy_study(original, "imi-copy")

    response = admin_client.post(
        "/admin/experiments/study/", {"action": "copy_studies", "_selected_action": [original.pk]}, follow=True
    )

    assert response.status_code == 200
    assert Study.objects.get(slug="imi-copy-2").trials.count() == original.trials.count()
