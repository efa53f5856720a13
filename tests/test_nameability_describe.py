"""Nameability's describe stage through the API: what it renders, what the browser receives, how names are
stored, refused, judged and checked."""

from __future__ import annotations

import json

import pytest

from experiments.models import Response, SessionTrial, Trial
from protocols.nameability.describe import EXEMPLAR, HELD_OUT
from tests.nameability import Namer, rendered_describe_study, unit_names

pytestmark = pytest.mark.django_db


@pytest.fixture
def describe_study(isolated_files, tiny_model):
    return rendered_describe_study(tiny_model)


def started(study, name="namer", naming=unit_names) -> Namer:
    namer = Namer(study, name, naming)
    namer.start()
    namer.through_instructions()
    return namer


def images_of(trial: Trial, role: str) -> set[int]:
    return set(trial.images.filter(role=role).values_list("image_id", flat=True))


def test_each_unit_has_exemplars_per_batch_and_held_out_images_no_batch_shows(describe_study):
    for unit in {trial.unit_id for trial in describe_study.trials.filter(kind=Trial.Kind.MAIN)}:
        trials = list(describe_study.trials.filter(kind=Trial.Kind.MAIN, unit_id=unit))
        assert len(trials) == 2
        held_out = [images_of(trial, HELD_OUT) for trial in trials]
        assert held_out[0] == held_out[1] and len(held_out[0]) == 2
        shown = set().union(*(images_of(trial, EXEMPLAR) for trial in trials))
        assert len(shown) == 2 * 4 and not shown & held_out[0]


def test_practice_and_catch_trials_are_sets_of_known_concepts(describe_study):
    practice = describe_study.trials.filter(kind=Trial.Kind.PRACTICE)
    assert sorted(trial.content["label"] for trial in practice) == ["cat", "coffee"]
    for trial in describe_study.trials.filter(kind__in=[Trial.Kind.PRACTICE, Trial.Kind.CATCH]):
        photo = {"cat": "chelsea", "coffee": "coffee", "rocket": "rocket", "astronaut": "astronaut",
                 "motorcycle": "motorcycle_left"}[trial.content["label"]]
        keys = trial.images.values_list("image__source_key", flat=True)
        assert len(keys) == 4 and all(f"/{photo}/" in key for key in keys)
    catch_files = set(describe_study.trials.filter(kind=Trial.Kind.CATCH).values_list("images__image__sha256", flat=True))
    practice_files = set(practice.values_list("images__image__sha256", flat=True))
    assert not catch_files & practice_files  # catch sets are disguised copies


def test_the_browser_gets_the_exemplars_and_limits_and_nothing_that_tells_a_catch_trial(describe_study):
    namer = started(describe_study)
    while namer.session.phase == "practice":
        namer.name_current()
    seen = []
    while not (trial := namer.trial().json())["done"]:
        planned = SessionTrial.objects.get(session_id=namer.id, index=trial["index"])
        assert set(trial) == {"done", "protocol", "index", "phase", "attempt", "position", "of", "exemplars",
                              "grid", "limits", "preload"}
        assert len(trial["exemplars"]) == 4 and trial["limits"] == {"min_words": 1, "max_words": 6, "max_chars": 80}
        held_out = images_of(planned.trial, HELD_OUT)
        assert not held_out & set(planned.layout["exemplars"])
        assert "label" not in json.dumps(trial) and planned.key.get("label", "@@") not in json.dumps(trial)
        seen.append(planned.trial.kind)
        namer.name_current()
    assert sorted(seen) == ["catch"] * 2 + ["main"] * 4


def test_a_name_is_stored_raw_with_its_normalised_form_and_quality_signals(describe_study):
    namer = started(describe_study)
    while namer.session.phase == "practice":
        namer.name_current()
    index = namer.trial().json()["index"]
    reply = namer.name(index, "  Striped  Cats! ", pasted=True, keystrokes=0, typing_ms=120, focus_lost=True)
    assert reply.status_code == 201
    answer = Response.objects.get(session_trial__session_id=namer.id, session_trial__index=index).answer
    assert answer["text"] == "  Striped  Cats! " and answer["normalised"] == "stripe cat"
    assert answer["words"] == 2 and answer["pasted"] and answer["focus_lost"] and answer["too_fast"]
    assert answer["unknown_words"] == ""


def test_words_that_are_not_english_are_flagged(describe_study):
    namer = started(describe_study)
    while namer.session.phase == "practice":
        namer.name_current()
    index = namer.trial().json()["index"]
    namer.name(index, "blorptz furry")
    answer = Response.objects.get(session_trial__session_id=namer.id, session_trial__index=index).answer
    assert answer["unknown_words"] == "blorptz" and not answer["too_fast"]


@pytest.mark.parametrize(
    ("text", "message"),
    [("one two three four five six seven", "Please name it in 1 to 6 words (this has 7)."),
     (" ... ", "Please name it in 1 to 6 words (this has 0)."),
     ("a" * 81, "Please keep it to 80 characters (this has 81).")],
)
def test_a_name_outside_the_limits_is_refused_with_a_message_and_nothing_is_stored(describe_study, text, message):
    namer = started(describe_study)
    index = namer.trial().json()["index"]
    reply = namer.name(index, text)
    assert reply.status_code == 400 and reply.json()["error"] == message
    assert not Response.objects.filter(session_trial__session_id=namer.id).exists()


def test_a_practice_reply_says_whether_the_name_was_close_and_what_was_expected(describe_study):
    namer = started(describe_study)
    planned = SessionTrial.objects.get(session_id=namer.id, index=namer.trial().json()["index"])
    synonym = {"cat": "a kitten", "coffee": "cup of espresso"}[planned.key["label"]]
    close = namer.name(planned.index, synonym).json()
    assert close["correct"] is True and close["expected"] == planned.key["label"]
    planned = SessionTrial.objects.get(session_id=namer.id, index=namer.trial().json()["index"])
    far = namer.name(planned.index, "blue sky over mountains").json()
    assert far["correct"] is False and far["expected"] == planned.key["label"]
    assert far["practice"] == {"attempt": 1, "passed": False, "wrong": 1, "of": 2}
    assert namer.session.phase == "practice"  # the round repeats


def test_a_main_reply_says_nothing_of_the_name(describe_study):
    namer = started(describe_study)
    while namer.session.phase == "practice":
        namer.name_current()
    reply = namer.name_current().json()
    assert reply["correct"] is None and "expected" not in reply


def test_a_session_that_pastes_its_names_fails_the_paste_check(describe_study):
    namer = started(describe_study)
    while not namer.trial().json()["done"]:
        namer.name_current(pasted=True)
    namer.complete()
    checks = {check.name: check for check in namer.session.checks.all()}
    assert checks["text_pasted"].value == 4 and not checks["text_pasted"].passed
    assert checks["catch_trials"].passed and checks["text_focus_lost"].passed
    assert namer.session.passed is False


def test_the_same_name_for_every_unit_fails_its_check(describe_study):
    namer = started(describe_study, naming=lambda trial: "Things")
    while not namer.trial().json()["done"]:
        namer.name_current()
    namer.complete()
    same = namer.session.checks.get(name="same_answer")
    assert same.value == 1 and not same.passed


def test_catch_names_far_from_their_labels_fail_the_catch_check(describe_study):
    namer = started(describe_study)
    while namer.session.phase == "practice":
        namer.name_current()
    while not (trial := namer.trial().json())["done"]:
        namer.name(trial["index"], f"unit name {trial['index']}")
    namer.complete()
    assert not namer.session.checks.get(name="catch_trials").passed
