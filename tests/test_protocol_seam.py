"""The protocol seam holds: a protocol written in the test suite only (tests/rating_protocol) and
registered through the EXTRA_PROTOCOLS setting renders, is served through the API and runs in the
browser, with no change anywhere outside its own folder."""

from __future__ import annotations

import re

import pytest
import yaml

from experiments.export.responses import columns as export_columns
from experiments.export.responses import responses_table
from experiments.models import Response, Session, Trial
from experiments.rendering import render_study
from protocols import get_protocol, protocol_choices
from tests.conftest import Participant
from tests.factories import RenderableStudyFactory
from tests.test_participant_browser import start_practice

RATING = {"rating": "tests.rating_protocol.Rating"}


@pytest.fixture
def rating_registered(settings):
    settings.EXTRA_PROTOCOLS = RATING


@pytest.fixture
def rating_study(rating_registered, isolated_files, tiny_model):
    study = RenderableStudyFactory(
        protocol="rating",
        params={"scale": 4},
        model=tiny_model,
        n_units=3,
        n_main_trials=3,
        n_catch_trials=1,
        n_practice_trials=1,
        min_instruction_s=0,
        min_total_s=0,
    )
    render_study(study)
    study.status = study.Status.OPEN
    study.save()
    return study


def test_a_registered_protocol_is_offered_beside_the_built_in_one(rating_registered):
    choices = protocol_choices()
    assert choices[0] == ("2afc", "2-AFC (IMI)") and choices[-1] == ("rating", "Rating (test only)")
    assert get_protocol("rating").params(None).scale == 5


@pytest.mark.django_db
def test_a_registered_protocol_renders_its_own_trials(rating_study):
    kinds = sorted(Trial.objects.filter(study=rating_study).values_list("kind", flat=True))
    assert kinds == ["catch"] * 3 + ["main"] * 6 + ["practice"]
    assert set(rating_study.trials.values_list("images__role", flat=True)) == {"picture"}


@pytest.mark.django_db
def test_a_session_of_a_registered_protocol_runs_through_the_api(rating_study):
    participant = Participant(rating_study, "rater")
    assert participant.start().json()["protocol"] == "rating"
    participant.through_instructions()
    ratings = []
    while not (trial := participant.trial().json())["done"]:
        assert trial["protocol"] == "rating" and trial["scale"] == 4 and trial["image"].endswith(".jpg")
        body = {"index": trial["index"], "rating": 1 + trial["index"] % 4, "rt_ms": 700,
                "client_id": f"00000000-0000-4000-8000-{trial['index']:012d}"}
        reply = participant.client.post(participant.url("/responses"), body, format="json")
        assert reply.status_code == 201 and reply.json()["correct"] is None
        ratings.append(body["rating"])
    assert participant.complete().json()["completed"] is True

    stored = Response.objects.filter(session__study=rating_study).order_by("session_trial__index")
    assert [r.answer for r in stored] == [{"rating": rating} for rating in ratings]
    assert [r.score for r in stored] == [rating / 4 for rating in ratings]
    names = set(participant.session.checks.values_list("name", flat=True))
    assert names == {
        "practice_attempts", "instruction_time", "total_time", "lock_boundary", "timing_regularity", "hard_units"
    }
    # Ratings have no right answer, so that the answer-key check has nothing to test.
    assert participant.session.checks.get(name="hard_units").rule.startswith("untested")

    columns = [name for name, _ in export_columns([rating_study])]
    assert "rating" in columns and "choice" not in columns
    rows = list(responses_table([rating_study]).records())
    assert [row["rating"] for row in rows] == ratings


@pytest.mark.django_db
def test_an_answer_in_another_protocols_shape_is_refused(rating_study):
    participant = Participant(rating_study, "rater")
    participant.start()
    participant.through_instructions()
    response = participant.answer(participant.trial().json()["index"], choice=0)
    assert response.status_code == 400 and "rating" in response.json()["error"]


@pytest.mark.django_db
def test_the_schema_describes_every_registered_protocol(rating_registered, client):
    schema = yaml.safe_load(client.get("/api/v1/schema/").content)
    components = schema["components"]["schemas"]
    trial = components["Trial"]
    assert trial["discriminator"]["propertyName"] == "protocol"
    assert set(trial["discriminator"]["mapping"]) == {
        "2afc", "localizability", "nameability", "nameability_verify", "rating"
    }
    assert {"references", "queries"} <= set(components["Trial2afc"]["properties"])
    assert "image" in components["TrialRating"]["properties"]
    answers = [ref["$ref"].rsplit("/", 1)[1] for ref in components["Answer"]["oneOf"]]
    assert answers == [
        "Answer2afc", "AnswerLocalizability", "AnswerNameability", "AnswerNameabilityVerify", "AnswerRating"
    ]
    assert {"choice", "confidence", "index", "rt_ms", "client_id"} <= set(components["Answer2afc"]["required"])
    assert "rating" in components["AnswerRating"]["required"]


@pytest.mark.chromium
@pytest.mark.django_db(transaction=True)
def test_a_session_of_a_registered_protocol_runs_in_the_browser(
    rating_registered, tiny_model, live_server, chromium
):
    # Stimuli go to the run's own media folder (tests/services.py), which the live server serves.
    from playwright.sync_api import expect

    study = RenderableStudyFactory(
        protocol="rating", params={"scale": 3}, model=tiny_model, n_units=3, n_main_trials=3,
        n_catch_trials=1, n_practice_trials=1, lock_ms=50, feedback_delay_ms=0, feedback_ms=0,
    )
    render_study(study)
    study.status = study.Status.OPEN
    study.save()
    page_errors: list[str] = []
    with chromium.new_context() as context:
        page = context.new_page()
        page.on("pageerror", lambda e: page_errors.append(str(e)))
        page.goto(f"{live_server.url}/s/{study.slug}/?participant=browser-rater")
        expect(page.locator("#screen-consent")).to_contain_text("rate how strongly images show a feature")
        page.click("#consent-agree")
        expect(page.locator("#screen-instructions")).to_contain_text("numbered buttons")
        start_practice(page)
        for _ in range(1 + 3 + 1):
            expect(page.locator(".rating:not([disabled])")).to_have_count(3)
            expect(page.locator("#trial-prompt")).to_have_text("How strongly does this image show the feature?")
            page.click(".rating[data-rating='2']")
            page.click("#trial-continue")
            if page.locator("#screen-message").is_visible():
                page.click("#message-continue")
        expect(page.locator("#screen-feedback")).to_be_visible()
        page.click("#feedback-submit")
        expect(page.locator("#completion-code")).to_have_text(re.compile(r"^[0-9A-F]{8}$"))
        code = page.locator("#completion-code").inner_text()
    assert not page_errors, page_errors
    session = Session.objects.get(study=study)
    assert session.status == Session.Status.COMPLETED and session.completion_code == code
    assert list(session.responses.values_list("answer", flat=True)) == [{"rating": 2}] * 5
