"""Nothing offered is silently something else: the admin offers only what is implemented, and a
study naming a protocol, condition or unit kind that is not implemented is refused, with a message
that names it, when it is saved and when it is rendered."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from experiments.rendering import RenderRefused, render_study
from protocols.two_afc import TwoAFC
from stimuli.models import Unit
from tests.factories import RenderableStudyFactory, StudyUnitFactory
from workers.models import Job
from workers.services import start_rendering

pytestmark = pytest.mark.django_db

UNIMPLEMENTED = [
    (
        {"protocol": "brush"},
        "The protocol 'brush' is not implemented"
        " (implemented: 2afc, localizability, nameability, nameability_verify).",
    ),
    (
        {"condition": "synthetic"},
        "The condition 'synthetic' is not implemented for 2-AFC (IMI) (implemented: natural).",
    ),
]


def sae_latent_study():
    study = RenderableStudyFactory()
    StudyUnitFactory(study=study, unit__kind="sae_latent")
    return study


@pytest.mark.parametrize("fields, message", UNIMPLEMENTED)
def test_saving_an_unimplemented_combination_is_refused_with_its_name(fields, message):
    study = RenderableStudyFactory.build(**fields)
    study.model.save()
    study.image_pool.save()
    with pytest.raises(ValidationError) as refused:
        study.full_clean()
    assert message in refused.value.messages


@pytest.mark.parametrize("fields, message", UNIMPLEMENTED)
def test_rendering_an_unimplemented_combination_is_refused_with_its_name(fields, message):
    study = RenderableStudyFactory(**fields)
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        start_rendering(study)
    with pytest.raises(RenderRefused, match="cannot be rendered"):
        render_study(study)
    assert not Job.objects.exists() and not study.trials.exists()


def test_units_of_a_kind_the_protocol_does_not_implement_are_refused_at_save_and_render(monkeypatch):
    monkeypatch.setattr(TwoAFC, "unit_kinds", ("channel",))
    study = sae_latent_study()
    message = "Units of kind 'sae_latent' are not implemented for 2-AFC (IMI) (implemented: channel)."
    with pytest.raises(ValidationError) as refused:
        study.full_clean()
    assert message in refused.value.messages
    with pytest.raises(RenderRefused, match="sae_latent"):
        render_study(study)


def test_a_unit_of_an_unimplemented_kind_cannot_be_saved():
    unit = Unit(model=RenderableStudyFactory().model, kind="neuron", layer="blocks.1", channel=0)
    with pytest.raises(ValidationError, match="kind"):
        unit.full_clean()


def test_the_admin_offers_only_implemented_protocols_conditions_and_unit_kinds(admin_client):
    study_form = admin_client.get("/admin/stimuli/unit/add/").content.decode()
    assert 'value="channel"' in study_form and 'value="sae_latent"' in study_form and "neuron" not in study_form
    page = admin_client.get("/admin/experiments/study/add/").content.decode()
    assert '<option value="2afc" selected>2-AFC (IMI)</option>' in page
    assert '<option value="localizability">Localizability (Colin et al.)</option>' in page
    assert '<option value="nameability">Nameability: describe</option>' in page
    for absent in ("brush", "synthetic"):
        assert f'value="{absent}"' not in page


def test_the_admin_render_action_names_what_is_not_implemented(admin_client):
    study = RenderableStudyFactory(condition="synthetic")
    response = admin_client.post(
        "/admin/experiments/study/", {"action": "render_stimuli", "_selected_action": [study.pk]}, follow=True
    )
    assert b"cannot be rendered" in response.content
    assert b"The condition &#x27;synthetic&#x27; is not implemented for 2-AFC (IMI)" in response.content
    assert not Job.objects.exists()


def test_a_study_stored_with_an_unimplemented_protocol_opens_in_the_admin_and_says_why_it_cannot_be_saved(
    admin_client,
):
    study = RenderableStudyFactory(protocol="brush")
    assert admin_client.get(f"/admin/experiments/study/{study.pk}/change/").status_code == 200
    response = admin_client.post(f"/admin/experiments/study/{study.pk}/change/", {"protocol": "brush"})
    assert b"brush is not one of the available choices" in response.content
