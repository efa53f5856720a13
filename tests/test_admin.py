"""The admin pages researchers use: study configuration, progress, sessions and checks."""

from experiments.models import Study
from tests.factories import VisionModelFactory


def test_a_study_page_shows_every_unit_with_its_progress(admin_client, participant):
    response = admin_client.get(f"/admin/experiments/study/{participant.study.pk}/change/")
    assert response.status_code == 200
    assert b"0 / 30" in response.content
    assert b"/s/%s/" % participant.study.slug.encode() in response.content


def test_a_study_can_be_created_with_protocol_defaults(admin_client, study):
    response = admin_client.get("/admin/experiments/study/add/")
    assert response.status_code == 200
    assert b'name="target_per_unit" value="30"' in response.content
    assert b'name="min_instruction_s" value="15' in response.content


def test_a_new_study_offers_the_size_calibration_off_at_30_mm(admin_client, db):
    response = admin_client.get("/admin/experiments/study/add/")
    assert b'name="calibrate_size"' in response.content and b'name="image_size_mm" value="30' in response.content
    assert response.context["adminform"].form["calibrate_size"].value() is False


def test_once_rendered_the_size_calibration_is_fixed(admin_client, study):
    form = admin_client.get(f"/admin/experiments/study/{study.pk}/change/").context["adminform"].form
    assert form.fields["calibrate_size"].disabled and form.fields["image_size_mm"].disabled


def test_opening_a_study_without_stimuli_is_refused(admin_client, study):
    Study.objects.filter(pk=study.pk).update(status=Study.Status.DRAFT)
    response = admin_client.post(
        "/admin/experiments/study/",
        {"action": "open_study", "_selected_action": [study.pk]},
        follow=True,
    )
    assert b"Render stimuli first" in response.content
    assert Study.objects.get(pk=study.pk).status == Study.Status.DRAFT


def test_a_session_page_shows_its_checks(admin_client, participant):
    participant.through_instructions()
    participant.pass_practice()
    participant.answer_all()
    participant.complete()
    response = admin_client.get(f"/admin/experiments/session/{participant.id}/change/")
    assert response.status_code == 200
    for name in (b"practice_attempts", b"instruction_time", b"catch_trials", b"total_time", b"position_bias"):
        assert name in response.content


def form_data(response) -> dict:
    """What the admin change page would post back unchanged: every field's value and the inlines' management forms."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if value is None or field.disabled:
            continue
        data[name] = value
    for inline in response.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name in management.fields:
            data[f"{management.prefix}-{name}"] = management[name].value()
    return data


def test_the_protocol_parameters_are_fields_with_their_published_defaults(admin_client, db):
    page = admin_client.get("/admin/experiments/study/add/").content.decode()
    assert "2-AFC (IMI) parameters" in page
    assert 'name="param_references_per_side" value="9"' in page
    assert 'name="param_min_position_count" value="5"' in page
    assert "Which image at the center matches the right examples better?" in page


def test_parameters_edited_in_the_admin_are_stored_validated(admin_client, study):
    url = f"/admin/experiments/study/{study.pk}/change/"
    Study.objects.filter(pk=study.pk).update(status=Study.Status.DRAFT)
    study.trials.all().delete()
    data = form_data(admin_client.get(url))
    response = admin_client.post(url, {**data, "param_references_per_side": "13"})
    assert b"Ensure this value is less than or equal to 12." in response.content
    response = admin_client.post(url, {**data, "param_references_per_side": "4", "param_prompt": ""})
    assert response.status_code == 302
    params = Study.objects.get(pk=study.pk).params
    assert params["references_per_side"] == 4
    assert params["prompt"] == "Which image at the center matches the right examples better?"  # blank: default


def test_once_rendered_what_shaped_the_stimuli_is_fixed_and_the_page_says_why(admin_client, study):
    url = f"/admin/experiments/study/{study.pk}/change/"
    page = admin_client.get(url)
    assert b"This study has stimuli" in page.content and b"Copy with its stimuli" in page.content
    form = page.context["adminform"].form
    assert form.fields["param_references_per_side"].disabled and form.fields["model"].disabled
    assert form.fields["n_main_trials"].disabled and not form.fields["param_min_position_count"].disabled
    data = form_data(page)
    response = admin_client.post(
        url, {**data, "param_references_per_side": "4", "n_main_trials": "7", "param_min_position_count": "2"}
    )
    assert response.status_code == 302
    study.refresh_from_db()
    assert study.params["references_per_side"] == 9 and study.n_main_trials == 40
    assert study.params["min_position_count"] == 2


def test_a_model_page_lists_the_layers_that_qualify_with_their_channels(admin_client, db):
    model = VisionModelFactory(timm_name="test_vit", layers=["blocks.1.mlp.act"])
    page = admin_client.get(f"/admin/stimuli/visionmodel/{model.pk}/change/").content.decode()
    assert "ViT / DeiT / CLIP-ViT rule: 6 layers." in page
    assert "the first 1 (class and register tokens) are left out" in page
    assert "<td><code>blocks.0.mlp.act</code></td><td>192</td><td></td>" in page
    assert "<td><code>blocks.1.mlp.act</code></td><td>192</td><td>configured</td>" in page
