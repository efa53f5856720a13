"""The participant page over plain HTTP: its Content-Security-Policy (who may frame it, what it may load), and
what an MTurk preview shows."""

import re

import pytest

from experiments.models import Session, Study, Trial, TrialImage
from tests.builders import build_2afc_study

PREVIEW = "?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=3HIT&turkSubmitTo=https%3A%2F%2Fworkersandbox.mturk.com"


def policy(client, study) -> list[str]:
    """The participant page's Content-Security-Policy, one directive per item."""
    response = client.get(f"/s/{study.slug}/?participant=p1")
    assert response.status_code == 200
    return response.headers["Content-Security-Policy"].split("; ")


def test_only_mturk_worker_sites_may_frame_the_participant_page(client, study):
    assert "X-Frame-Options" not in client.get(f"/s/{study.slug}/?participant=p1").headers
    assert "frame-ancestors 'self' https://www.mturk.com https://workersandbox.mturk.com" in policy(client, study)


def test_the_participant_page_runs_only_this_sites_script_files(client, study):
    assert {"default-src 'self'", "script-src 'self'", "object-src 'none'", "base-uri 'none'"} <= set(
        policy(client, study)
    )


def test_stimuli_served_by_the_site_itself_are_the_only_images_allowed(client, study):
    assert "img-src 'self'" in policy(client, study)


def test_stimuli_from_an_absolute_media_url_are_allowed(client, study, settings):
    settings.MEDIA_URL = "https://media.example.org/psyplatform/media/"
    assert "img-src 'self' https://media.example.org" in policy(client, study)


def test_stimuli_from_an_s3_store_are_allowed(client, study, settings, monkeypatch):
    # Keys of its own, so that boto3 does not look for an instance role; making a URL calls nobody.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    options = {"bucket_name": "psyplatform", "location": "media", "endpoint_url": "http://minio.example.org:9000",
               "querystring_auth": False}
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}}
    assert "img-src 'self' http://minio.example.org:9000" in policy(client, study)


def test_the_admin_may_not_be_framed(client, db):
    assert client.get("/admin/login/").headers["X-Frame-Options"] == "DENY"


def test_an_unknown_study_page_is_not_found(client, db):
    assert client.get("/s/nope/").status_code == 404


def sample_images(page: str) -> list[str]:
    sample = page.split('class="stage sample"', 1)[1].split("</section>", 1)[0] if "stage sample" in page else ""
    return re.findall(r'<img[^>]* src="([^"]+)"', sample)


@pytest.fixture
def mturk_study(db) -> Study:
    return build_2afc_study(recruiter="mturk")


def test_an_mturk_preview_shows_a_practice_trial_as_a_sample_screen_without_a_session(client, mturk_study):
    page = client.get(f"/s/{mturk_study.slug}/{PREVIEW}").content.decode()

    shown = sample_images(page)
    practice = TrialImage.objects.filter(trial__kind=Trial.Kind.PRACTICE, trial__practice_level="obvious")
    assert len(shown) == 20
    assert {url.rsplit("/", 1)[1] for url in shown} <= {i.image.file.rsplit("/", 1)[1] for i in practice}
    assert not Session.objects.exists()


def test_an_accepted_hit_shows_the_sample_screen_only_as_the_instructions_example(client, mturk_study):
    page = client.get(f"/s/{mturk_study.slug}/?assignmentId=3ASG&hitId=3HIT&workerId=AW1").content.decode()
    preview = page.split('id="screen-preview"', 1)[1].split("</section>", 1)[0]
    instructions = page.split('id="screen-instructions"', 1)[1].split("</section>", 1)[0]
    assert "stage sample" not in preview
    assert "An example screen" in instructions and sample_images(instructions)


def test_a_preview_link_is_a_preview_whatever_the_studys_recruiter(client, study):
    """A preview never starts a session: the page is marked so that its script shows the task only."""
    assert 'data-preview="1"' in client.get(f"/s/{study.slug}/{PREVIEW}").content.decode()
    assert "data-preview" not in client.get(f"/s/{study.slug}/?participant=p1").content.decode()


def test_the_page_tells_the_script_which_url_parameters_each_recruiter_brings(client, study):
    params = client.get(f"/s/{study.slug}/?participant=p1").context["arrival_params"]
    assert list(params) == ["local", "mturk", "prolific"]
    assert params["local"] == {"participant": "participant", "sig": "sig"}


def preview_section(page: str) -> str:
    return " ".join(page.split('id="screen-preview"', 1)[1].split("</section>", 1)[0].split())


def test_an_mturk_preview_states_pay_duration_trials_requirements_rules_and_payment(client, mturk_study):
    from recruitment.backends import recruitment_for

    recruitment = recruitment_for(mturk_study)
    recruitment.reward, recruitment.reject_failing, recruitment.rejection_feedback = "3.10", True, "Failed checks."
    recruitment.save()
    preview = preview_section(client.get(f"/s/{mturk_study.slug}/{PREVIEW}").content.decode())
    assert "3.10 USD for the completed task" in preview
    assert f"about {mturk_study.expected_minutes} minutes" in preview
    assert f"{mturk_study.n_practice_trials + mturk_study.trials_per_session} (" in preview
    assert "desktop or laptop computer with a keyboard" in preview
    assert "at least 940 x 600 pixels" in preview
    assert "Normal colour vision" in preview
    assert "at least 15 seconds" in preview and "within 3 rounds" in preview
    assert "control trials" in preview
    assert "fails the quality checks is rejected and not paid" in preview
    assert "stage sample" in preview


def test_the_consent_page_states_the_studys_researcher_and_terms(client, db):
    study = build_2afc_study(
        researcher="Dr. Ada Example", institution="Example University", contact="ada@example.org",
        ethics_approval="Example IRB 2026-17", duration_minutes=12, pay="$2.50",
    )
    page = " ".join(client.get(f"/s/{study.slug}/?participant=p1").content.decode().split())
    consent = page.split('id="screen-consent"', 1)[1].split("</section>", 1)[0]
    for fact in ("Dr. Ada Example, Example University", "mailto:ada@example.org", "Example IRB 2026-17",
                 "about 12 minutes", "$2.50", 'id="consent-decline"'):
        assert fact in consent


def test_the_page_states_the_studys_window_and_device_requirements(client, db):
    study = build_2afc_study(min_window_width=1000, min_window_height=650, devices="any")
    page = client.get(f"/s/{study.slug}/?participant=p1").content.decode()
    assert 'data-devices="any" data-min-width="1000"' in page and 'data-min-height="650"' in page


def test_an_mturk_preview_of_a_calibrated_study_asks_for_a_card(client, db):
    plain = preview_section(client.get(f"/s/{build_2afc_study(recruiter='mturk').slug}/{PREVIEW}").content.decode())
    study = build_2afc_study(recruiter="mturk", calibrate_size=True, image_size_mm=42.5)
    page = client.get(f"/s/{study.slug}/{PREVIEW}").content.decode()
    assert "A card of bank-card size" in preview_section(page) and "bank-card size" not in plain
    # The window message names the millimetres the images are shown at.
    assert "(42.5 mm, from the card you matched)" in " ".join(page.split())
