"""Feedback on main trials is a study setting: on (IMI's), or off, when no reply in the main block may say
anything drawn from the answer key, so that replies never add up to a key over sessions."""

import uuid

import pytest

from experiments.models import Response
from protocols.two_afc.protocol import TwoAFC
from tests.builders import build_2afc_study
from tests.conftest import Participant


@pytest.fixture
def unjudged(db) -> Participant:
    """A participant of a study without main-block feedback, in the main block."""
    participant = Participant(build_2afc_study(main_feedback=False))
    participant.start()
    participant.through_instructions()
    participant.pass_practice()
    return participant


@pytest.fixture
def extra_feedback(monkeypatch) -> None:
    """2-AFC with a reply field of its own drawn from the key, as a protocol may have."""
    monkeypatch.setattr(TwoAFC, "feedback", lambda self, answer, key, display, urls: {"right_choice": key["choice"]})


def test_main_answers_are_judged_by_default(participant):
    participant.through_instructions()
    participant.pass_practice()
    assert participant.answer_current(right=False).json()["correct"] is False


def test_without_main_feedback_a_main_answer_is_not_judged_in_the_reply(unjudged):
    reply = unjudged.answer_current(right=False).json()
    assert reply["correct"] is None
    assert set(reply) == {"correct", "index", "done", "practice"}


def test_without_main_feedback_the_answer_is_still_scored_for_the_checks_and_the_export(unjudged):
    index = unjudged.trial().json()["index"]
    unjudged.answer(index, 1 - unjudged.correct_choice(index))
    assert Response.objects.get(session_id=unjudged.id, session_trial__index=index).correct is False


def test_without_main_feedback_a_replayed_main_answer_is_not_judged_either(unjudged):
    index = unjudged.trial().json()["index"]
    client_id = str(uuid.uuid4())
    unjudged.answer(index, unjudged.correct_choice(index), client_id=client_id)
    replay = unjudged.answer(index, unjudged.correct_choice(index), client_id=client_id)
    assert replay.status_code == 200 and replay.json()["correct"] is None


def test_without_main_feedback_practice_answers_are_still_judged(db):
    participant = Participant(build_2afc_study(main_feedback=False))
    participant.start()
    participant.through_instructions()
    assert participant.answer_current(right=True).json()["correct"] is True


def test_without_main_feedback_the_protocols_own_reply_fields_are_left_out(unjudged, extra_feedback):
    assert "right_choice" not in unjudged.answer_current().json()


def test_practice_replies_keep_the_protocols_own_fields(db, extra_feedback):
    participant = Participant(build_2afc_study(main_feedback=False))
    participant.start()
    participant.through_instructions()
    index = participant.trial().json()["index"]
    reply = participant.answer(index, 0).json()
    assert reply["right_choice"] == participant.correct_choice(index)


def test_the_session_state_says_whether_main_answers_are_judged(unjudged):
    assert unjudged.client.get(unjudged.url()).json()["main_feedback"] is False


@pytest.mark.parametrize(
    ("main_feedback", "said", "unsaid"),
    [(True, "After each answer, the image you chose is marked", "In the main block you are not told"),
     (False, "In the main block you are not told", "After each answer, the image you chose is marked")],
)
def test_the_instructions_say_which_answers_are_judged(client, db, main_feedback, said, unsaid):
    study = build_2afc_study(main_feedback=main_feedback)
    page = " ".join(client.get(f"/s/{study.slug}/?participant=p1").content.decode().split())
    assert said in page and unsaid not in page
