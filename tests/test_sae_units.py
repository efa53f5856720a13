"""Studies whose units are SAE latents: which latents are drawn, and which settings are refused."""

import numpy as np
import pytest
from django.core.exceptions import ValidationError

from experiments.export.bundle import datasheet
from experiments.export.tables import units_table
from experiments.unit_sources import unit_source
from stimuli.models import SparseAutoencoder, Unit
from tests.factories import SparseAutoencoderFactory, StudyFactory, StudyUnitFactory, VisionModelFactory

pytestmark = pytest.mark.django_db


def latent_study(**fields):
    sae = fields.pop("sae", None) or SparseAutoencoderFactory()
    return StudyFactory(status="draft", unit_kind=Unit.Kind.SAE_LATENT, sae=sae, model=sae.model, **fields)


def drawn_latents(study, n):
    source = unit_source(study.unit_kind)
    return [d.index for d in source.draw(study, None, ["blocks.4", "blocks.5"], n, np.random.default_rng(0))]


def test_latents_are_drawn_among_those_alive_and_not_too_frequent():
    study = latent_study(max_latent_frequency=0.2)
    assert sorted(drawn_latents(study, 5)) == [1, 3, 5, 6, 7]


def test_asking_for_more_latents_than_are_eligible_says_how_many_are():
    study = latent_study(max_latent_frequency=0.05)
    with pytest.raises(ValueError, match="3 of its 8"):
        drawn_latents(study, 4)


def test_a_latents_relative_depth_is_its_layers_among_the_layers_of_interest():
    study = latent_study()
    [drawn] = unit_source(study.unit_kind).draw(study, None, ["blocks.4", "blocks.5"], 1, np.random.default_rng(0))
    assert drawn.relative_depth == 1.0 and drawn.sae == study.sae


def test_a_latent_study_without_an_sae_is_refused():
    study = StudyFactory.build(unit_kind=Unit.Kind.SAE_LATENT, sae=None)
    with pytest.raises(ValidationError, match="need the SAE"):
        study.clean()


def test_a_latent_study_on_an_untrained_sae_is_refused():
    study = latent_study(sae=SparseAutoencoderFactory(status=SparseAutoencoder.Status.DRAFT))
    with pytest.raises(ValidationError, match="not trained"):
        study.clean()


def test_a_latent_study_on_another_models_sae_is_refused():
    study = latent_study()
    study.model = VisionModelFactory(name="other")
    with pytest.raises(ValidationError, match="reads"):
        study.clean()


def test_a_channel_study_naming_an_sae_is_refused():
    study = latent_study()
    study.unit_kind = Unit.Kind.CHANNEL
    with pytest.raises(ValidationError, match="Only a study whose units are SAE latents"):
        study.clean()


def test_a_latent_study_on_a_trained_sae_of_its_model_validates():
    latent_study().clean()


def test_a_latent_studys_dataset_names_its_sae_by_its_weights_hash_and_each_units_sae():
    study = latent_study()
    study.sae.weights_sha256 = "ab" * 32
    study.sae.save()
    unit = Unit.objects.create(model=study.model, kind=Unit.Kind.SAE_LATENT, layer="blocks.5", channel=3, sae=study.sae)
    StudyUnitFactory(study=study, unit=unit)
    [sheet] = datasheet([study])["studies"]
    assert sheet["sae"]["weights_sha256"] == "ab" * 32 and sheet["unit_kind"] == "sae_latent"
    [row] = units_table([study]).records()
    assert (row["kind"], row["channel"], row["sae"]) == ("sae_latent", 3, study.sae.name)
