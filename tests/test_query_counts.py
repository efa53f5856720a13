"""Each participant call costs a fixed number of queries (in a test, savepoints stand for the transactions
that production opens with BEGIN and ends with COMMIT)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from experiments.models import Session, SessionTrial
from tests.conftest import Participant


@pytest.fixture
def consented(participant):
    participant.through_instructions()
    return participant


def at_the_rounds_last_trial(participant: Participant) -> int:
    """Answer the practice round but its last trial, then fetch that one; returns its index."""
    planned = SessionTrial.objects.filter(session_id=participant.id, phase=Session.Phase.PRACTICE).count()
    for _ in range(planned - 1):
        participant.answer_current(right=True)
    return int(participant.trial().json()["index"])


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


# A trial fetch's lookup marks the current trial served in the same statement on PostgreSQL; elsewhere the mark
# is one statement more.
MARKED_APART = {"postgresql": 0, "sqlite": 1}


def test_fetching_a_trial_takes_3_queries_on_postgresql(consented, django_assert_num_queries):
    # A practice round's first trial brings the whole round, more than the token's lookup reads with it, and the
    # images of its trials.
    with django_assert_num_queries(3 + MARKED_APART[connection.vendor]):
        assert consented.trial().status_code == 200


def test_fetching_a_trial_whose_images_the_process_has_read_takes_2_queries_on_postgresql(
    consented, django_assert_num_queries
):
    consented.trial()
    with django_assert_num_queries(2 + MARKED_APART[connection.vendor]):
        assert consented.trial().status_code == 200


def test_fetching_a_main_trial_takes_1_query_on_postgresql(in_main_block, django_assert_num_queries):
    # The session by its token with its current trials, the current one marked served.
    in_main_block.trial()
    with django_assert_num_queries(1 + MARKED_APART[connection.vendor]):
        assert in_main_block.trial().status_code == 200


# An answer within its round is one statement after the lookup on PostgreSQL; elsewhere (SQLite has no
# data-modifying WITH) it is written in a transaction, the session's row read again and locked.
ANSWER_QUERIES = {"postgresql": 2, "sqlite": 6}


def test_answering_a_practice_trial_takes_2_queries_on_postgresql(consented, django_assert_num_queries):
    index = consented.trial().json()["index"]
    choice = consented.correct_choice(index)
    with django_assert_num_queries(ANSWER_QUERIES[connection.vendor]):
        assert consented.answer(index, choice).status_code == 201


def test_answering_a_main_trial_takes_2_queries_on_postgresql(in_main_block, django_assert_num_queries):
    index = in_main_block.trial().json()["index"]
    choice = in_main_block.correct_choice(index)
    with django_assert_num_queries(ANSWER_QUERIES[connection.vendor]):
        assert in_main_block.answer(index, choice).status_code == 201


def test_answering_a_practice_rounds_last_trial_takes_13_queries(consented, django_assert_num_queries):
    # The lookup, then in a transaction (its begin and end): the session locked with its trials, the answer, the
    # round's scores, the session, and the main block planned (6: the trials to choose from, with their images).
    last = at_the_rounds_last_trial(consented)
    choice = consented.correct_choice(last)
    with django_assert_num_queries(13):
        assert consented.answer(last, choice).status_code == 201


def test_a_replayed_answer_takes_3_queries(consented, django_assert_num_queries):
    # The lookup, the stored answer, and the trial after it (whether the answer ended its round).
    index = consented.trial().json()["index"]
    consented.answer(index, 0, client_id="00000000-0000-4000-8000-000000000001")
    with django_assert_num_queries(3):
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
def test_an_answer_within_its_round_moves_the_session_on_and_stores_the_answer_in_one_statement(consented):
    index = consented.trial().json()["index"]
    choice = consented.correct_choice(index)
    with CaptureQueriesContext(connection) as queries:
        assert consented.answer(index, choice).status_code == 201
    lookup, write = (q["sql"] for q in queries.captured_queries)
    assert '"token" =' in lookup and "FOR UPDATE" not in lookup and '"experiments_sessiontrial"' in lookup
    assert write.startswith('WITH "updated" AS (UPDATE "experiments_session"')
    assert 'INSERT INTO "experiments_response"' in write


@pytest.mark.postgres
def test_an_answer_that_ends_its_round_is_stored_with_the_session_locked(consented):
    last = at_the_rounds_last_trial(consented)
    choice = consented.correct_choice(last)
    with CaptureQueriesContext(connection) as queries:
        assert consented.answer(last, choice).status_code == 201
    locked = [q["sql"] for q in queries.captured_queries if q["sql"].endswith('FOR UPDATE OF "experiments_session"')]
    assert len(locked) == 1 and '"token" =' in locked[0]
