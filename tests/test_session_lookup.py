"""The session found by its token, with its current trials read in the same statement, and answers judged on
what that read found."""

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection, transaction

from experiments.errors import NotCurrentTrial
from experiments.models import Response, Session, Study
from experiments.selectors import session_by_token, upcoming
from experiments.services import answer_trial
from tests.builders import build_2afc_study
from tests.conftest import Participant


def _consented(name: str) -> Session:
    participant = Participant(build_2afc_study(), name)
    participant.start()
    participant.through_instructions()
    return participant.session


def test_the_trials_read_with_the_session_are_those_upcoming_reads_and_it_reads_nothing_more(
    db, django_assert_num_queries
):
    session = _consented("p")
    found = session_by_token(session.token, ahead=2)
    assert found is not None and found.pk == session.pk
    with django_assert_num_queries(0):
        with_it = upcoming(found, ahead=2)
    alone = upcoming(Session.objects.get(pk=session.pk), ahead=2)
    assert [trial.pk for trial in [with_it.current, *with_it.ahead]] == [alone.current.pk, *[t.pk for t in alone.ahead]]


def test_a_session_with_no_trial_left_is_found_alone(db):
    session = _consented("p")
    session.session_trials.all().delete()
    found = session_by_token(session.token, ahead=1)
    assert found is not None and found.pk == session.pk and upcoming(found).current is None


def test_an_unknown_token_finds_no_session(db):
    assert session_by_token("no-such-token", lock=True, ahead=1) is None


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0] > 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_lookup_that_waited_for_an_answers_lock_reads_the_round_that_answer_planned():
    # PostgreSQL hands the waiting statement the session's newest row but only the trials its snapshot saw, not
    # those the other transaction added: the trials read with it are then dropped, and upcoming() reads afresh.
    session = _consented("p")
    last = session.session_trials.order_by("index").last()
    assert last is not None
    seen: dict[str, object] = {}

    def answer_in_another_tab() -> None:
        try:
            with transaction.atomic():
                found = session_by_token(session.token, lock=True, ahead=1)
                assert found is not None
                trials = upcoming(found)
                seen["current"], seen["following"] = trials.current.index, trials.following.index
        finally:
            connection.close()

    with transaction.atomic():
        Session.objects.select_for_update().get(pk=session.pk)
        tab = threading.Thread(target=answer_in_another_tab)
        tab.start()
        deadline = time.monotonic() + 10
        while not _waiting_on_a_lock() and time.monotonic() < deadline:
            time.sleep(0.02)
        # As the first tab's answer to the round's last trial but one does, had it planned another round.
        Session.objects.filter(pk=session.pk).update(next_index=last.index)
        last.pk, last.index = None, last.index + 1
        last.save()
    tab.join()
    assert seen == {"current": last.index - 1, "following": last.index}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_tabs_answering_one_trial_at_once_store_one_answer_and_each_retry_gets_it(live_server):
    session = _consented("tabs")
    url = f"{live_server.url}/api/v1/sessions/{session.pk}"
    headers = {"Authorization": f"Bearer {session.token}"}
    trial = requests.get(f"{url}/trial", headers=headers, timeout=60).json()
    choice = session.session_trials.get(index=trial["index"]).key["choice"]
    client_ids = [str(uuid.uuid4()) for _ in range(4)]

    def answer(client_id: str) -> int:
        body = {"index": trial["index"], "choice": choice, "confidence": 3, "rt_ms": 900, "client_id": client_id}
        return requests.post(f"{url}/responses", json=body, headers=headers, timeout=60).status_code

    # Four tabs with their own client_ids, and each tab's retry of its own, all at once.
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(answer, client_ids * 2))
    stored = list(Response.objects.filter(session=session).values_list("client_id", flat=True))
    assert len(stored) == 1
    winner = client_ids.index(str(stored[0]))
    assert sorted([statuses[winner], statuses[winner + 4]]) == [200, 201]  # stored once, replayed once
    assert all(status == 409 for i, status in enumerate(statuses) if i % 4 != winner)
    assert Session.objects.get(pk=session.pk).next_index == trial["index"] + 1


def _read_before_another_tab_answers(participant: Participant) -> tuple[Session, int, int]:
    """The session as an answer's lookup read it, just before another tab's answer to the same trial."""
    index = participant.trial().json()["index"]
    choice = participant.correct_choice(index)
    stale = session_by_token(participant.session.token, ahead=1)
    assert stale is not None
    stale.study = Study.cached(stale.study_id)
    return stale, index, choice


@pytest.mark.postgres
def test_an_answer_judged_on_a_session_another_tab_moved_on_is_refused_and_stores_nothing(participant):
    participant.through_instructions()
    stale, index, choice = _read_before_another_tab_answers(participant)
    assert participant.answer(index, choice).status_code == 201
    with pytest.raises(NotCurrentTrial):
        answer_trial(stale, index=index, client_id=uuid.uuid4(), rt_ms=900, answer={"choice": choice, "confidence": 3})
    assert Response.objects.filter(session_id=stale.pk).count() == 1
    assert Session.objects.get(pk=stale.pk).next_index == index + 1


@pytest.mark.postgres
def test_an_answer_judged_on_a_session_its_own_first_try_moved_on_gets_the_stored_answer(participant):
    participant.through_instructions()
    stale, index, choice = _read_before_another_tab_answers(participant)
    client_id = uuid.uuid4()
    assert participant.answer(index, choice, client_id=str(client_id)).status_code == 201
    result, created = answer_trial(
        stale, index=index, client_id=client_id, rt_ms=900, answer={"choice": choice, "confidence": 3}
    )
    assert (created, result.index, result.correct) == (False, index, True)
    assert Response.objects.filter(session_id=stale.pk).count() == 1
