"""POST /sessions/{id}/calibration: the screen's scale from the size calibration (the card method), checked by
the server, kept on the session and stamped on every answer's geometry."""

import uuid

import pytest

from experiments.models import Response
from tests.builders import build_2afc_study
from tests.conftest import GEOMETRY, Participant


def calibrating_study(**fields: object):
    return build_2afc_study(n_units=4, n_main_trials=2, n_catch_trials=1, calibrate_size=True, **fields)


@pytest.fixture
def calibrating(db) -> Participant:
    """A participant of a study that calibrates the screen's size, just past consent."""
    participant = Participant(calibrating_study(image_size_mm=30))
    participant.take_part()
    return participant


def calibrate(participant: Participant, body: object):
    return participant.client.post(participant.url("/calibration"), body, format="json")


def answer_claiming_a_scale(participant: Participant):
    """Answers the current trial with a geometry that claims a scale of its own."""
    body = {
        "index": participant.trial().json()["index"], "choice": 0, "confidence": 1, "rt_ms": 900,
        "client_id": str(uuid.uuid4()), "geometry": {**GEOMETRY, "px_per_mm": 9.9},
    }
    return participant.client.post(participant.url("/responses"), body, format="json")


def test_the_session_state_asks_for_a_calibration_where_the_study_has_one(calibrating):
    state = calibrating.client.get(calibrating.url()).json()
    assert state["calibration"] == {"image_size_mm": 30.0, "px_per_mm": None, "min_px_per_mm": 1.5, "max_px_per_mm": 15.0}


def test_a_study_without_calibration_says_so_in_the_session_state(participant):
    assert participant.client.get(participant.url()).json()["calibration"] is None


def test_a_plausible_scale_is_kept_for_the_session_and_resumes_with_it(calibrating):
    response = calibrate(calibrating, {"px_per_mm": 3.7811})
    assert response.status_code == 200 and response.json() == {"px_per_mm": 3.7811}
    assert calibrating.session.px_per_mm == 3.7811
    resumed = Participant(calibrating.study, calibrating.participant).start().json()
    assert resumed["calibration"]["px_per_mm"] == 3.7811


@pytest.mark.parametrize(
    ("px_per_mm", "bound"), [(1.4, "at least 1.5 CSS pixels per millimetre"), (15.5, "at most 15 CSS pixels per millimetre")]
)
def test_an_implausible_scale_is_a_bad_request_that_says_why(calibrating, px_per_mm, bound):
    response = calibrate(calibrating, {"px_per_mm": px_per_mm})
    assert response.status_code == 400
    assert response.json()["error"] == f"px_per_mm: This screen scale is not plausible: {bound}."
    assert calibrating.session.px_per_mm is None


@pytest.mark.parametrize("body", [{}, {"px_per_mm": "wide"}, {"px_per_mm": None}, [3.8]])
def test_a_malformed_calibration_is_a_bad_request(calibrating, body):
    response = calibrate(calibrating, body)
    assert response.status_code == 400
    assert response.json()["error"]


def test_a_study_without_calibration_refuses_one(participant):
    participant.event("consent")
    response = calibrate(participant, {"px_per_mm": 3.8})
    assert response.status_code == 409
    assert "does not calibrate" in response.json()["error"]


def test_calibrating_before_consent_is_a_conflict(db):
    participant = Participant(calibrating_study())
    participant.start()
    response = calibrate(participant, {"px_per_mm": 3.8})
    assert response.status_code == 409
    assert participant.session.px_per_mm is None


def test_a_second_scale_is_refused_and_the_same_one_again_is_a_replay(calibrating):
    calibrate(calibrating, {"px_per_mm": 3.8})
    assert calibrate(calibrating, {"px_per_mm": 3.8}).status_code == 200
    again = calibrate(calibrating, {"px_per_mm": 4.2})
    assert again.status_code == 409
    assert "calibrated already" in again.json()["error"]
    assert calibrating.session.px_per_mm == 3.8


def test_each_answer_carries_the_sessions_scale_not_the_browsers(calibrating):
    calibrate(calibrating, {"px_per_mm": 3.8})
    calibrating.event("instructions_start")
    calibrating.event("instructions_end")
    assert answer_claiming_a_scale(calibrating).status_code == 201
    assert Response.objects.get(session_id=calibrating.id).geometry == {**GEOMETRY, "px_per_mm": 3.8}


def test_without_a_calibration_an_answer_carries_no_scale(participant):
    participant.through_instructions()
    assert answer_claiming_a_scale(participant).status_code == 201
    assert Response.objects.get(session_id=participant.id).geometry == GEOMETRY
