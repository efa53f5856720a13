"""The move of 2-AFC behind the protocol interface carries existing rows over: a study's 2-AFC
columns become its parameters, the answer key and the answers become protocol-shaped JSON."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("experiments", "0001_initial")]
AFTER = [("experiments", "0003_drop_two_afc_columns")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def old_study_with_a_trial(old):
    """A study with one main trial, in the models of an earlier migration state."""
    model = old.get_model("stimuli", "VisionModel").objects.create(name="m", timm_name="resnet18")
    pool = old.get_model("stimuli", "ImagePool").objects.create(name="p", source="skimage_crops")
    unit = old.get_model("stimuli", "Unit").objects.create(model=model, layer="layer1", channel=3)
    study = old.get_model("experiments", "Study").objects.create(slug="old", name="old", model=model, image_pool=pool)
    return study, old.get_model("experiments", "Trial").objects.create(study=study, unit=unit, kind="main", batch=0)


@pytest.mark.django_db(transaction=True)
def test_two_afc_rows_are_carried_into_the_protocol_shape():
    old = migrate(BEFORE)
    try:
        model = old.get_model("stimuli", "VisionModel").objects.create(name="m", timm_name="resnet18")
        pool = old.get_model("stimuli", "ImagePool").objects.create(name="p", source="skimage_crops")
        unit = old.get_model("stimuli", "Unit").objects.create(model=model, layer="layer1", channel=3)
        study = old.get_model("experiments", "Study").objects.create(
            slug="old", name="old", model=model, image_pool=pool, difficulty="hard", references_per_side=4,
            prompt="Which one?", n_practice_obvious=2, practice_less_obvious_difficulty="very_hard",
            min_catch_correct=3, min_position_count=2,
        )
        trial = old.get_model("experiments", "Trial").objects.create(
            study=study, unit=unit, kind="main", batch=0, difficulty="hard"
        )
        session = old.get_model("experiments", "Session").objects.create(
            study=study, source="local", pseudonym="x", participant_id="p", token="t", seed=1,
            created_at=timezone.now(), last_seen_at=timezone.now(),
        )
        planned = old.get_model("experiments", "SessionTrial").objects.create(
            session=session, index=0, trial=trial, phase="main", layout={"min": [], "max": [], "queries": []},
            correct_choice=1,
        )
        old.get_model("experiments", "Response").objects.create(
            session=session, session_trial=planned, client_id="00000000-0000-4000-8000-000000000001",
            choice=1, confidence=2, rt_ms=900, correct=True,
        )

        new = migrate(AFTER)
        study = new.get_model("experiments", "Study").objects.get(slug="old")
        assert study.params == {
            "difficulty": "hard", "references_per_side": 4, "prompt": "Which one?", "n_practice_obvious": 2,
            "practice_less_obvious_difficulty": "very_hard", "min_catch_correct": 3, "min_position_count": 2,
        }
        assert new.get_model("experiments", "SessionTrial").objects.get().key == {"choice": 1}
        response = new.get_model("experiments", "Response").objects.get()
        assert (response.answer, response.correct, response.score) == ({"choice": 1, "confidence": 2}, True, 1.0)

        back = migrate(BEFORE)
        assert back.get_model("experiments", "Response").objects.get().confidence == 2
        assert back.get_model("experiments", "Study").objects.get().references_per_side == 4
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_trials_planned_before_round_positions_are_numbered_within_their_round():
    old = migrate([("experiments", "0016_size_calibration_and_window_pauses")])
    try:
        study, trial = old_study_with_a_trial(old)
        session = old.get_model("experiments", "Session").objects.create(
            study=study, source="local", pseudonym="x", participant_id="p", token="t", seed=1,
            created_at=timezone.now(), last_seen_at=timezone.now(),
        )
        rounds = [("practice", 1)] * 2 + [("practice", 2)] * 2 + [("main", 1)] * 3
        for index, (phase, attempt) in enumerate(rounds):
            old.get_model("experiments", "SessionTrial").objects.create(
                session=session, index=index, trial=trial, phase=phase, attempt=attempt, layout={}
            )

        new = migrate([("experiments", "0017_sessiontrial_round_position")])
        planned = new.get_model("experiments", "SessionTrial").objects.order_by("index")
        assert [(t.position, t.round_length) for t in planned] == [(1, 2), (2, 2), (1, 2), (2, 2), (1, 3), (2, 3), (3, 3)]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_sessions_under_way_go_on_after_their_last_answered_trial():
    old = migrate([("experiments", "0018_practice_choice")])
    try:
        study, trial = old_study_with_a_trial(old)
        Session, SessionTrial = old.get_model("experiments", "Session"), old.get_model("experiments", "SessionTrial")
        answering, starting = (
            Session.objects.create(
                study=study, source="local", pseudonym=name, participant_id=name, token=name, seed=1,
                created_at=timezone.now(), last_seen_at=timezone.now(),
            )
            for name in ("answering", "starting")
        )
        for session, answered in ((answering, 3), (starting, 0)):
            for index in range(5):
                planned = SessionTrial.objects.create(
                    session=session, index=index, trial=trial, phase="main", attempt=1, layout={}
                )
                if index < answered:
                    old.get_model("experiments", "Response").objects.create(
                        session=session, session_trial=planned, client_id=f"00000000-0000-4000-8000-00000000000{index}",
                        answer={}, rt_ms=900,
                    )

        new = migrate([("experiments", "0019_session_next_index")])
        next_indexes = dict(new.get_model("experiments", "Session").objects.values_list("pseudonym", "next_index"))
        assert next_indexes == {"answering": 3, "starting": 0}
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.postgres
def test_trials_and_answers_are_found_by_session_through_their_unique_indexes_alone(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename IN ('experiments_sessiontrial', 'experiments_response')"
        )
        by_session = [row[0] for row in cursor.fetchall() if "(session_id" in row[0]]
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'experiments_sessiontrial'")
        options = cursor.fetchone()[0]
    assert len(by_session) == 2 and all("UNIQUE" in index for index in by_session)
    # Room on each page, so that a fetch's served_at write is a heap-only update.
    assert options == ["fillfactor=80"]
