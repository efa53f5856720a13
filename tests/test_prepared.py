"""Prepared queries give what the ORM gives for the same queryset, with the values of each call."""

import threading
import uuid

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from experiments.models import Event, Response, Session, SessionTrial, Study
from experiments.prepared import (
    PreparedInsert,
    PreparedQueryError,
    PreparedSelect,
    PreparedSelectMarkingFirst,
    PreparedUpdate,
    PreparedUpdateThenInsert,
    _numbered,
)
from tests.builders import build_2afc_study
from tests.conftest import Participant
from tests.factories import StudyFactory

STUDY_BY_SLUG = PreparedSelect(lambda slug: Study.objects.filter(slug=slug), slug=Study._meta.get_field("slug"))


@pytest.fixture(autouse=True, params=[False, True], ids=["sent-whole", "prepared-on-server"])
def on_server(request, settings) -> bool:
    """Every behaviour holds with statements sent whole and, on PostgreSQL, prepared on the server."""
    settings.DB_PREPARED_STATEMENTS = request.param
    return bool(request.param) and connection.vendor == "postgresql"


def _fields(instance: object) -> dict[str, object]:
    return {name: value for name, value in vars(instance).items() if name != "_state"}


def _started(study: Study, name: str) -> Session:
    participant = Participant(study, name)
    participant.start()
    participant.through_instructions()
    participant.trial()
    return participant.session


def test_a_prepared_select_makes_the_instances_the_orm_makes(db):
    study = StudyFactory(layers=["blocks.6"])
    prepared = STUDY_BY_SLUG.get(slug=study.slug)
    assert _fields(prepared) == _fields(Study.objects.get(slug=study.slug))
    assert prepared._state.adding is False and prepared._state.db == "default"


def test_each_call_runs_with_its_own_values(db):
    first, second = StudyFactory(), StudyFactory()
    assert STUDY_BY_SLUG.get(slug=first.slug).pk == first.pk
    assert STUDY_BY_SLUG.get(slug=second.slug).pk == second.pk
    assert STUDY_BY_SLUG.first(slug="no-such-study") is None


def test_get_raises_as_the_orm_does(db):
    with pytest.raises(Study.DoesNotExist):
        STUDY_BY_SLUG.get(slug="no-such-study")


def test_a_value_used_twice_is_put_in_both_places_and_annotations_are_set(db):
    study = build_2afc_study()
    session = _started(study, "p")
    answered = Session.objects.filter(pk=OuterRef("session_id"), pk__in=[session.pk])
    with_flag = PreparedSelect(
        lambda session: SessionTrial.objects.filter(session_id=session)
        .annotate(mine=Exists(answered.filter(pk=session)))
        .order_by("index"),
        session=SessionTrial._meta.get_field("session"),
    )
    rows = with_flag.all(session=session.pk)
    assert [row.pk for row in rows] == list(
        SessionTrial.objects.filter(session=session).order_by("index").values_list("pk", flat=True)
    )
    assert all(row.mine for row in rows)


def test_the_shape_arguments_pick_the_compiled_statement(db):
    session = _started(build_2afc_study(), "p")
    first_n = PreparedSelect(
        lambda limit, session: SessionTrial.objects.filter(session_id=session).order_by("index")[:limit],
        session=SessionTrial._meta.get_field("session"),
    )
    assert len(first_n.all(1, session=session.pk)) == 1
    assert len(first_n.all(3, session=session.pk)) == 3


def test_a_comparison_with_a_positive_integer_column_keeps_its_value(db):
    session = _started(build_2afc_study(), "p")
    from_index = PreparedSelect(
        lambda session, start: SessionTrial.objects.filter(session_id=session, index__gte=start).order_by("index"),
        session=SessionTrial._meta.get_field("session"),
        start=SessionTrial._meta.get_field("index"),
    )
    assert [t.index for t in from_index.all(session=session.pk, start=2)][:2] == [2, 3]


def test_a_prepared_update_changes_the_matched_rows_only(db):
    study = build_2afc_study()
    mine, other = _started(study, "p1"), _started(study, "p2")
    seen = timezone.now()
    touch = PreparedUpdate(
        Session, lambda pk: Session.objects.filter(pk=pk), ("last_seen_at",), pk=Session._meta.pk
    )
    assert touch.run(pk=mine.pk, last_seen_at=seen) == 1
    assert Session.objects.get(pk=mine.pk).last_seen_at == seen
    assert Session.objects.get(pk=other.pk).last_seen_at == other.last_seen_at


EVENT = PreparedInsert(Event)


def test_a_prepared_insert_stores_the_row_the_orms_create_stores(db):
    session = _started(build_2afc_study(), "p")
    at = timezone.now()
    prepared = EVENT.create(session=session, type=Event.Type.BLUR, payload={"n": [1, "é"]}, created_at=at)
    through_orm = Event.objects.create(session=session, type=Event.Type.BLUR, payload={"n": [1, "é"]}, created_at=at)
    assert prepared.pk is not None and prepared.pk != through_orm.pk
    assert prepared._state.adding is False and prepared._state.db == "default"
    stored = Event.objects.get(pk=prepared.pk)
    assert _fields(stored) | {"id": None} == _fields(Event.objects.get(pk=through_orm.pk)) | {"id": None}


def test_a_prepared_insert_of_many_rows_stores_the_rows_the_orms_bulk_create_stores(db):
    mine, theirs = (_started(build_2afc_study(), name) for name in ("p1", "p2"))
    at = timezone.now()

    def events(session: Session) -> list[Event]:
        return [
            Event(session=session, type=Event.Type.BLUR, payload={"n": [number, "é"]}, created_at=at)
            for number in range(3)
        ] + [Event(session=session, type=Event.Type.FOCUS)]

    EVENT.create_many(events(mine))
    Event.objects.bulk_create(events(theirs))

    def stored(session: Session) -> list[dict[str, object]]:
        rows = Event.objects.filter(session=session, type__in=[Event.Type.BLUR, Event.Type.FOCUS]).order_by("pk")
        return [_fields(event) | {"id": None, "session_id": None, "created_at": None} for event in rows]

    assert len(stored(mine)) == 4 and stored(mine) == stored(theirs)


def test_a_prepared_insert_gives_unset_fields_their_defaults(db):
    session = _started(build_2afc_study(), "p")
    before = timezone.now()
    stored = Event.objects.get(pk=EVENT.create(session=session, type=Event.Type.FOCUS).pk)
    assert stored.payload == {} and stored.created_at >= before


def test_statements_go_through_djangos_cursor(db, on_server):
    study = StudyFactory()
    with CaptureQueriesContext(connection) as queries:
        STUDY_BY_SLUG.get(slug=study.slug)
    # Prepared on the server, its first run on a connection (maybe an earlier test's) sent the PREPARE first.
    assert len(queries) == 1 or (on_server and len(queries) == 2)
    assert study.slug in queries[-1]["sql"]


def first_run_here(order: str) -> PreparedSelect[Study]:
    """A statement no other test runs (its own order), so that its first run here is its first on the connection."""
    return PreparedSelect(lambda slug: Study.objects.filter(slug=slug).order_by(order), slug=Study._meta.get_field("slug"))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_statement_first_run_in_a_rolled_back_transaction_runs_after_it(on_server):
    study, by_slug = StudyFactory(), first_run_here("-name")
    with pytest.raises(RuntimeError), transaction.atomic():
        by_slug.get(slug=study.slug)
        raise RuntimeError("rolled back")
    with CaptureQueriesContext(connection) as queries:
        assert by_slug.get(slug=study.slug).pk == study.pk
    assert len(queries) == 1  # still prepared: a prepared statement outlives the transaction it came in


def test_the_servers_numbered_parameters_leave_literal_percent_signs_to_the_driver():
    assert _numbered("a = %s AND b LIKE '%%x%%' AND c IN (%s, %s)") == "a = $1 AND b LIKE '%%x%%' AND c IN ($2, $3)"


def test_a_declared_value_the_query_does_not_use_is_refused_when_compiled(db):
    unused = PreparedSelect(
        lambda slug, pk: Study.objects.filter(slug=slug), slug=Study._meta.get_field("slug"), pk=Study._meta.pk
    )
    with pytest.raises(PreparedQueryError, match="'pk' is not a parameter"):
        unused.all(slug="x", pk=1)


def test_a_call_must_give_every_declared_value(db):
    with pytest.raises(PreparedQueryError, match="Expected the values"):
        STUDY_BY_SLUG.all(slug="x", pk=1)


def test_a_field_of_a_type_without_a_stand_in_is_refused(db):
    by_params = PreparedSelect(
        lambda params: Study.objects.filter(params=params), params=Study._meta.get_field("params")
    )
    with pytest.raises(PreparedQueryError, match="cannot take a value"):
        by_params.all(params={})


@pytest.mark.django_db(transaction=True)
def test_each_thread_runs_its_own_connections_statement():
    study = StudyFactory()
    STUDY_BY_SLUG.get(slug=study.slug)
    found: list[int] = []

    def in_another_thread() -> None:
        try:
            found.append(STUDY_BY_SLUG.get(slug=study.slug).pk)
        finally:
            connection.close()

    worker = threading.Thread(target=in_another_thread)
    worker.start()
    worker.join()
    assert found == [study.pk]


def test_a_uuid_value_is_prepared_for_the_database_as_the_orm_prepares_it(db):
    participant = Participant(build_2afc_study(), "p")
    participant.start()
    participant.through_instructions()
    index = participant.trial().json()["index"]
    client_id = uuid.uuid4()
    assert participant.answer(index, participant.correct_choice(index), client_id=str(client_id)).status_code == 201
    answered_with = PreparedSelect(
        lambda session, client_id: Session.objects.filter(pk=session, responses__client_id=client_id),
        session=Session._meta.pk,
        client_id=Response._meta.get_field("client_id"),
    )
    assert [found.pk for found in answered_with.all(session=participant.id, client_id=client_id)] == [participant.id]
    assert answered_with.all(session=participant.id, client_id=uuid.uuid4()) == []


def test_a_prepared_select_related_makes_the_related_instances_the_orm_makes(db):
    session = _started(build_2afc_study(), "p")
    with_session = PreparedSelect(
        lambda session: SessionTrial.objects.select_related("session").filter(session_id=session).order_by("index"),
        session=SessionTrial._meta.get_field("session"),
    )
    prepared = with_session.all(session=session.pk)
    through_orm = list(SessionTrial.objects.select_related("session").filter(session_id=session.pk).order_by("index"))
    assert [_fields(trial.session) for trial in prepared] == [_fields(trial.session) for trial in through_orm]
    assert [trial.pk for trial in prepared] == [trial.pk for trial in through_orm]


def test_rows_that_read_the_same_related_row_share_one_instance_of_it(db):
    study = build_2afc_study()
    mine, other = _started(study, "p1"), _started(study, "p2")
    with_session = PreparedSelect(
        lambda first, second: SessionTrial.objects.select_related("session")
        .filter(session_id__in=[first, second])
        .order_by("session_id", "index"),
        first=SessionTrial._meta.get_field("session"),
        second=SessionTrial._meta.get_field("session"),
    )
    trials = with_session.all(first=mine.pk, second=other.pk)
    sessions = {trial.session_id: {id(t.session) for t in trials if t.session_id == trial.session_id} for trial in trials}
    assert len(trials) > 2 and sessions.keys() == {mine.pk, other.pk}
    assert all(len(instances) == 1 for instances in sessions.values())


def test_an_insert_unless_conflict_stores_nothing_where_the_row_breaks_a_unique_constraint(db):
    session = _started(build_2afc_study(), "p")
    trials = list(SessionTrial.objects.filter(session=session).order_by("index")[:2])
    answers = PreparedInsert(Response)
    client_id = uuid.uuid4()
    first = answers.create_unless_conflict(session=session, session_trial=trials[0], client_id=client_id, rt_ms=900)
    again = answers.create_unless_conflict(session=session, session_trial=trials[1], client_id=client_id, rt_ms=800)
    assert first is not None and first.pk is not None and again is None
    assert list(Response.objects.filter(session=session).values_list("session_trial", "rt_ms")) == [(trials[0].pk, 900)]


# The session moves on to the answered trial's successor only if it is still on that trial, and the answer is
# stored only if it did.
MOVED_ON_WITH_ITS_ANSWER = PreparedUpdateThenInsert(
    PreparedUpdate(
        Session,
        lambda pk, on: Session.objects.filter(pk=pk, next_index=on),
        ("next_index",),
        pk=Session._meta.pk,
        on=Session._meta.get_field("next_index"),
    ),
    PreparedInsert(Response),
)


def _move_on(session: Session, trial: SessionTrial, on: int, client_id: uuid.UUID) -> Response | None:
    where = {"pk": session.pk, "on": on, "next_index": on + 1}
    return MOVED_ON_WITH_ITS_ANSWER.run(
        where, session=session, session_trial=trial, client_id=client_id, answer={"choice": 1}, rt_ms=900
    )


@pytest.mark.postgres
def test_an_update_then_insert_inserts_the_row_where_the_update_changed_one(db):
    session = _started(build_2afc_study(), "p")
    trial = SessionTrial.objects.get(session=session, index=0)
    inserted = _move_on(session, trial, on=0, client_id=uuid.uuid4())
    assert inserted is not None and inserted._state.adding is False
    stored = Response.objects.get(pk=inserted.pk)
    assert (stored.session_trial_id, stored.answer, stored.rt_ms) == (trial.pk, {"choice": 1}, 900)
    assert Session.objects.get(pk=session.pk).next_index == 1


@pytest.mark.postgres
def test_an_update_then_insert_writes_nothing_where_the_update_matched_nothing(db):
    session = _started(build_2afc_study(), "p")
    trial = SessionTrial.objects.get(session=session, index=0)
    assert _move_on(session, trial, on=3, client_id=uuid.uuid4()) is None
    assert not Response.objects.filter(session=session).exists()
    assert Session.objects.get(pk=session.pk).next_index == 0


@pytest.mark.postgres
def test_an_update_then_insert_whose_row_breaks_a_unique_constraint_undoes_the_update_too(db):
    session = _started(build_2afc_study(), "p")
    first, second = SessionTrial.objects.filter(session=session).order_by("index")[:2]
    client_id = uuid.uuid4()
    _move_on(session, first, on=0, client_id=client_id)
    with pytest.raises(IntegrityError), transaction.atomic():
        _move_on(session, second, on=1, client_id=client_id)
    assert Session.objects.get(pk=session.pk).next_index == 1
    assert list(Response.objects.filter(session=session).values_list("session_trial", flat=True)) == [first.pk]


# A session's trials from an index on, the first marked served where the session is consented.
TRIALS_THE_FIRST_SERVED = PreparedSelectMarkingFirst(
    lambda session, start: (
        SessionTrial.objects.select_related("session").filter(session_id=session, index__gte=start).order_by("index")
    ),
    mark=SessionTrial._meta.get_field("served_at"),
    first_by=SessionTrial._meta.get_field("index"),
    only_if=Session._meta.get_field("consented_at"),
    session=SessionTrial._meta.get_field("session"),
    start=SessionTrial._meta.get_field("index"),
)


def test_a_marking_select_reads_the_rows_and_marks_the_first_in_its_order(db):
    session = _started(build_2afc_study(), "p")
    SessionTrial.objects.filter(session=session).update(served_at=None)
    at = timezone.now()
    found = TRIALS_THE_FIRST_SERVED.all(session=session.pk, start=1, served_at=at)
    assert [trial.index for trial in found] == list(range(1, session.session_trials.count()))
    assert found[0].served_at is None and found[0].session.pk == session.pk  # as the select read them
    served = dict(SessionTrial.objects.filter(session=session).values_list("index", "served_at"))
    assert served[1] == at and all(when is None for index, when in served.items() if index != 1)


def test_a_marking_select_marks_nothing_where_the_condition_column_is_unset(db):
    session = _started(build_2afc_study(), "p")
    SessionTrial.objects.filter(session=session).update(served_at=None)
    Session.objects.filter(pk=session.pk).update(consented_at=None)
    assert TRIALS_THE_FIRST_SERVED.all(session=session.pk, start=0, served_at=timezone.now())
    assert not SessionTrial.objects.filter(session=session, served_at__isnull=False).exists()


def test_a_whole_session_stores_every_answer_once(db):
    participant = Participant(build_2afc_study(n_units=44), "p")
    participant.start()
    participant.through_instructions()
    participant.answer_all(right=True)
    assert participant.complete().status_code == 200
    session = participant.session
    assert session.status == Session.Status.COMPLETED
    assert Response.objects.filter(session=session).count() == SessionTrial.objects.filter(session=session).count()


def test_a_prepared_select_makes_its_instances_through_init_where_a_post_init_receiver_listens(db):
    study = StudyFactory()
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=Study)
    try:
        prepared = STUDY_BY_SLUG.get(slug=study.slug)
    finally:
        post_init.disconnect(receiver, sender=Study)
    assert seen == [prepared]
    assert _fields(prepared) == _fields(Study.objects.get(slug=study.slug))


def test_a_prepared_select_of_some_columns_leaves_the_others_deferred_as_the_orm_does(db):
    study = StudyFactory(layers=["blocks.6"])
    slugs_only = PreparedSelect(
        lambda slug: Study.objects.filter(slug=slug).only("slug"), slug=Study._meta.get_field("slug")
    )
    prepared = slugs_only.get(slug=study.slug)
    assert prepared.get_deferred_fields() == Study.objects.only("slug").get(slug=study.slug).get_deferred_fields()
    assert prepared.layers == ["blocks.6"]  # read when asked for, as a deferred field is
