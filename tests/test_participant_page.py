"""The participant page over plain HTTP: who may frame it, and what an MTurk preview shows."""

import re

import pytest

from experiments.models import Session, Study, Trial, TrialImage
from tests.builders import build_2afc_study

PREVIEW = "?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=3HIT&turkSubmitTo=https%3A%2F%2Fworkersandbox.mturk.com"


def test_only_mturk_worker_sites_may_frame_the_participant_page(client, study):
    response = client.get(f"/s/{study.slug}/?participant=p1")
    assert response.status_code == 200
    assert "X-Frame-Options" not in response.headers
    policy = response.headers["Content-Security-Policy"]
    assert policy == (
        "frame-ancestors 'self' https://www.mturk.com https://workersandbox.mturk.com"
    )


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


def test_an_accepted_hit_shows_no_sample_screen(client, mturk_study):
    page = client.get(f"/s/{mturk_study.slug}/?assignmentId=3ASG&hitId=3HIT&workerId=AW1").content.decode()
    assert sample_images(page) == []


def test_a_preview_link_is_a_preview_whatever_the_studys_recruiter(client, study):
    """A preview never starts a session: the page is marked so that its script shows the task only."""
    assert 'data-preview="1"' in client.get(f"/s/{study.slug}/{PREVIEW}").content.decode()
    assert "data-preview" not in client.get(f"/s/{study.slug}/?participant=p1").content.decode()


def test_the_page_tells_the_script_which_url_parameters_each_recruiter_brings(client, study):
    params = client.get(f"/s/{study.slug}/?participant=p1").context["arrival_params"]
    assert list(params) == ["local", "mturk", "prolific"]
    assert params["local"] == {"participant": "participant", "sig": "sig"}
