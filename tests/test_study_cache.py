"""Participant calls read their study, its practice and catch trials and the studies linked to it from a short
per-process cache: a change made here is seen at once, one made by another process within STUDY_CACHE_S."""

from django.db import connection

from experiments import models
from experiments.models import Session, SessionTrial, Study, Trial
from experiments.recruiters import recruiter_for
from experiments.services import pick_trials
from tests.builders import build_2afc_study
from tests.conftest import Participant
from tests.recruitment_factories import LaunchedRecruitmentFactory, make_session


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


def test_a_cached_copy_holds_the_studys_values_and_a_cache_of_related_rows_of_its_own(db):
    study = build_2afc_study()
    first = Study.cached(study.pk)
    assert first.model is not None  # now in the first copy's cache of related rows
    second = Study.cached(study.pk)
    stored = Study.objects.get(pk=study.pk)
    assert {k: v for k, v in vars(second).items() if k != "_state"} == {k: v for k, v in vars(stored).items() if k != "_state"}
    assert (second._state.adding, second._state.db) == (False, "default")
    assert second._state.fields_cache == {}


def _practised_on(study: Study, participant: str) -> set[int]:
    started = Participant(study, participant)
    started.start()
    return set(
        SessionTrial.objects.filter(session_id=started.id, phase=Session.Phase.PRACTICE).values_list("trial", flat=True)
    )


def test_practice_trials_picked_in_this_process_are_the_next_starts_practice_round(db):
    study = build_2afc_study()
    _practised_on(study, "before")  # the process now holds the study's practice trials
    picks = list(Trial.objects.filter(study=study, kind=Trial.Kind.MAIN)[:2])
    pick_trials(study, "practice", [trial.pk for trial in picks])
    assert _practised_on(study, "after") == {trial.pk for trial in picks}


def test_practice_trials_another_process_picked_are_planned_once_the_cached_copy_is_older_than_its_limit(
    db, monkeypatch
):
    study = build_2afc_study()
    own = _practised_on(study, "before")
    pick = Trial.objects.filter(study=study, kind=Trial.Kind.MAIN).first()
    with connection.cursor() as cursor:  # as another process would: this one's cache is not told
        table = Study.practice_trials.through._meta.db_table
        cursor.execute(f"INSERT INTO {table} (study_id, trial_id) VALUES (%s, %s)", [study.pk, pick.pk])
    assert _practised_on(study, "meanwhile") == own
    monkeypatch.setattr(models, "STUDY_CACHE_S", 0.0)
    assert _practised_on(study, "later") == {pick.pk}


def _catch_trials_planned_for(study: Study, participant: str) -> set[int]:
    started = Participant(study, participant)
    started.start()
    started.through_instructions()
    started.pass_practice()
    planned = SessionTrial.objects.filter(session_id=started.id, phase=Session.Phase.MAIN, trial__kind=Trial.Kind.CATCH)
    return set(planned.values_list("trial", flat=True))


def test_catch_trials_picked_in_this_process_are_the_next_main_blocks_catch_trials(db):
    study, bank = build_2afc_study(), build_2afc_study(n_units=6, slug="catch-bank")
    _catch_trials_planned_for(study, "before")  # the process now holds the study's catch trials
    picks = list(Trial.objects.filter(study=bank, kind=Trial.Kind.CATCH)[: study.n_catch_trials])
    pick_trials(study, "catch", [trial.pk for trial in picks])
    assert _catch_trials_planned_for(study, "after") == {trial.pk for trial in picks}


def test_a_link_made_in_this_process_is_seen_by_the_next_took_part_check(db):
    first, later = LaunchedRecruitmentFactory(), LaunchedRecruitmentFactory()
    make_session(first, "AW1")
    assert not recruiter_for("mturk").has_taken_part(later.study, "AW1")  # the process now holds later's links
    later.group = first.group
    later.save()
    assert recruiter_for("mturk").has_taken_part(later.study, "AW1")
