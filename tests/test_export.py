"""Response exports: one row per response, CSV and JSON Lines, never the raw participant id."""

import csv
import io
import json

import pytest
from django.core.management import call_command

from experiments import export


@pytest.fixture
def completed(participant):
    participant.participant = "raw-worker-id"
    participant.through_instructions()
    participant.pass_practice()
    participant.answer_all()
    participant.complete()
    return participant


def run_export(*args: str) -> str:
    out = io.StringIO()
    call_command("export_responses", *args, stdout=out)
    return out.getvalue()


def test_csv_has_one_row_per_response(completed):
    rows = list(csv.DictReader(io.StringIO(run_export(completed.study.slug))))
    assert len(rows) == completed.session.responses.count() == 50
    assert tuple(rows[0]) == export.columns([completed.study])


def test_rows_describe_the_unit_trial_and_answer(completed):
    rows = list(csv.DictReader(io.StringIO(run_export(completed.study.slug))))
    main = [r for r in rows if r["phase"] == "main"]
    assert {r["trial_kind"] for r in main} == {"main", "catch"}
    first = main[0]
    assert first["layer"] == "blocks.3" and first["model"] == "lite0"
    assert first["correct"] == "True" and first["confidence"] == "3"
    assert first["choice"] == first["positive_position"]


def test_rows_carry_the_session_check_results(completed):
    row = next(csv.DictReader(io.StringIO(run_export(completed.study.slug))))
    assert row["session_passed"] == "False"
    assert row["check_practice_attempts_passed"] == "True"
    assert row["check_instruction_time_passed"] == "False"


def test_jsonl_has_one_object_per_line(completed):
    lines = run_export(completed.study.slug, "--format", "jsonl").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 50 and records[0]["correct"] is True


def test_the_raw_participant_id_never_appears(completed):
    assert "raw-worker-id" not in run_export("--format", "jsonl")
    assert "raw-worker-id" not in run_export()


def test_an_unknown_study_is_an_error(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="unknown studies: nope"):
        run_export("nope")


def test_the_admin_export_streams(completed, admin_client):
    response = admin_client.post(
        "/admin/experiments/study/",
        {"action": "export_csv", "_selected_action": [completed.study.pk]},
    )
    assert response.streaming
    body = b"".join(response.streaming_content).decode()
    assert len(body.splitlines()) == 51
