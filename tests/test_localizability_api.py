"""A localizability session through the participant API: the payload, clicks in image pixels refused
outside the image, the verdict against the kept map, the feedback only after the answer, the checks
and the export; and nothing the browser receives before an answer betrays the map or the trial's kind."""

from __future__ import annotations

import json
import re
import uuid

import numpy as np
import pytest

from experiments.export.responses import columns, responses_table
from experiments.export.tables import units_table
from experiments.models import Response, SessionCheck, SessionTrial, TrialImage
from protocols.localizability.scoring import summarize
from stimuli.kept_maps import kept_maps
from tests.builders import render_localizability_study
from tests.conftest import Participant

QUERY_BOX = {
    "css_width": 320.0, "css_height": 320.0, "device_pixel_ratio": 1.0, "viewport_width": 1280.0,
    "viewport_height": 720.0,
}


@pytest.fixture
def study(isolated_files, tiny_model):
    return render_localizability_study(tiny_model, min_instruction_s=0, min_total_s=0, params={"min_catch_correct": 2})


@pytest.fixture
def participant(study) -> Participant:
    participant = Participant(study, "clicker")
    participant.start()
    participant.through_instructions()
    return participant


def kept_map(participant: Participant, index: int) -> np.ndarray:
    key = SessionTrial.objects.get(session_id=participant.id, index=index).key
    return kept_maps([key["map"]])[key["map"]]


def peak(values: np.ndarray) -> list[int]:
    y, x = np.unravel_index(np.argmax(values), values.shape)
    return [int(x), int(y)]


def trough(values: np.ndarray) -> list[int]:
    y, x = np.unravel_index(np.argmin(values), values.shape)
    return [int(x), int(y)]


def click(participant: Participant, index: int, clicks: list[list[int]]):
    body = {"index": index, "clicks": clicks, "query_box": QUERY_BOX, "rt_ms": 800, "client_id": str(uuid.uuid4())}
    return participant.client.post(participant.url("/responses"), body, format="json")


def answer_current(participant: Participant, hit: bool = True):
    index = participant.trial().json()["index"]
    values = kept_map(participant, index)
    return click(participant, index, [peak(values) if hit else trough(values)])


def finish(participant: Participant) -> None:
    while not participant.trial().json()["done"]:
        answer_current(participant)
    participant.complete()


@pytest.mark.django_db
def test_the_payload_carries_exemplars_with_overlays_the_query_and_its_size(participant):
    trial = participant.trial().json()
    assert len(trial["exemplars"]) == 6 and trial["max_clicks"] == 1
    assert all(e["image"].endswith(".jpg") and e["overlay"].endswith(".png") for e in trial["exemplars"])
    assert trial["query"]["image"].endswith(".jpg")
    assert (trial["query"]["width"], trial["query"]["height"]) == (64, 64)


@pytest.mark.django_db
def test_a_click_on_the_maps_peak_hits_and_the_reply_shows_the_querys_heat_map(participant):
    index = participant.trial().json()["index"]
    values = kept_map(participant, index)
    reply = click(participant, index, [peak(values)])
    assert reply.status_code == 201
    body = reply.json()
    assert body["correct"] is True and body["query_overlay"].endswith(".png")
    stored = Response.objects.get(session_id=participant.id)
    assert stored.answer["clicks"] == [peak(values)]
    assert stored.details["p0"] == pytest.approx(summarize(values).p0)
    assert stored.details["hit"] == 1.0 and stored.score == pytest.approx(1.0)


@pytest.mark.django_db
def test_a_click_on_the_maps_trough_misses(participant):
    reply = answer_current(participant, hit=False)
    assert reply.status_code == 201 and reply.json()["correct"] is False


@pytest.mark.django_db
@pytest.mark.parametrize("point", [[64, 0], [0, 64], [500, 3]])
def test_clicks_outside_the_image_are_refused_and_nothing_is_stored(participant, point):
    index = participant.trial().json()["index"]
    reply = click(participant, index, [point])
    assert reply.status_code == 400 and "outside the 64 x 64 image" in json.dumps(reply.json())
    assert not Response.objects.filter(session_id=participant.id).exists()


@pytest.mark.django_db
def test_more_clicks_than_the_study_allows_are_refused(participant):
    index = participant.trial().json()["index"]
    reply = click(participant, index, [[1, 1], [2, 2]])
    assert reply.status_code == 400 and "at most 1 click" in json.dumps(reply.json())


@pytest.mark.django_db
def test_nothing_sent_before_an_answer_names_a_map_a_kind_or_the_querys_heat_map(study, participant):
    bodies = []
    while True:
        reply = participant.trial()
        trial = reply.json()
        if trial["done"]:
            break
        bodies.append(reply.content.decode())
        answer_current(participant)
    assert len(bodies) == study.n_practice_trials + study.trials_per_session
    overlays = TrialImage.objects.filter(trial__study=study, role="query_overlay")
    hidden = {image.image.file.rsplit("/", 1)[-1] for image in overlays}
    for body in bodies:
        assert not any(name in body for name in hidden)
        for word in ("catch", "map", "activation", "kind", "exemplar_overlay", "key", "hit", "correct"):
            assert f'"{word}' not in body
    # Main and catch payloads have the same shape: the same fields, the same numbers of images.
    shapes = {(tuple(json.loads(b)), len(json.loads(b)["exemplars"])) for b in bodies}
    assert len(shapes) == 1


@pytest.mark.django_db
def test_the_checks_store_catch_hits_and_centre_bias(participant):
    finish(participant)
    checks = dict(SessionCheck.objects.filter(session_id=participant.id).values_list("name", "value"))
    assert checks["catch_trials"] == 2
    assert 0 <= checks["centre_bias"] <= 1


@pytest.mark.django_db
def test_the_export_keeps_every_click_its_scores_and_the_units_anchored_score(study, participant):
    finish(participant)
    names = [name for name, _ in columns([study])]
    for column in ("clicks", "query_box", "image_width", "image_height", "hit", "p0", "chance", "graded",
                   "click_hits", "click_graded", "check_centre_bias_value"):
        assert column in names
    rows = [dict(zip(names, row, strict=True)) for row in responses_table([study]).rows]
    assert rows and all(json.loads(row["clicks"]) and row["image_width"] == 64 for row in rows)
    assert all(row["hit"] == 1.0 and 0 < row["p0"] < 1 for row in rows)
    table = units_table([study])
    unit_names = [name for name, _ in table.columns]
    units = [dict(zip(unit_names, row, strict=True)) for row in table.rows]
    main = [unit for unit in units if unit["role"] == "main"]
    assert [unit["scored_responses"] for unit in main] == [1] * 4
    assert all(unit["localizability"] == pytest.approx(1.0) for unit in main)


@pytest.mark.django_db
def test_the_preview_shows_a_practice_trial_without_its_querys_heat_map(client, study):
    preview = "?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=3HIT&turkSubmitTo=https%3A%2F%2Fworkersandbox.mturk.com"
    page = client.get(f"/s/{study.slug}/{preview}").content.decode()
    sample = page.split('class="loc-stage sample"', 1)[1].split("</section>", 1)[0]
    shown = {url.rsplit("/", 1)[1] for url in re.findall(r'<img[^>]* src="([^"]+)"', sample)}
    practice = TrialImage.objects.filter(trial__study=study, trial__kind="practice")
    assert len(shown) == 13
    assert shown <= {image.image.file.rsplit("/", 1)[1] for image in practice.exclude(role="query_overlay")}
