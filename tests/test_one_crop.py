"""One crop: the network ranks the pool by exactly the pixels a participant sees.

A rendered study's recorded activation of every stored image is the network's output on the crop
that was stored (the study's resize and centre crop, before JPEG encoding), and the ranking
behind every trial survives decoding the stored file. Measured on the seeded random-weight
`test_efficientnet` with 64 scikit-image crops (resize 200, crop 176): the recorded activations
(batches of 16) and the recomputed ones (one image at a time) differed by at most 1.5e-8 (asserted
within 1e-5); decoding the stored JPEG (quality 90) moved an activation by at most 2.0% of its unit's
range over the stored images (median 0.13%), never enough to swap a trial's queries or blocks.
"""

import io
import json
import zipfile

import numpy as np
import pytest
import torch
from django.core.files.storage import default_storage
from PIL import Image

from experiments.export.bundle import write_bundle
from experiments.models import Study, Trial, TrialImage
from experiments.rendering import ranking_network, render_study
from protocols.two_afc.protocol import QUERY_NEGATIVE, QUERY_POSITIVE, REFERENCE_MAX, REFERENCE_MIN
from stimuli.networks import Network, ShownCrop, hooked
from stimuli.pools import open_pool
from stimuli.storage import resized_and_cropped
from tests.factories import RenderableStudyFactory

TOLERANCE = 1e-5


@pytest.fixture(autouse=True)
def files_of_this_test(isolated_files):
    """Every render here writes to the test's own folders."""


@pytest.fixture
def rendered(tiny_model, db) -> Study:
    study = RenderableStudyFactory(model=tiny_model, seed=5, resize_to=200, image_size=176)
    render_study(study)
    return study


def activation(network: Network, pixels: torch.Tensor, layer: str, channel: int) -> float:
    """The unit's activation (its channel's mean over space) for one (3, H, W) uint8 image."""
    seen: list[torch.Tensor] = []
    with hooked(network.module, [layer], lambda _layer, output: seen.append(output)), torch.inference_mode():
        network.module(network.inputs(pixels[None]))
    return float(seen[0][0, channel].mean())


def stored_pixels(name: str) -> torch.Tensor:
    with default_storage.open(name) as stored:
        pixels = np.array(Image.open(io.BytesIO(stored.read())).convert("RGB"))
    return torch.from_numpy(pixels).permute(2, 0, 1)


def original_images(study: Study):
    """Every stored original (not a catch trial's disguised copy) with its trial's unit."""
    return (
        TrialImage.objects.filter(trial__study=study)
        .exclude(trial__kind=Trial.Kind.CATCH, role__in=[QUERY_POSITIVE, QUERY_NEGATIVE])
        .select_related("image", "trial__unit")
    )


@pytest.mark.django_db
def test_the_network_is_given_the_shown_crop(rendered):
    network = ranking_network(rendered)
    assert network.transform == ShownCrop(200, 176) and network.input_size == (3, 176, 176)
    assert rendered.ranking_input["crop"] == "shown"
    assert (rendered.ranking_input["resize_to"], rendered.ranking_input["image_size"]) == (200, 176)


@pytest.mark.django_db
def test_each_recorded_activation_is_the_networks_output_on_the_stored_crop(rendered):
    network = ranking_network(rendered)
    pool = open_pool(rendered.image_pool)
    for image in original_images(rendered):
        crop = resized_and_cropped(pool.load(image.image.source_key), rendered.resize_to, rendered.image_size)
        pixels = torch.from_numpy(np.array(crop)).permute(2, 0, 1)
        expected = activation(network, pixels, image.trial.unit.layer, image.trial.unit.channel)
        assert image.activation == pytest.approx(expected, rel=TOLERANCE, abs=TOLERANCE)


@pytest.mark.django_db
def test_every_trials_ranking_survives_decoding_the_stored_files(rendered):
    network = ranking_network(rendered)
    by_trial: dict[int, dict[str, list[float]]] = {}
    for image in original_images(rendered).filter(trial__kind=Trial.Kind.MAIN):
        value = activation(network, stored_pixels(image.image.file), image.trial.unit.layer, image.trial.unit.channel)
        by_trial.setdefault(image.trial_id, {}).setdefault(image.role, []).append(value)
    assert by_trial
    for roles in by_trial.values():
        assert roles[QUERY_POSITIVE][0] > roles[QUERY_NEGATIVE][0]
        assert min(roles[REFERENCE_MAX]) > max(roles[REFERENCE_MIN])


@pytest.mark.django_db
def test_a_study_ranking_by_the_models_own_crop_says_so_in_the_datasheet(tiny_model):
    study = RenderableStudyFactory(model=tiny_model, seed=5, ranking_crop=Study.RankingCrop.MODEL)
    render_study(study)
    out = io.BytesIO()
    write_bundle([study], out)
    [sheet] = json.loads(zipfile.ZipFile(out).read("datasheet.json"))["studies"]
    assert sheet["ranking_crop"] == "model"
    assert (sheet["resize_to"], sheet["image_size"]) == (256, 224)  # what participants saw
    assert sheet["ranking_input"]["crop"] == "model"
    assert sheet["ranking_input"]["input_size"] == [3, 160, 160]  # what the network was given
