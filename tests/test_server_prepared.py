"""On PostgreSQL, with DB_PREPARED_STATEMENTS, a prepared query is PREPAREd on the server once per database
session and EXECUTEd from then on."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from experiments.models import Response
from tests.builders import build_2afc_study
from tests.conftest import Participant
from tests.factories import StudyFactory
from tests.test_prepared import STUDY_BY_SLUG, first_run_here

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def prepared_on_server(settings) -> None:
    assert connection.vendor == "postgresql"
    settings.DB_PREPARED_STATEMENTS = True


def test_on_postgresql_a_statement_is_prepared_once_then_only_executed(db):
    study, by_slug = StudyFactory(), first_run_here("name")
    with CaptureQueriesContext(connection) as queries:
        by_slug.get(slug=study.slug)
        assert by_slug.get(slug=study.slug).pk == study.pk
    sent = [query["sql"] for query in queries]
    assert sent[0].startswith("PREPARE psy_") and '"experiments_study"."slug" = $1' in sent[0]
    assert sent[1:] == [f"EXECUTE {sent[0].split()[1]} ('{study.slug}')"] * 2


@pytest.mark.django_db(transaction=True)
def test_a_new_database_session_prepares_its_statements_again():
    study = StudyFactory()
    STUDY_BY_SLUG.get(slug=study.slug)
    connection.close()  # as a database restart does; the next statement opens another session
    with CaptureQueriesContext(connection) as queries:
        assert STUDY_BY_SLUG.get(slug=study.slug).pk == study.pk
    assert queries[0]["sql"].startswith("PREPARE")


def test_a_participants_trial_fetch_and_answer_execute_their_prepared_statements(db):
    participant = Participant(build_2afc_study(n_units=44), "p")
    participant.start()
    participant.through_instructions()
    participant.pass_practice()
    participant.answer_current()  # the main block's first fetch and answer prepare what they have not yet
    index = participant.trial().json()["index"]
    choice = participant.correct_choice(index)
    with CaptureQueriesContext(connection) as fetching:
        assert participant.trial().json()["index"] == index
    with CaptureQueriesContext(connection) as answering:
        assert participant.answer(index, choice).status_code == 201
    # The token lookup that marks the trial served; the token lookup and the answer's one write.
    assert [query["sql"].split()[0] for query in fetching] == ["EXECUTE"]
    assert [query["sql"].split()[0] for query in answering] == ["EXECUTE"] * 2
    assert Response.objects.get(session=participant.session, session_trial__index=index).answer["choice"] == choice
