"""Malformed, oversized and misdirected requests get the API's JSON error ({"error": message}), never HTML."""

from __future__ import annotations

import json

import pytest

from experiments.api.parsers import MAX_BODY_BYTES, MAX_DEPTH


def nested(depth: int) -> dict:
    """An event whose payload nests objects `depth` levels deep, the body's own object included."""
    payload: dict = {}
    for _ in range(depth - 2):
        payload = {"a": payload}
    return {"type": "blur", "payload": payload}


def assert_json_error(response, status: int) -> str:
    assert response.status_code == status, response.content[:200]
    assert response.headers["Content-Type"] == "application/json"
    return response.json()["error"]


def test_a_body_nested_1500_deep_answers_a_json_400_without_a_token(client, db):
    body = "[" * 1500 + "]" * 1500
    response = client.post("/api/v1/sessions", body, content_type="application/json")
    assert f"deeper than {MAX_DEPTH} levels" in assert_json_error(response, 400)


def test_a_body_nested_just_past_the_limit_answers_a_json_400(participant):
    response = participant.client.post(participant.url("/events"), nested(MAX_DEPTH + 1), format="json")
    assert f"deeper than {MAX_DEPTH} levels" in assert_json_error(response, 400)


def test_a_body_nested_to_the_limit_is_recorded(participant):
    assert participant.client.post(participant.url("/events"), nested(MAX_DEPTH), format="json").status_code == 201


def test_a_10_mb_body_answers_a_json_413(participant):
    body = json.dumps({"type": "blur", "payload": {"a": "x" * 10_000_000}})
    response = participant.client.post(participant.url("/events"), body, content_type="application/json")
    assert str(MAX_BODY_BYTES) in assert_json_error(response, 413)


def test_a_body_just_over_the_api_limit_answers_a_json_413(client, db):
    body = json.dumps({"study": "x" * MAX_BODY_BYTES})
    response = client.post("/api/v1/sessions", body, content_type="application/json")
    assert str(MAX_BODY_BYTES) in assert_json_error(response, 413)


def test_invalid_json_answers_a_json_400(client, db):
    response = client.post("/api/v1/sessions", "{bad", content_type="application/json")
    assert assert_json_error(response, 400).startswith("JSON parse error")


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/sessions/abc", "/api/v2/sessions", "/api/"])
def test_an_unknown_api_path_answers_a_json_404(client, db, path):
    assert assert_json_error(client.get(path), 404) == "There is no such API call."


def test_an_unknown_page_still_answers_the_html_404(client, db):
    response = client.get("/nope/")
    assert response.status_code == 404 and response.headers["Content-Type"].startswith("text/html")


def test_a_method_the_api_call_does_not_take_answers_a_json_405(client, db):
    assert_json_error(client.put("/api/v1/sessions", "{}", content_type="application/json"), 405)


def test_a_host_outside_allowed_hosts_answers_a_json_400_on_the_api(client, db):
    assert_json_error(client.get("/api/v1/sessions/1", HTTP_HOST="evil.example.org"), 400)


def test_a_crash_in_an_api_call_answers_a_json_500(participant, monkeypatch):
    def crash(session):
        raise RuntimeError("bug")

    monkeypatch.setattr("experiments.selectors.session_state", crash)
    participant.client.raise_request_exception = False
    assert assert_json_error(participant.client.get(participant.url()), 500).startswith("Server error")
