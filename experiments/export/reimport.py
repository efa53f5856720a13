"""Reading a dataset bundle (bundle.py) back into new studies, so that datasets move between
installations and give the same analysis there.

Each study comes back under a new slug with its parameters, units, the trials
its sessions saw (with their images' hashes, pool keys, roles and
activations; the image files themselves stay behind), its sessions with their
checks, and every response with its answer and key. The tables are read as
they stream, in the session order they were written in.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from datetime import datetime
from itertools import groupby
from pathlib import Path
from typing import IO, Any

from django.db import transaction

from experiments.copies import free_slug
from experiments.export.responses import GEOMETRY
from experiments.models import Response, Session, SessionCheck, SessionTrial, Study, StudyUnit, Trial, TrialImage
from protocols import get_protocol
from stimuli.models import ImagePool, SparseAutoencoder, StimulusImage, Unit, VisionModel

# Study fields the datasheet lists that are not columns to restore.
NOT_STUDY_FIELDS = {"model", "pool", "sae", "counts", "created_at", "status", "practice_trials", "catch_trials"}
BATCH = 1000


class BundleError(ValueError):
    """The file is not a dataset bundle this version can read; the message says why."""


def _read(bundle: zipfile.ZipFile, name: str) -> Iterator[dict[str, str]]:
    with bundle.open(name) as member:
        yield from csv.DictReader(io.TextIOWrapper(member, encoding="utf-8", newline=""))


def _value(text: str, kind: Any) -> Any:
    if text == "":
        return None
    if kind is bool:
        return text == "True"
    if kind is datetime:
        return datetime.fromisoformat(text)
    return kind(text)


def import_bundle(path: str | Path | IO[bytes]) -> list[Study]:
    try:
        bundle = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"Not a zip file: {exc}") from exc
    with bundle:
        try:
            sheet = json.loads(bundle.read("datasheet.json"))
        except KeyError as exc:
            raise BundleError("The zip has no datasheet.json: it is not a dataset bundle.") from exc
        if sheet.get("format") != "psyplatform dataset bundle" or sheet.get("format_version") != 1:
            raise BundleError(f"Unknown bundle format {sheet.get('format')!r} version {sheet.get('format_version')!r}.")
        with transaction.atomic():
            studies = {entry["slug"]: _study(entry) for entry in sheet["studies"]}
            _units(bundle, studies)
            sessions = _sessions(bundle, studies)
            _responses(bundle, studies, sessions)
    return list(studies.values())


def _study(entry: dict[str, Any]) -> Study:
    model, _ = VisionModel.objects.get_or_create(
        name=entry["model"]["name"],
        defaults={k: entry["model"][k] for k in ("timm_name", "weights", "layers")},
    )
    pool, _ = ImagePool.objects.get_or_create(
        name=entry["pool"]["name"], defaults={k: entry["pool"][k] for k in ("source", "location", "size", "seed")}
    )
    fields = {name: value for name, value in entry.items() if name not in NOT_STUDY_FIELDS}
    fields["slug"] = free_slug(f"{entry['slug']}-imported")
    fields["name"] = f"{entry['name'][:180]} (imported)"
    # The same SAE when this installation has its weights; its latents' units are named without it otherwise.
    sae = SparseAutoencoder.objects.filter(weights_sha256=(entry.get("sae") or {}).get("weights_sha256", "-")).first()
    return Study.objects.create(**fields, model=model, image_pool=pool, sae=sae, status=Study.Status.CLOSED)


def _units(bundle: zipfile.ZipFile, studies: dict[str, Study]) -> None:
    for row in _read(bundle, "units.csv"):
        study = studies[row["study"]]
        unit, _ = Unit.objects.get_or_create(
            model=study.model, kind=row["kind"], layer=row["layer"], channel=int(row["channel"]), sae=study.sae
        )
        StudyUnit.objects.create(
            study=study, unit=unit, role=row["role"], order=int(row["order"]),
            relative_depth=_value(row["relative_depth"], float),
        )


def _sessions(bundle: zipfile.ZipFile, studies: dict[str, Study]) -> dict[tuple[str, str], Session]:
    sessions: dict[tuple[str, str], Session] = {}
    for row in _read(bundle, "sessions.csv"):
        study = studies[row["study"]]
        session = Session.objects.create(
            study=study, source=row["recruiter"], pseudonym=row["session"],
            # The raw id never leaves the installation it came from.
            participant_id=f"imported:{row['session']}",
            seed=int(row["seed"]), status=row["status"], passed=_value(row["passed"], bool), phase=row["phase"],
            practice_attempts=int(row["practice_attempts"]), created_at=_value(row["created_at"], datetime),
            consented_at=_value(row["consented_at"], datetime), last_answer_at=_value(row["last_answer_at"], datetime),
            completed_at=_value(row["completed_at"], datetime), feedback=row["feedback"],
        )
        names = {column[len("check_"):-len("_value")] for column in row if column.endswith("_value")}
        SessionCheck.objects.bulk_create(
            SessionCheck(
                session=session, name=name, value=float(row[f"check_{name}_value"]),
                passed=row[f"check_{name}_passed"] == "True", rule="as exported",
            )
            for name in sorted(names)
            if row[f"check_{name}_value"] != ""
        )
        sessions[(row["study"], row["session"])] = session
    return sessions


class _Stimuli:
    """The new installation's rows for the bundle's trials and images, made once each."""

    def __init__(self) -> None:
        self.images: dict[str, int] = {}
        self.trials: dict[tuple[int, int, str, int], Trial] = {}

    def image(self, sha256: str, pool_key: str) -> int:
        if sha256 not in self.images:
            image, _ = StimulusImage.objects.get_or_create(
                sha256=sha256, defaults={"file": f"stimuli/{sha256}.jpg", "source_key": pool_key}
            )
            self.images[sha256] = image.pk
        return self.images[sha256]

    def trial(self, study: Study, row: dict[str, str], shown: list[dict[str, str]]) -> Trial:
        unit = Unit.objects.get(
            model=study.model, kind=row["unit_kind"], layer=row["layer"], channel=int(row["channel"])
        )
        identity = (study.pk, unit.pk, row["trial_kind"], int(row["batch"]))
        if identity not in self.trials:
            trial, _ = Trial.objects.get_or_create(
                study=study, unit=unit, kind=row["trial_kind"], batch=int(row["batch"]),
                defaults={"difficulty": row["difficulty"], "practice_level": row["practice_level"]},
            )
            for image in shown:
                TrialImage.objects.get_or_create(
                    trial=trial, role=image["role"], rank=int(image["rank"]),
                    defaults={
                        "image_id": self.image(image["image_sha256"], image["pool_key"]),
                        "activation": _value(image["activation"], float),
                    },
                )
            self.trials[identity] = trial
        return self.trials[identity]


def _responses(
    bundle: zipfile.ZipFile, studies: dict[str, Study], sessions: dict[tuple[str, str], Session]
) -> None:
    def trial_of(row: dict[str, str]) -> tuple[str, str, int]:
        return row["study"], row["session"], int(row["trial_index"])

    # Both files list every session's trials in the same order; shown_images also has unanswered ones.
    shown = groupby(_read(bundle, "shown_images.csv"), key=trial_of)
    stimuli = _Stimuli()
    pending: list[tuple[SessionTrial, Response]] = []
    for row in _read(bundle, "responses.csv"):
        identity = trial_of(row)
        images: list[dict[str, str]] = []
        for shown_trial, group in shown:
            if shown_trial == identity:
                images = list(group)
                break
        study = studies[row["study"]]
        protocol = get_protocol(study.protocol)
        trial = stimuli.trial(study, row, images)
        positions = [(image["position"], stimuli.image(image["image_sha256"], image["pool_key"])) for image in images]
        sources: dict[str, dict[str, Any]] = {"answer": {}, "key": {}, "details": {}}
        for name, column in protocol.export_columns.items():
            sources[column.source][column.field] = _value(row[name], _TYPES[column.type])
        answer, key = sources["answer"], sources["key"]
        # Bundles written before the geometry columns have none of them.
        geometry = {
            key: _value(row[name], _TYPES[kind]) for name, kind, key in GEOMETRY if row.get(name, "") != ""
        }
        session = sessions[(row["study"], row["session"])]
        planned = SessionTrial(
            session=session, index=int(row["trial_index"]), trial=trial, phase=row["phase"],
            attempt=int(row["attempt"]), layout=protocol.display_at(positions), key=key,
        )
        pending.append((planned, Response(
            session=session, session_trial=planned, client_id=uuid.uuid4(), answer=answer,
            rt_ms=int(row["rt_ms"]), server_ms=_value(row["server_ms"], int), correct=_value(row["correct"], bool),
            score=_value(row["score"], float), details=sources["details"],
            created_at=_value(row["responded_at"], datetime), geometry=geometry,
        )))
        if len(pending) >= BATCH:
            store_answered(pending)
    store_answered(pending)


# "json": a list or object, exported as its JSON text.
_TYPES: dict[str, Any] = {
    "int": int, "float": float, "bool": bool, "str": str, "datetime": datetime, "json": json.loads,
}


def store_answered(pending: list[tuple[SessionTrial, Response]]) -> None:
    """Store these session trials and their responses in two bulk inserts, and empty the list."""
    SessionTrial.objects.bulk_create([planned for planned, _ in pending])
    for planned, response in pending:
        response.session_trial = planned
    Response.objects.bulk_create([response for _, response in pending])
    pending.clear()
