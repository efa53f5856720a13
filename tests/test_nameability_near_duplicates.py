"""Near-duplicates per name: the nearest name another participant gave for another unit, computed when a session
completes and again by the summary job, exported, and checked where the study says so."""

from __future__ import annotations

import pytest

from experiments.export.responses import responses_table
from experiments.models import Response, SessionTrial, Study
from protocols import get_protocol
from protocols.base import MAIN, Answered, UnitAnswer
from tests.nameability import Namer, rendered_describe_study
from workers.models import Job
from workers.services import start_summary

pytestmark = pytest.mark.django_db

# One name per unit, as the first participant types it, and names far from all of them.
CONCEPTS = ["Bicycle", "Volcano", "Guitar", "Castle", "Banana"]
FRESH = ["umbrella", "tractor", "violin", "octopus", "candle"]


@pytest.fixture
def describe_study(isolated_files, tiny_model):
    # Every session names all 5 units.
    return rendered_describe_study(tiny_model, n_main_trials=5, target_per_unit=3)


def place(study: Study, trial: SessionTrial) -> int:
    """The unit's place among the study's main units."""
    units = sorted(set(study.trials.filter(kind=MAIN).values_list("unit_id", flat=True)))
    return units.index(trial.trial.unit_id)


def by_concept(study: Study) -> Namer:
    return Namer(study, "first", lambda trial: CONCEPTS[place(study, trial)])


def copying(study: Study, copied: int, name: str = "copier") -> Namer:
    """Gives the first `copied` units the first participant's name of the next unit (lower case, with
    punctuation: the same normalised name), and the others a name of their own."""

    def naming(trial: SessionTrial) -> str:
        unit = place(study, trial)
        return f" {CONCEPTS[(unit + 1) % 5].lower()}! " if unit < copied else FRESH[unit]

    return Namer(study, name, naming)


def names_of(namer: Namer) -> list[dict]:
    return list(
        Response.objects.about_units().filter(session_id=namer.id).order_by("session_trial__index")
        .values_list("answer", flat=True)
    )


def test_a_name_nearly_identical_to_another_participants_name_of_another_unit_is_flagged_with_it(describe_study):
    assert by_concept(describe_study).take_whole_session().passed
    copier = copying(describe_study, copied=5)
    copier.take_whole_session()
    names = names_of(copier)
    assert len(names) == 5
    for answer in names:
        # The first participant's name, as typed there.
        assert answer["nearest_other_name"] == answer["text"].strip(" !").capitalize()
        assert answer["nearest_other_similarity"] == pytest.approx(1.0, abs=1e-5)
        assert answer["near_duplicate"] is True


def unit_answer(unit: int, author: str, text: str) -> UnitAnswer:
    return UnitAnswer(unit, author, {"text": text, "normalised": text.lower()}, {}, None)


def test_the_same_units_names_do_not_count(tmp_path):
    describe = get_protocol("nameability")
    others = [unit_answer(1, "other", "Bicycle"), unit_answer(2, "other", "Umbrella")]
    [compared] = describe.compare_answers(describe.params(None), [unit_answer(1, "me", "bicycle")], others, tmp_path)
    assert compared["nearest_other_name"] == "Umbrella" and compared["near_duplicate"] is False
    assert compared["nearest_other_similarity"] < 0.95


def test_the_same_participants_names_do_not_count(tmp_path):
    describe = get_protocol("nameability")
    others = [unit_answer(2, "me", "Bicycle"), unit_answer(3, "other", "Umbrella")]
    [compared] = describe.compare_answers(describe.params(None), [unit_answer(1, "me", "bicycle")], others, tmp_path)
    assert compared["nearest_other_name"] == "Umbrella" and compared["near_duplicate"] is False


def test_the_summary_job_compares_an_earlier_name_with_a_later_duplicate(
    describe_study, django_capture_on_commit_callbacks
):
    first = by_concept(describe_study)
    first.take_whole_session()
    # Compared when it completed, with nobody else's names yet.
    assert all(answer["nearest_other_name"] is None and not answer["near_duplicate"] for answer in names_of(first))
    assert copying(describe_study, copied=1).take_whole_session().passed  # names unit 0 "volcano"
    with django_capture_on_commit_callbacks(execute=True):
        job = start_summary(describe_study)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE, job.error
    flagged = [answer for answer in names_of(first) if answer["near_duplicate"]]
    assert [answer["text"] for answer in flagged] == ["Volcano"]
    assert flagged[0]["nearest_other_name"] == "volcano!"


def test_the_export_has_the_nearest_name_its_similarity_and_the_flag_as_typed_columns(describe_study):
    first = by_concept(describe_study)
    first.take_whole_session()
    copying(describe_study, copied=5).take_whole_session()
    table = responses_table([describe_study])
    types = dict(table.columns)
    assert (types["nearest_other_name"], types["nearest_other_similarity"], types["near_duplicate"]) == (
        "str", "float", "bool"
    )
    rows = [dict(zip(table.names, row, strict=True)) for row in table.rows]
    copied = [row for row in rows if row["trial_kind"] == MAIN and row["session"] != first.session.pseudonym]
    assert len(copied) == 5
    for row in copied:
        assert row["nearest_other_name"] in CONCEPTS and row["near_duplicate"] is True
        assert isinstance(row["nearest_other_similarity"], float) and row["nearest_other_similarity"] > 0.99
    catch = [row for row in rows if row["trial_kind"] != MAIN]
    assert catch and all(row["nearest_other_name"] is None and row["near_duplicate"] is None for row in catch)


def test_a_session_with_more_near_duplicates_than_allowed_fails_the_check(describe_study):
    describe_study.params = {**describe_study.params, "check_near_duplicates": True}
    describe_study.save()
    by_concept(describe_study).take_whole_session()
    session = copying(describe_study, copied=3).take_whole_session()  # 3 of 5 names
    check = session.checks.get(name="text_near_duplicates")
    assert check.value == pytest.approx(0.6) and not check.passed and session.passed is False
    assert check.rule == "at most 50% of names near-duplicates of others' for other units"


def near_duplicate_check(params: dict, flagged: int) -> tuple[float, bool]:
    describe = get_protocol("nameability")
    block = [
        Answered(MAIN, {"normalised": f"name {number}", "near_duplicate": number < flagged}, None, 4000)
        for number in range(5)
    ]
    results = {result.name: result for result in describe.checks(describe.params(params), block, 0)}
    return results["text_near_duplicates"].value, results["text_near_duplicates"].passed


def test_a_session_with_fewer_near_duplicates_than_allowed_passes_the_check():
    assert near_duplicate_check({"check_near_duplicates": True}, flagged=2) == (pytest.approx(0.4), True)


def test_the_near_duplicate_check_is_off_by_default():
    assert near_duplicate_check({}, flagged=5) == (1.0, True)
