"""POST /api/v1/sessions: starting, resuming and refusing sessions."""

from rest_framework.test import APIClient

from experiments.models import Session
from tests.builders import build_2afc_study
from tests.conftest import Participant


def test_a_new_participant_gets_a_session_and_a_token(study):
    response = Participant(study, "alice").start()
    assert response.status_code == 201
    body = response.json()
    assert body["token"] and body["id"]
    assert body["stage"] == "consent"


def test_the_same_participant_again_resumes_the_same_session(study):
    first = Participant(study, "alice").start().json()
    again = Participant(study, "alice").start()
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert Session.objects.count() == 1


def test_a_participant_who_completed_the_study_is_refused(participant):
    participant.through_instructions()
    participant.pass_practice()
    participant.answer_all()
    participant.complete()
    response = Participant(participant.study, participant.participant).start()
    assert response.status_code == 409
    assert "already completed" in response.json()["error"]


def test_a_completed_participant_gets_the_hand_back_again(participant):
    participant.through_instructions()
    participant.pass_practice()
    participant.answer_all()
    participant.complete()
    response = Participant(participant.study, participant.participant).start()
    assert response.json()["hand_back"] == {"completion_code": participant.session.completion_code}


def test_an_unknown_study_is_not_found(db):
    reply = APIClient().post(
        "/api/v1/sessions", {"study": "nope", "source": "local", "participant": "x"}, format="json"
    )
    assert reply.status_code == 404
    assert "nope" in reply.json()["error"]


def test_a_closed_study_is_not_found(study):
    study.status = study.Status.CLOSED
    study.save()
    assert Participant(study).start().status_code == 404


def test_a_local_link_without_participant_id_is_a_bad_request(study):
    response = Participant(study, "").start()
    assert response.status_code == 400
    assert "participant" in response.json()["error"]


def test_an_unknown_source_is_a_bad_request(study):
    response = Participant(study).start(source="carrier-pigeon")
    assert response.status_code == 400
    assert "source" in response.json()["error"]


def test_the_raw_participant_id_is_replaced_by_a_pseudonym(study):
    Participant(study, "worker-42").start()
    session = Session.objects.get()
    assert "worker-42" not in session.pseudonym
    assert len(session.pseudonym) == 64


def test_a_local_link_to_a_study_recruiting_elsewhere_is_refused(db):
    study = build_2afc_study(n_units=6, recruiter="mturk", n_main_trials=4)
    response = Participant(study, "alice").start()
    assert response.status_code == 403
    assert "Amazon Mechanical Turk" in response.json()["error"]
    assert not Session.objects.exists()
