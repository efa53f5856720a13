"""Participant calls read their study from a short per-process cache: a change made here is seen at once,
one made by another process within STUDY_CACHE_S."""

from django.db import connection

from experiments import models
from experiments.models import Study
from tests.builders import build_2afc_study
from tests.conftest import Participant


def _fetching_then_answering_at_once(study: Study) -> int:
    participant = Participant(study, "p")
    participant.start()
    participant.through_instructions()
    index = participant.trial().json()["index"]
    return participant.answer(index, participant.correct_choice(index)).status_code


def test_a_lock_set_by_save_is_enforced_on_the_next_answer(db):
    study = build_2afc_study(lock_ms=0)
    assert _fetching_then_answering_at_once(study) == 201
    study.lock_ms = 60_000
    study.save(update_fields=["lock_ms"])
    assert _fetching_then_answering_at_once(Study.objects.get(pk=study.pk)) == 409


def test_a_lock_set_by_a_queryset_update_is_enforced_on_the_next_answer(db):
    study = build_2afc_study(lock_ms=0)
    assert _fetching_then_answering_at_once(study) == 201
    Study.objects.filter(pk=study.pk).update(lock_ms=60_000)
    assert _fetching_then_answering_at_once(study) == 409


def test_a_change_another_process_made_is_seen_once_the_cached_copy_is_older_than_its_limit(db, monkeypatch):
    study = build_2afc_study(lock_ms=0)
    assert _fetching_then_answering_at_once(study) == 201
    with connection.cursor() as cursor:  # as another process would: this one's cache is not told
        cursor.execute("UPDATE experiments_study SET lock_ms = 60000 WHERE id = %s", [study.pk])
    assert _fetching_then_answering_at_once(study) == 201  # still the copy read before
    monkeypatch.setattr(models, "STUDY_CACHE_S", 0.0)
    assert _fetching_then_answering_at_once(study) == 409


def test_a_caller_changing_its_copy_leaves_the_cached_study_as_stored(db):
    study = build_2afc_study(lock_ms=0)
    copy = Study.cached(study.pk)
    copy.lock_ms = 60_000
    assert Study.cached(study.pk).lock_ms == 0
