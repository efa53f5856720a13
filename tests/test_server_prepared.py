"""On PostgreSQL, with DB_PREPARED_STATEMENTS, a prepared query is PREPAREd on the server once per database
session and EXECUTEd from then on."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

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
