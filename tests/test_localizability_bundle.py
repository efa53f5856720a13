"""A localizability study's dataset bundle carries the kept maps its verdicts read (kept_maps.csv and
kept_maps.npz, listed with their sha256 in the datasheet like every member), so that the study read back
from it judges every answer as the original did; a member changed after export is refused."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from experiments.export.reimport import BundleError, import_bundle
from experiments.export.tables import units_table
from experiments.models import Response, Session, SessionTrial, Study, TrialImage
from experiments.verdicts import rejudged, stored_verdict
from protocols.base import Score
from stimuli.kept_maps import stored_values
from stimuli.models import KeptMap
from tests.builders import build_2afc_study, render_localizability_study
from tests.conftest import Participant
from tests.test_localizability_api import click, kept_map, peak, trough

KEPT_MEMBERS = {"kept_maps.csv", "kept_maps.npz"}


@pytest.fixture
def study(isolated_files, tiny_model):
    """Rendered, with two completed sessions: one clicking every map's peak, one its trough (misses)."""
    study = render_localizability_study(tiny_model, min_instruction_s=0, min_total_s=0, params={"min_catch_correct": 0})
    for name, where in (("peaks", peak), ("troughs", trough)):
        participant = Participant(study, name)
        participant.start()
        participant.through_instructions()
        while not (trial := participant.trial().json())["done"]:
            hit = where is peak or participant.session.phase == Session.Phase.PRACTICE
            click(participant, trial["index"], [(peak if hit else trough)(kept_map(participant, trial["index"]))])
        participant.complete()
    return study


def export(study: Study, path: Path) -> Path:
    call_command("export_dataset", study.slug, "-o", str(path), stdout=io.StringIO())
    return path


def verdicts(study: Study) -> dict[tuple[str, int], Score]:
    """Every response's verdict judged again, by session and trial index."""
    return {
        (response.session.pseudonym, response.session_trial.index): verdict
        for response, verdict in rejudged(Study.objects.get(pk=study.pk))
    }


def stored(study: Study) -> dict[tuple[str, int], Score]:
    """Every response's verdict as it was stored when the answer came."""
    return {
        (response.session.pseudonym, response.session_trial.index): stored_verdict(response)
        for response in Response.objects.filter(session__study=study).select_related("session", "session_trial")
    }


def forget(study: Study) -> None:
    """Delete the study and every kept map, so that an import has nothing but the bundle to judge by."""
    Session.objects.filter(study=study).delete()
    study.delete()
    KeptMap.objects.all().delete()


@pytest.mark.django_db
def test_the_bundle_carries_every_map_a_verdict_reads(study, tmp_path):
    bundle = zipfile.ZipFile(export(study, tmp_path / "dataset.zip"))
    rows = list(csv.DictReader(io.TextIOWrapper(bundle.open("kept_maps.csv"), encoding="utf-8")))
    assert len(rows) == Response.objects.filter(session__study=study).count()
    with np.load(bundle.open("kept_maps.npz")) as arrays:
        for row in rows:
            planned = SessionTrial.objects.get(session__pseudonym=row["session"], index=int(row["trial_index"]))
            kept = KeptMap.objects.get(pk=planned.key["map"])
            assert row["image_sha256"] == kept.image.sha256
            assert np.array_equal(arrays[row["map"]], stored_values(kept))


@pytest.mark.django_db
def test_the_datasheet_lists_every_member_with_its_sha256(study, tmp_path):
    bundle = zipfile.ZipFile(export(study, tmp_path / "dataset.zip"))
    files = json.loads(bundle.read("datasheet.json"))["files"]
    assert {entry["name"] for entry in files} == set(bundle.namelist()) - {"datasheet.json"}
    assert KEPT_MEMBERS <= {entry["name"] for entry in files}
    for entry in files:
        content = bundle.read(entry["name"])
        assert (entry["bytes"], entry["sha256"]) == (len(content), hashlib.sha256(content).hexdigest())


@pytest.mark.django_db
def test_a_reimported_study_judges_every_answer_as_the_original_did(study, tmp_path):
    original = stored(study)
    assert {True, False} <= {verdict.correct for verdict in original.values()}
    units = [row[1:] for row in units_table([study]).rows]
    path = export(study, tmp_path / "dataset.zip")
    forget(study)
    [imported] = import_bundle(path)
    assert verdicts(imported) == original
    assert [row[1:] for row in units_table([imported]).rows] == units
    call_command("rejudge", imported.slug, stdout=io.StringIO())


@pytest.mark.django_db
def test_a_reimported_query_keeps_its_map(study, tmp_path):
    path = export(study, tmp_path / "dataset.zip")
    forget(study)
    [imported] = import_bundle(path)
    queries = TrialImage.objects.filter(trial__study=imported, role="query")
    assert queries.exists() and not queries.filter(kept_map__isnull=True).exists()
    assert all(query.kept_map.image_id == query.image_id for query in queries)


@pytest.mark.django_db
def test_a_tampered_kept_maps_member_is_refused_and_nothing_imported(study, tmp_path):
    path = export(study, tmp_path / "dataset.zip")
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(path) as bundle, zipfile.ZipFile(tampered, "w") as out:
        for name in bundle.namelist():
            content = bundle.read(name)
            if name == "kept_maps.npz":
                with np.load(io.BytesIO(content)) as arrays:
                    changed = {name: np.flipud(values) for name, values in arrays.items()}
                buffer = io.BytesIO()
                np.savez_compressed(buffer, **changed)
                content = buffer.getvalue()
            out.writestr(name, content)
    studies = Study.objects.count()
    with pytest.raises(BundleError, match="kept_maps.npz is not the file it was exported with: its sha256"):
        import_bundle(tampered)
    assert Study.objects.count() == studies


@pytest.mark.django_db
def test_rejudge_fails_where_a_stored_verdict_differs(study):
    response = Response.objects.filter(session__study=study, correct=True).first()
    Response.objects.filter(pk=response.pk).update(correct=False)
    with pytest.raises(CommandError, match=f"Verdicts differ from the stored ones in {study.slug}"):
        call_command("rejudge", study.slug, stdout=io.StringIO())


@pytest.mark.django_db
def test_a_bundle_without_kept_maps_has_no_such_member(tmp_path):
    study = build_2afc_study(n_units=4, n_main_trials=2, n_catch_trials=1, min_instruction_s=0, min_total_s=0)
    participant = Participant(study)
    participant.start()
    participant.through_instructions()
    participant.answer_all()
    participant.complete()
    bundle = zipfile.ZipFile(export(study, tmp_path / "dataset.zip"))
    assert not KEPT_MEMBERS & set(bundle.namelist())
