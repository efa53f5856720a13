"""Rendering a localizability study: exemplars with overlays stored as PNGs beside the plain images,
queries with their maps kept on the server on the stored image's pixels."""

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image

from experiments.models import Trial, TrialImage
from experiments.rendering import render_study
from stimuli.kept_maps import as_array
from tests.factories import ImagePoolFactory, RenderableStudyFactory


@pytest.fixture(autouse=True)
def files_of_this_test(isolated_files):
    """Every render here writes to the test's own folders."""


@pytest.fixture
def study(tiny_model):
    study = RenderableStudyFactory(
        model=tiny_model,
        protocol="localizability",
        params={},
        image_pool=ImagePoolFactory(name="crops-40", size=40),
        image_size=64,
        resize_to=72,
        seed=3,
    )
    render_study(study)
    return study


@pytest.mark.django_db
def test_each_trial_has_six_exemplars_with_overlays_and_a_query(study):
    for trial in Trial.objects.filter(study=study):
        roles = sorted(trial.images.values_list("role", flat=True))
        assert roles == ["exemplar"] * 6 + ["exemplar_overlay"] * 6 + ["query", "query_overlay"]


@pytest.mark.django_db
def test_overlays_are_pngs_with_alpha_of_the_images_size(study):
    overlay = TrialImage.objects.filter(trial__study=study, role="exemplar_overlay").first()
    with default_storage.open(overlay.image.file) as handle:
        image = Image.open(io.BytesIO(handle.read()))
    assert overlay.image.file.endswith(".png") and image.mode == "RGBA" and image.size == (64, 64)
    plain = TrialImage.objects.get(trial=overlay.trial, role="exemplar", rank=overlay.rank)
    assert plain.image.file.endswith(".jpg") and (plain.image.width, plain.image.height) == (64, 64)


@pytest.mark.django_db
def test_only_queries_keep_their_map_on_the_stored_images_pixels(study):
    queries = TrialImage.objects.filter(trial__study=study, role="query")
    assert all(query.kept_map is not None for query in queries)
    assert not TrialImage.objects.filter(trial__study=study, kept_map__isnull=False).exclude(role="query").exists()
    values = as_array(queries.first().kept_map)
    assert values.shape == (64, 64) and np.isfinite(values).all()


@pytest.mark.django_db
def test_a_catch_query_is_mapped_on_its_own_disguised_pixels(study):
    catch = Trial.objects.filter(study=study, kind=Trial.Kind.CATCH).first()
    query = catch.images.get(role="query")
    shown = set(catch.images.filter(role="exemplar").values_list("image__sha256", flat=True))
    assert query.image.sha256 not in shown and query.kept_map.image_id == query.image_id
