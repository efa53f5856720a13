"""Declining consent: the unconsented session and its events are deleted; a consented one cannot decline."""

from experiments.models import Event, Session


def test_declining_deletes_the_unconsented_session_and_its_events(participant):
    participant.event("focus")
    response = participant.client.post(participant.url("/decline"))
    assert response.status_code == 200 and response.json() == {"declined": True}
    assert not Session.objects.filter(study=participant.study).exists()
    assert not Event.objects.filter(session_id=participant.id).exists()


def test_a_participant_who_declined_may_come_back_and_agree(participant):
    participant.client.post(participant.url("/decline"))
    assert participant.start().status_code == 201
    assert participant.event("consent").status_code == 201


def test_a_consented_session_cannot_decline(participant):
    participant.event("consent")
    response = participant.client.post(participant.url("/decline"))
    assert response.status_code == 409
    assert "already agreed" in response.json()["error"]
    assert Session.objects.filter(pk=participant.id).exists()


def test_declining_needs_the_sessions_token(participant, client):
    assert client.post(participant.url("/decline")).status_code == 401
