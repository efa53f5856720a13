"""Response exports: one row per response, CSV and JSON Lines, never the raw participant id."""

import csv
import io
import json
import zipfile

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from experiments.export.responses import columns as export_columns
from experiments.export.responses import responses_table
from experiments.models import Session, Study
from tests.builders import build_2afc_study
from tests.conftest import GEOMETRY, Participant

GEOMETRY_COLUMNS = (
    "window_width", "window_height", "screen_width", "screen_height", "device_pixel_ratio", "zoom", "fullscreen",
    "image_css_px_min", "image_css_px_max", "image_device_px_min", "image_device_px_max", "px_per_mm", "user_agent",
)


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
    assert list(rows[0]) == [name for name, _ in export_columns([completed.study])]


def test_rows_describe_the_unit_trial_and_answer(completed):
    rows = list(csv.DictReader(io.StringIO(run_export(completed.study.slug))))
    main = [r for r in rows if r["phase"] == "main"]
    assert {r["trial_kind"] for r in main} == {"main", "catch"}
    first = main[0]
    assert first["layer"] == "blocks.3" and first["model"] == "lite0"
    assert first["correct"] == "True" and first["confidence"] == "3"
    assert first["choice"] == first["positive_position"]


def test_rows_carry_the_display_geometry_the_browser_reported(completed):
    row = next(responses_table([completed.study]).records())
    assert {name: row[name] for name in GEOMETRY_COLUMNS} == {
        "window_width": 1440, "window_height": 900, "screen_width": 1440, "screen_height": 900,
        "device_pixel_ratio": 2.0, "zoom": 1.0, "fullscreen": False, "image_css_px_min": 150.5,
        "image_css_px_max": 180.0, "image_device_px_min": 301.0, "image_device_px_max": 360.0,
        "px_per_mm": None, "user_agent": GEOMETRY["user_agent"],
    }


def test_rows_carry_the_screen_scale_of_a_calibrated_session(db):
    participant = Participant(build_2afc_study(n_units=4, n_main_trials=2, n_catch_trials=1, calibrate_size=True))
    participant.take_part()
    participant.client.post(participant.url("/calibration"), {"px_per_mm": 3.6215}, format="json")
    participant.event("instructions_start")
    participant.event("instructions_end")
    participant.answer_current()
    row = next(responses_table([participant.study]).records())
    assert row["px_per_mm"] == 3.6215


def test_the_geometry_columns_are_typed(db):
    types = dict(export_columns([]))
    assert [types[name] for name in ("window_width", "device_pixel_ratio", "fullscreen", "user_agent", "px_per_mm")] == [
        "int", "float", "bool", "str", "float"
    ]


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


def test_parquet_keeps_the_columns_types(completed, tmp_path):
    import pyarrow.parquet as pq

    path = tmp_path / "responses.parquet"
    run_export(completed.study.slug, "--format", "parquet", "-o", str(path))
    table = pq.read_table(path)
    assert table.num_rows == 50
    assert str(table.schema.field("correct").type) == "bool"
    assert str(table.schema.field("confidence").type) == "int64"
    assert str(table.schema.field("responded_at").type) == "timestamp[us, tz=UTC]"
    assert table.column("session").to_pylist()[0] == completed.session.pseudonym


def test_parquet_needs_a_file(db):
    with pytest.raises(CommandError, match="--output"):
        run_export("--format", "parquet")


def bundle_of(study, tmp_path) -> zipfile.ZipFile:
    path = tmp_path / "dataset.zip"
    call_command("export_dataset", study.slug, "-o", str(path), stdout=io.StringIO())
    return zipfile.ZipFile(path)


def table(bundle: zipfile.ZipFile, name: str) -> list[dict]:
    return list(csv.DictReader(io.TextIOWrapper(bundle.open(name), encoding="utf-8")))


def test_the_bundle_holds_every_table_and_a_datasheet(completed, tmp_path):
    bundle = bundle_of(completed.study, tmp_path)
    assert set(bundle.namelist()) == {
        "responses.csv", "shown_images.csv", "units.csv", "sessions.csv", "datasheet.json"
    }
    sheet = json.loads(bundle.read("datasheet.json"))
    [study] = sheet["studies"]
    assert study["slug"] == completed.study.slug and study["params"]["references_per_side"] == 9
    assert study["model"]["timm_name"] == "tf_efficientnet_lite0" and study["pool"]["name"] == "skimage"
    assert study["counts"]["responses"] == 50 and "completion_code" not in study
    assert sheet["code_version"] and "session_passed" in sheet["rows"]
    [session] = table(bundle, "sessions.csv")
    assert session["session"] == completed.session.pseudonym and session["seed"] == str(completed.session.seed)
    assert session["exclusion_reasons"] == "instruction_time;total_time"
    assert len(table(bundle, "units.csv")) == completed.study.study_units.count()


def test_each_shown_image_row_recomputes_the_responses_correctness(completed, tmp_path):
    bundle = bundle_of(completed.study, tmp_path)
    roles = {(row["trial_index"], row["position"]): row["role"] for row in table(bundle, "shown_images.csv")}
    responses = table(bundle, "responses.csv")
    assert len(roles) == 20 * len(responses)
    for row in responses:
        chosen = roles[(row["trial_index"], f"queries.{row['choice']}")]
        assert (chosen == "query_positive") == (row["correct"] == "True")


def test_the_bundle_round_trips_through_import_responses(completed, tmp_path):
    bundle_path = tmp_path / "dataset.zip"
    call_command("export_dataset", completed.study.slug, "-o", str(bundle_path), stdout=io.StringIO())
    out = io.StringIO()
    call_command("import_responses", str(bundle_path), stdout=out)
    imported = Study.objects.get(slug=f"{completed.study.slug}-imported")
    assert f"Imported {imported.slug}: 1 sessions, 50 responses." in out.getvalue()

    def comparable(study):
        return [{**row, "study": None} for row in responses_table([study]).records()]

    assert comparable(imported) == comparable(completed.study)
    assert imported.protocol_params == completed.study.protocol_params


def test_an_imported_session_goes_on_after_its_last_answer(completed, tmp_path):
    bundle_path = tmp_path / "dataset.zip"
    call_command("export_dataset", completed.study.slug, "-o", str(bundle_path), stdout=io.StringIO())
    call_command("import_responses", str(bundle_path), stdout=io.StringIO())
    imported = Session.objects.get(study__slug=f"{completed.study.slug}-imported")
    assert imported.next_index == completed.session.next_index == 50


def test_a_file_that_is_not_a_bundle_is_refused_with_a_message(db, tmp_path):
    path = tmp_path / "not.zip"
    path.write_bytes(b"hello")
    with pytest.raises(CommandError, match="Not a zip file"):
        call_command("import_responses", str(path))


def test_the_admin_exports_parquet_and_the_bundle(completed, admin_client):
    for action in ("export_parquet", "export_bundle"):
        response = admin_client.post(
            "/admin/experiments/study/", {"action": action, "_selected_action": [completed.study.pk]}
        )
        assert response.status_code == 200
        body = b"".join(response.streaming_content)
        assert body[:4] in (b"PAR1", b"PK\x03\x04")
