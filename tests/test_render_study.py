"""Rendering a study end to end: units, activations, trials, stored images; idempotent,
resumable, and through a real Celery worker on Redis.

A seeded random-weight timm `test_efficientnet` (160 px, fast on CPU) stands in
for the real network, which tests/test_network_loading.py covers.
"""

import hashlib
from collections import Counter

import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image

from experiments.models import Study, StudyUnit, Trial, TrialImage
from experiments.rendering import activation_path, render_study, sample_units
from protocols.two_afc.protocol import QUERY_NEGATIVE, QUERY_POSITIVE, REFERENCE_MAX, REFERENCE_MIN
from stimuli.models import StimulusImage
from tests.conftest import ended
from tests.factories import RenderableStudyFactory
from workers.models import Job
from workers.services import start_rendering

REFERENCE_ROLES = (REFERENCE_MIN, REFERENCE_MAX)
QUERY_ROLES = (QUERY_POSITIVE, QUERY_NEGATIVE)


@pytest.fixture(autouse=True)
def files_of_this_test(isolated_files):
    """Every render here writes to the test's own folders."""


@pytest.fixture
def study(tiny_model):
    return RenderableStudyFactory(model=tiny_model, seed=11)


def layout(study: Study) -> list[tuple]:
    """Everything a render decides, independent of row ids."""
    return sorted(
        TrialImage.objects.filter(trial__study=study).values_list(
            "trial__unit__layer", "trial__unit__channel", "trial__kind", "trial__batch",
            "trial__practice_level", "role", "rank", "image__sha256",
        )
    )


def stored_files() -> list[str]:
    return sorted(default_storage.listdir("stimuli")[1])


@pytest.mark.django_db
def test_units_are_sampled_once_main_then_practice(study):
    units = sample_units(study)
    assert [su.role for su in units] == ["main"] * 3 + ["practice"] * 2
    assert len({su.unit_id for su in units}) == 5
    assert sample_units(study) == units


@pytest.mark.django_db
def test_render_writes_main_catch_and_practice_trials(study):
    render_study(study)
    kinds = Counter(Trial.objects.filter(study=study).values_list("kind", "practice_level"))
    assert kinds == {("main", ""): 6, ("catch", ""): 3, ("practice", "obvious"): 1,
                     ("practice", "less_obvious"): 1}
    practice = Trial.objects.filter(study=study, kind="practice").values_list("practice_level", "difficulty")
    assert set(practice) == {("obvious", "easy"), ("less_obvious", "very_hard")}
    study.refresh_from_db()
    assert study.status == Study.Status.READY


@pytest.mark.django_db
def test_every_trial_has_nine_ranked_references_per_side_and_two_queries(study):
    render_study(study)
    for trial in Trial.objects.filter(study=study):
        slots = sorted(trial.images.values_list("role", "rank"))
        assert slots == sorted(
            [(role, rank) for role in REFERENCE_ROLES for rank in range(9)]
            + [(role, 0) for role in QUERY_ROLES]
        )


@pytest.mark.django_db
def test_rank_zero_is_the_most_extreme_reference(study):
    render_study(study)
    for trial in Trial.objects.filter(study=study, kind="main"):
        values = {
            role: list(trial.images.filter(role=role).order_by("rank").values_list("activation", flat=True))
            for role in (*REFERENCE_ROLES, *QUERY_ROLES)
        }
        assert values["reference_max"] == sorted(values["reference_max"], reverse=True)
        assert values["reference_min"] == sorted(values["reference_min"])
        assert values["reference_min"][-1] < values["query_negative"][0]
        assert values["query_positive"][0] < values["reference_max"][-1]


@pytest.mark.django_db
def test_stored_file_names_are_the_hash_of_their_bytes(study):
    render_study(study)
    images = StimulusImage.objects.all()
    assert images.exists()
    for image in images:
        with default_storage.open(image.file) as handle:
            content = handle.read()
        assert image.file == f"stimuli/{hashlib.sha256(content).hexdigest()}.jpg" == f"stimuli/{image.sha256}.jpg"
        assert Image.open(default_storage.open(image.file)).size == (224, 224)


@pytest.mark.django_db
def test_catch_queries_are_new_files_of_images_of_their_own_blocks(study):
    render_study(study)
    for trial in Trial.objects.filter(study=study, kind="catch"):
        references = {ti.image.file for ti in trial.images.filter(role__in=REFERENCE_ROLES)}
        for role, copied in [("query_positive", "reference_max"), ("query_negative", "reference_min")]:
            query = trial.images.get(role=role).image
            block = set(trial.images.filter(role=copied).values_list("image__source_key", flat=True))
            assert query.file not in references
            assert query.source_key in block


@pytest.mark.django_db
def test_a_rerun_creates_no_rows_and_no_files(study):
    render_study(study)
    before = (layout(study), StimulusImage.objects.count(), StudyUnit.objects.count(), stored_files())
    render_study(study)
    assert (layout(study), StimulusImage.objects.count(), StudyUnit.objects.count(), stored_files()) == before


class Crash(Exception):
    pass


def crash_once_mid_recording():
    crashed = []

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "recording activations" and 0 < done < total and not crashed:
            crashed.append(done)
            raise Crash

    return progress


@pytest.mark.django_db
def test_a_run_resumed_after_a_crash_equals_an_uninterrupted_one(study, tiny_model):
    with pytest.raises(Crash):
        render_study(study, progress=crash_once_mid_recording())
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT and not Trial.objects.filter(study=study).exists()
    render_study(study)

    uninterrupted = RenderableStudyFactory(model=tiny_model, seed=11)
    render_study(uninterrupted)
    assert layout(study) == layout(uninterrupted)
    np.testing.assert_allclose(
        np.load(activation_path(study)), np.load(activation_path(uninterrupted)), rtol=1e-5, atol=1e-6
    )


@pytest.mark.django_db
def test_an_eager_job_records_progress_and_finishes(study, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = start_rendering(study)
    job.refresh_from_db()
    assert (job.status, job.stage, job.done, job.total) == (Job.Status.DONE, "writing stimuli", 5, 5)
    assert job.started_at and job.finished_at


@pytest.mark.django_db
def test_a_failing_job_keeps_its_error(study, django_capture_on_commit_callbacks):
    study.params = {**study.params, "difficulty": "medium"}  # 64 crops are far too few for the 99th percentile
    study.save()
    with django_capture_on_commit_callbacks(execute=True):
        job = start_rendering(study)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "needs at least" in job.error
    assert not activation_path(study).exists()  # refused before recording anything
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_celery_worker_renders_a_study_queued_by_start_rendering(study, celery_worker_on_redis):
    job = ended(start_rendering(study), within_s=120)
    assert job.status == Job.Status.DONE, job.error
    assert Trial.objects.filter(study=study).count() == 11
