"""GET /trial, POST /responses, /events and /complete: the trial loop as the browser drives it."""

import json
import uuid

import pytest

from experiments.models import Response, Session, SessionTrial, Trial


@pytest.fixture
def consented(participant):
    participant.through_instructions()
    return participant


def test_trials_are_served_only_after_consent(participant):
    response = participant.trial()
    assert response.status_code == 409
    assert "consent" in response.json()["error"]


def test_a_trial_shows_nine_references_per_side_and_two_queries(consented):
    trial = consented.trial().json()
    assert len(trial["references"]["min"]) == 9
    assert len(trial["references"]["max"]) == 9
    assert len(trial["queries"]) == 2
    assert trial["phase"] == "practice" and trial["position"] == 1 and trial["of"] == 5


def test_a_trial_payload_carries_nothing_but_what_the_screen_shows(consented):
    trial = consented.trial().json()
    assert set(trial) == {
        "done", "protocol", "index", "phase", "attempt", "position", "of", "references", "queries", "grid",
        "preload",
    }
    text = json.dumps(trial).lower()
    for telltale in ("correct", "positive", "negative", "catch", "kind", "activation"):
        assert telltale not in text


def test_catch_trials_look_like_main_trials(consented):
    consented.pass_practice()
    payloads = []
    while not (trial := consented.trial().json())["done"]:
        kind = SessionTrial.objects.get(session_id=consented.id, index=trial["index"]).trial.kind
        payloads.append((kind, trial))
        consented.answer_current()
    catch = [t for kind, t in payloads if kind == Trial.Kind.CATCH]
    main = [t for kind, t in payloads if kind == Trial.Kind.MAIN]
    assert len(catch) == 5 and len(main) == 40
    assert {tuple(sorted(t)) for t in catch} == {tuple(sorted(t)) for t in main}
    assert {t["phase"] for t in catch} == {"main"}


def test_an_answer_says_whether_it_was_correct(consented):
    index = consented.trial().json()["index"]
    response = consented.answer(index, consented.correct_choice(index))
    assert response.status_code == 201
    assert response.json()["correct"] is True


def test_replaying_a_client_id_returns_the_same_answer_and_stores_nothing(consented):
    index = consented.trial().json()["index"]
    client_id = str(uuid.uuid4())
    wrong = 1 - consented.correct_choice(index)
    first = consented.answer(index, wrong, client_id=client_id)
    replay = consented.answer(index, 1 - wrong, client_id=client_id)
    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert Response.objects.count() == 1


def test_a_client_id_sent_again_for_the_next_trial_returns_the_answer_it_named_and_stores_nothing(consented):
    index = consented.trial().json()["index"]
    client_id = str(uuid.uuid4())
    first = consented.answer(index, consented.correct_choice(index), client_id=client_id)
    consented.trial()
    again = consented.answer(index + 1, consented.correct_choice(index + 1), client_id=client_id)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert Response.objects.count() == 1 and consented.session.next_index == index + 1


def test_an_answer_for_another_trial_is_a_conflict(consented):
    index = consented.trial().json()["index"]
    response = consented.answer(index + 1, 0)
    assert response.status_code == 409
    assert "not the current trial" in response.json()["error"]
    assert Response.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        "{}",
        '{"index": 0, "choice": 2, "confidence": 1, "rt_ms": 5, "client_id": "%s"}' % uuid.uuid4(),
        '{"index": 0, "choice": 0, "confidence": 4, "rt_ms": 5, "client_id": "%s"}' % uuid.uuid4(),
        '{"index": 0, "choice": 0, "confidence": 1, "rt_ms": -5, "client_id": "%s"}' % uuid.uuid4(),
        '{"index": 0, "choice": 0, "confidence": 1, "rt_ms": 5, "client_id": "abc"}',
        '{"index": "zero", "choice": 0, "confidence": 1, "rt_ms": 5, "client_id": "%s"}' % uuid.uuid4(),
        '{"index": 0, "choice": null, "confidence": 1, "rt_ms": 5, "client_id": "%s"}' % uuid.uuid4(),
    ],
)
def test_a_malformed_answer_is_a_bad_request_with_a_message(consented, body):
    response = consented.client.post(
        consented.url("/responses"), body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.parametrize(
    "body", ['{"type": "dance"}', '{"payload": {}}', '{"type": "blur", "payload": [1]}', "nope"]
)
def test_a_malformed_event_is_a_bad_request_with_a_message(participant, body):
    response = participant.client.post(
        participant.url("/events"), body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]


def test_a_wrong_practice_answer_repeats_the_whole_practice_round(consented):
    consented.answer_current(right=False)
    for _ in range(4):
        last = consented.answer_current(right=True)
    assert last.json()["practice"] == {"attempt": 1, "passed": False, "wrong": 1, "of": 5}
    trial = consented.trial().json()
    assert (trial["phase"], trial["attempt"], trial["position"]) == ("practice", 2, 1)


def test_a_correct_practice_round_starts_the_main_block(consented):
    for _ in range(5):
        last = consented.answer_current(right=True)
    assert last.json()["practice"] == {"attempt": 1, "passed": True, "wrong": 0, "of": 5}
    trial = consented.trial().json()
    assert (trial["phase"], trial["position"], trial["of"]) == ("main", 1, 45)


def test_the_main_block_shows_forty_distinct_units(consented):
    consented.pass_practice()
    main = SessionTrial.objects.filter(session_id=consented.id, trial__kind=Trial.Kind.MAIN)
    assert main.count() == 40
    assert len(set(main.values_list("trial__unit", flat=True))) == 40


def test_the_trial_after_the_last_one_is_done(consented):
    consented.pass_practice()
    consented.answer_all()
    assert consented.trial().json() == {"done": True, "protocol": "2afc"}


def test_completing_before_the_last_trial_is_a_conflict(consented):
    response = consented.complete()
    assert response.status_code == 409


def test_completing_returns_the_completion_code_and_stores_feedback(consented):
    consented.pass_practice()
    consented.answer_all()
    response = consented.complete("fun")
    assert response.json() == {"completed": True, "completion_code": consented.session.completion_code}
    session = consented.session
    assert session.status == Session.Status.COMPLETED and session.feedback == "fun"


def test_completing_twice_returns_the_same_hand_back(consented):
    consented.pass_practice()
    consented.answer_all()
    assert consented.complete().json() == consented.complete().json()


def test_answers_after_completion_are_refused(consented):
    consented.pass_practice()
    consented.answer_all()
    consented.complete()
    response = consented.answer(999, 0)
    assert response.status_code == 409


def test_no_api_call_answers_with_a_server_error_on_odd_input(consented):
    odd = ["", "null", "0", '"x"', '{"feedback": 5}', '{"feedback": ["a"]}']
    for path in ("/responses", "/events", "/complete"):
        for body in odd:
            response = consented.client.post(consented.url(path), body, content_type="application/json")
            assert response.status_code < 500, (path, body)
    for body in odd + ['{"study": 1, "source": "local"}', '{"study": "x", "source": null}']:
        response = consented.client.post("/api/v1/sessions", body, content_type="application/json")
        assert response.status_code < 500, body


def test_a_trial_is_sent_as_json_whatever_the_browser_says_it_accepts(consented):
    response = consented.client.get(consented.url("/trial"), HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.json()["index"] == 0


def test_a_refused_answer_leaves_nothing_behind_for_the_next_one(consented):
    # The answer's serializer is kept per thread: one call's errors and values must not reach the next.
    index = consented.trial().json()["index"]
    bad = {"index": index, "choice": 0, "confidence": 9, "rt_ms": 5, "client_id": str(uuid.uuid4())}
    first = consented.client.post(consented.url("/responses"), bad, format="json")
    second = consented.client.post(consented.url("/responses"), bad, format="json")
    assert first.status_code == second.status_code == 400 and first.json() == second.json()
    assert consented.answer(index, consented.correct_choice(index)).status_code == 201


def test_replaying_the_last_answer_after_every_trial_is_answered_returns_it(consented):
    consented.pass_practice()
    consented.answer_all()
    last = Response.objects.filter(session_id=consented.id).order_by("session_trial__index").last()
    assert last is not None
    index = last.session_trial.index
    replay = consented.answer(index, last.answer["choice"], client_id=str(last.client_id))
    assert replay.status_code == 200 and replay.json()["index"] == index and replay.json()["done"] is True
    assert Response.objects.filter(session_id=consented.id).count() == index + 1
