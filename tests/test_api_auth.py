"""Every session call needs that session's bearer token."""

import pytest


@pytest.fixture
def other(make_participant):
    return make_participant("bob")


def test_a_missing_token_is_unauthorized(participant):
    participant.client.credentials()
    response = participant.trial()
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_an_invalid_token_is_unauthorized(participant):
    participant.client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert participant.trial().status_code == 401


def test_a_malformed_authorization_header_is_unauthorized(participant):
    participant.client.credentials(HTTP_AUTHORIZATION="Token abc def")
    response = participant.trial()
    assert response.status_code == 401
    assert "Bearer" in response.json()["error"]


def test_another_sessions_token_is_forbidden(participant, other):
    other.id = participant.id
    response = other.event("consent")
    assert response.status_code == 403
    assert participant.session.consented_at is None
