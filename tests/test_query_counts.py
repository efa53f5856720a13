"""Each participant call costs a fixed number of queries (in a test, savepoints stand for the transactions
that production opens with BEGIN and ends with COMMIT)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from experiments.models import Session
from tests.conftest import Participant


@pytest.fixture
def consented(participant):
    participant.through_instructions()
    return participant


@pytest.fixture
def in_main_block(consented):
    consented.pass_practice()
    return consented


def test_starting_a_session_takes_16_queries(study, django_assert_num_queries):
    # Among them: the study's id by slug and its row, the studies linked to it (whose participants it refuses),
    # and its practice trials with their images, which the process then holds for a while (Study.cached).
    with django_assert_num_queries(16):
        assert Participant(study, "new").start().status_code == 201


def test_starting_a_session_where_the_process_holds_the_study_takes_9_queries(study, django_assert_num_queries):
    Participant(study, "first").start()
    with django_assert_num_queries(9):
        assert Participant(study, "new").start().status_code == 201


def test_consenting_takes_10_queries(participant, django_assert_num_queries):
    # Once the process holds the study (Study.cached): the first call on a session reads it too.
    participant.client.get(participant.url())
    with django_assert_num_queries(10):
        assert participant.event("consent").status_code == 201


def test_an_event_takes_3_queries(consented, django_assert_num_queries):
    # The session, the event, the session's last call: no transaction around the two writes.
    with django_assert_num_queries(3):
        assert consented.event("blur").status_code == 201


def test_fetching_a_trial_takes_4_queries(consented, django_assert_num_queries):
    # A practice round's first trial brings the whole round, more than the token's lookup reads with it.
    with django_assert_num_queries(4):
        assert consented.trial().status_code == 200


def test_fetching_a_trial_whose_images_the_process_has_read_takes_3_queries(consented, django_assert_num_queries):
    consented.trial()
    with django_assert_num_queries(3):
        assert consented.trial().status_code == 200


def test_fetching_a_main_trial_takes_2_queries(in_main_block, django_assert_num_queries):
    # The session by its token with its current trials, then when the trial was served.
    in_main_block.trial()
    with django_assert_num_queries(2):
        assert in_main_block.trial().status_code == 200


def test_answering_a_practice_trial_takes_5_queries(consented, django_assert_num_queries):
    index = consented.trial().json()["index"]
    choice = consented.correct_choice(index)
    with django_assert_num_queries(5):
        assert consented.answer(index, choice).status_code == 201


def test_answering_a_main_trial_takes_5_queries(in_main_block, django_assert_num_queries):
    index = in_main_block.trial().json()["index"]
    choice = in_main_block.correct_choice(index)
    with django_assert_num_queries(5):
        assert in_main_block.answer(index, choice).status_code == 201


def test_a_replayed_answer_takes_5_queries(consented, django_assert_num_queries):
    index = consented.trial().json()["index"]
    consented.answer(index, 0, client_id="00000000-0000-4000-8000-000000000001")
    with django_assert_num_queries(5):
        replay = consented.answer(index, 0, client_id="00000000-0000-4000-8000-000000000001")
    assert replay.status_code == 200


def test_completing_a_session_takes_12_queries(in_main_block, django_assert_num_queries):
    in_main_block.answer_all()
    assert in_main_block.session.phase == Session.Phase.MAIN
    with django_assert_num_queries(12):
        assert in_main_block.complete().status_code == 200


@pytest.mark.postgres
def test_a_new_postgresql_connection_starts_in_the_sites_time_zone(db):
    assert connection.vendor == "postgresql"
    raw = connection.get_new_connection(connection.get_connection_params())
    try:
        # Already UTC when it opens, so Django sends no SET TIME ZONE on it.
        assert raw.info.parameter_status("TimeZone") == "UTC"
    finally:
        raw.close()


@pytest.mark.postgres
def test_an_answers_token_lookup_also_locks_the_session_and_reads_its_trials(consented):
    index = consented.trial().json()["index"]
    with CaptureQueriesContext(connection) as queries:
        assert consented.answer(index, consented.correct_choice(index)).status_code == 201
    lookups = [q["sql"] for q in queries.captured_queries if '"token" =' in q["sql"]]
    assert len(lookups) == 1
    assert lookups[0].endswith('FOR UPDATE OF "experiments_session"') and '"experiments_sessiontrial"' in lookups[0]
