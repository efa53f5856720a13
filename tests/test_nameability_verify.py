"""Nameability's verify stage: a study built from a describe study's names, linked to it."""

from __future__ import annotations

import random

import numpy as np
import pytest

from experiments.derivation import DerivationRefused, build_derived_study
from experiments.export.tables import units_table
from experiments.models import Response, SessionTrial, Study, Trial
from experiments.rendering import RenderRefused, render_study
from protocols import get_protocol
from protocols.base import Score, ShownImage
from protocols.nameability.describe import EXEMPLAR, HELD_OUT
from protocols.nameability.verify import DISTRACTOR, TARGET
from tests.conftest import Participant
from tests.nameability import Namer, answered_describe_study, rendered_describe_study, spelled, unit_names
from workers.models import Job
from workers.services import start_summary

pytestmark = pytest.mark.django_db


@pytest.fixture
def describe_study(isolated_files, tiny_model):
    return answered_describe_study(tiny_model, participants=3)


@pytest.fixture
def verify_study(describe_study):
    study = build_derived_study(describe_study)
    study.status = Study.Status.OPEN
    study.params = {"min_catch_correct": 1}  # a check threshold: editable once built; the test has 2 catch trials
    study.save()
    return study


def seen_by(study: Study) -> dict[tuple[str, int], set[int]]:
    """Every image each describe participant saw, per unit."""
    seen: dict[tuple[str, int], set[int]] = {}
    for planned in SessionTrial.objects.filter(session__study=study).select_related("session", "trial"):
        key = (planned.session.pseudonym, planned.trial.unit_id)
        seen.setdefault(key, set()).update(planned.layout.get("exemplars", []))
    return seen


def test_the_verify_study_is_linked_to_and_built_from_the_describe_study(describe_study, verify_study):
    assert verify_study.protocol == "nameability_verify" and verify_study.derived_from == describe_study
    assert verify_study.status == Study.Status.OPEN and verify_study.n_units == 5
    kinds = sorted(verify_study.trials.values_list("kind", flat=True))
    # 3 names for each of 5 units, the 2 practice sets and the 5 catch sets.
    assert kinds == ["catch"] * 5 + ["main"] * 15 + ["practice"] * 2


def test_each_trial_shows_a_held_out_image_of_the_named_unit_never_seen_by_its_namer(describe_study, verify_study):
    seen = seen_by(describe_study)
    held_out = {
        (trial.unit_id, image)
        for trial in describe_study.trials.filter(kind=Trial.Kind.MAIN)
        for image in trial.images.filter(role=HELD_OUT).values_list("image_id", flat=True)
    }
    for trial in verify_study.trials.filter(kind=Trial.Kind.MAIN):
        target = trial.images.get(role=TARGET).image_id
        assert (trial.unit_id, target) in held_out
        assert target not in seen[(trial.content["namer"], trial.unit_id)]
        distractors = trial.images.filter(role=DISTRACTOR)
        assert distractors.count() == 3
        others = {unit for unit, image in held_out if image in set(distractors.values_list("image_id", flat=True))}
        assert trial.unit_id not in others and len(others) == 3
        assert trial.content["name"] == spelled(trial.unit_id)


def test_practice_and_catch_trials_name_a_known_concept_among_other_units_images(describe_study, verify_study):
    for trial in verify_study.trials.exclude(kind=Trial.Kind.MAIN):
        source = describe_study.trials.get(kind=trial.kind, unit_id=trial.unit_id)
        assert trial.content["name"] == source.content["label"]
        target = trial.images.get(role=TARGET).image_id
        assert target in set(source.images.filter(role=EXEMPLAR).values_list("image_id", flat=True))


def test_describe_participants_are_refused_so_nobody_verifies_their_own_name(describe_study, verify_study):
    refused = Participant(verify_study, "namer-0").start()
    assert refused.status_code == 409 and "related study" in refused.json()["error"]


def test_a_verify_trial_shows_the_name_and_four_candidates_but_not_who_named_it(describe_study, verify_study):
    # Nobody is served their own name because namers are refused (the test above); the verifier here named nothing.
    verifier = Participant(verify_study, "verifier")
    assert verifier.start().status_code == 201
    verifier.through_instructions()
    verifier.pass_practice()
    namers = set(describe_study.sessions.values_list("pseudonym", flat=True))
    served = 0
    while not (trial := verifier.trial().json())["done"]:
        planned = SessionTrial.objects.select_related("trial").get(session_id=verifier.id, index=trial["index"])
        assert set(trial) >= {"name", "candidates"} and len(trial["candidates"]) == 4
        assert not {"namer", "key", "choice", "target"} & set(trial), trial
        assert trial["name"] == planned.key["name"]
        if planned.trial.kind == Trial.Kind.MAIN:
            assert planned.key["namer"] in namers
        served += 1
        verifier.answer_current(right=True)
    assert served == verify_study.trials_per_session


def test_a_describe_participant_cannot_take_the_describe_study_after_the_verify_study(describe_study, verify_study):
    verifier = Participant(verify_study, "verifier")
    verifier.start()
    assert Namer(describe_study, "verifier", unit_names).start().status_code == 409


def test_a_verify_answer_outside_the_candidates_is_refused(verify_study):
    verifier = Participant(verify_study, "verifier")
    verifier.start()
    verifier.through_instructions()
    reply = verifier.answer(verifier.trial().json()["index"], choice=5)
    assert reply.status_code == 400 and reply.json()["error"] == "Please choose one of the 4 images."


def test_a_describe_study_without_passing_sessions_cannot_feed_a_verify_study(isolated_files, tiny_model):
    study = rendered_describe_study(tiny_model)
    with pytest.raises(DerivationRefused, match="no passing session"):
        build_derived_study(study)


def test_a_verify_study_is_never_rendered(verify_study):
    with pytest.raises(RenderRefused, match="built from a nameability study"):
        render_study(verify_study)


def test_random_verify_choices_score_zero():
    verify = get_protocol("nameability_verify")
    params = verify.params(None)
    images = [ShownImage(1, TARGET, 0)] + [ShownImage(2 + i, DISTRACTOR, i) for i in range(3)]
    rng = random.Random(0)
    verdicts: dict[int, list[Score]] = {unit: [] for unit in range(40)}
    for n in range(20_000):
        layout = verify.layout(images, {"name": "x", "namer": "p"}, params, rng)
        verdicts[n % 40].append(verify.score({"choice": rng.randrange(4)}, layout.key, params))
    scores = [verify.unit_values(params, unit_verdicts)["verify_score"] for unit_verdicts in verdicts.values()]
    assert abs(np.mean(scores)) < 0.05


def test_the_summary_job_stores_agreement_and_the_units_table_exports_it_with_the_verify_scores(
    describe_study, verify_study, django_capture_on_commit_callbacks
):
    for number in range(3):
        verifier = Participant(verify_study, f"verifier-{number}")
        verifier.start()
        verifier.through_instructions()
        verifier.pass_practice()
        verifier.answer_all(right=True)
        assert verifier.complete().json()["completed"] and verifier.session.passed
    with django_capture_on_commit_callbacks(execute=True):
        job = start_summary(describe_study)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE, job.error
    table = units_table([describe_study, verify_study])
    columns = [name for name, _ in table.columns]
    assert {"names", "agreement", "near_duplicates", "verify_answers", "verify_accuracy", "verify_score"} <= set(columns)
    rows = [dict(zip(columns, row, strict=True)) for row in table.rows]
    described = [row for row in rows if row["study"] == describe_study.slug and row["role"] == "main"]
    # 3 participants named 4 of the 5 units each, every one a unit by the same name: perfect agreement, and no
    # name repeats another unit's.
    assert sum(row["names"] for row in described) == 12 and all(row["names"] >= 2 for row in described)
    assert all(row["agreement"] == pytest.approx(1.0, abs=1e-5) for row in described), described
    verified = [row for row in rows if row["study"] == verify_study.slug and row["role"] == "main"]
    assert sum(row["verify_answers"] for row in verified) == Response.objects.filter(
        session__study=verify_study, session_trial__trial__kind=Trial.Kind.MAIN
    ).count()
    answered = [row for row in verified if row["verify_answers"]]
    assert answered and all(row["verify_score"] == 1.0 and row["verify_accuracy"] == 1.0 for row in answered)


def test_one_admin_action_builds_the_verify_study(admin_client, describe_study):
    response = admin_client.post(
        "/admin/experiments/study/", {"action": "build_derived", "_selected_action": [describe_study.pk]}, follow=True
    )
    built = Study.objects.get(derived_from=describe_study)
    assert f">{built.slug}</a>, ready to open." in response.content.decode()
    assert (built.protocol, built.status) == ("nameability_verify", Study.Status.READY)
    page = admin_client.get(f"/admin/experiments/study/{built.pk}/change/").content.decode()
    assert "Nameability: verify parameters" in page and describe_study.slug in page


def test_the_admin_refuses_to_build_from_a_study_of_another_protocol(admin_client, study):
    response = admin_client.post(
        "/admin/experiments/study/", {"action": "build_derived", "_selected_action": [study.pk]}, follow=True
    )
    assert "No protocol builds studies from 2-AFC (IMI) studies." in response.content.decode()
    assert not Study.objects.filter(derived_from=study).exists()
