"""The admin pages researchers use: study configuration, progress, sessions and checks."""

from experiments.models import Study


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
