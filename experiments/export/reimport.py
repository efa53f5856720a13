"""Reading a dataset bundle (bundle.py) back into new studies, so that datasets move between
installations and give the same analysis there.

Each study comes back under a new slug with its parameters, units, the trials
its sessions saw (with their images' hashes, pool keys, roles and
activations; the image files themselves stay behind), the kept maps its
verdicts read (so that its answers can be judged again: selectors.rejudged),
its sessions with their checks, and every response with its answer and key.
A bundle whose members are not the ones its datasheet lists, byte for byte, is
refused before anything is read. The tables are read as they stream, in the
session order they were written in.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from datetime import datetime
from itertools import groupby
from pathlib import Path
from typing import IO, Any

import numpy as np
from django.db import transaction
from django.db.models import OuterRef, Subquery

from experiments.copies import free_slug
from experiments.export.kept_maps import kept_arrays
from experiments.export.responses import GEOMETRY
from experiments.models import Response, Session, SessionCheck, SessionTrial, Study, StudyUnit, Trial, TrialImage
from protocols import get_protocol
from stimuli.kept_maps import keep_map, stored_values
from stimuli.models import ImagePool, SparseAutoencoder, StimulusImage, Unit, VisionModel

# Study fields the datasheet lists that are not columns to restore.
NOT_STUDY_FIELDS = {
    "model", "pool", "sae", "counts", "created_at", "status", "practice_trials", "catch_trials", "practice_units",
}
BATCH = 1000
Trial_ = tuple[str, str, int]  # a session's trial in the tables: study, session, trial index


class BundleError(ValueError):
    """The file is not a dataset bundle this version can read; the message says why."""


def _read(bundle: zipfile.ZipFile, name: str, optional: bool = False) -> Iterator[dict[str, str]]:
    """The member's rows; none when an optional member is not there."""
    if optional and name not in bundle.namelist():
        return
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
        check_files(bundle, sheet)
        with transaction.atomic():
            studies = {entry["slug"]: _study(entry) for entry in sheet["studies"]}
            _units(bundle, studies)
            sessions = _sessions(bundle, studies)
            _responses(bundle, studies, sessions)
    return list(studies.values())


def check_files(bundle: zipfile.ZipFile, sheet: Mapping[str, Any]) -> None:
    """Refuse a bundle whose members are not the ones its datasheet lists, each with its sha256 (a bundle
    written before datasheets listed their files is read unchecked)."""
    if "files" not in sheet:
        return
    listed = {entry["name"]: entry["sha256"] for entry in sheet["files"]}
    unlisted = sorted(set(bundle.namelist()) - set(listed) - {"datasheet.json"})
    if unlisted:
        raise BundleError(f"The bundle holds {', '.join(unlisted)}, which its datasheet does not list.")
    for name, expected in listed.items():
        digest = hashlib.sha256()
        try:
            with bundle.open(name) as member:
                for block in iter(lambda: member.read(1 << 20), b""):
                    digest.update(block)
        except KeyError as exc:
            raise BundleError(f"The bundle lacks {name}, which its datasheet lists.") from exc
        except zipfile.BadZipFile as exc:
            raise BundleError(f"The bundle's {name} cannot be read: {exc}") from exc
        if digest.hexdigest() != expected:
            raise BundleError(
                f"The bundle's {name} is not the file it was exported with: its sha256 is {digest.hexdigest()}, "
                f"its datasheet lists {expected}. Nothing was imported."
            )


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
            # Bundles written before practice units were chosen by a value have no such column.
            practice_value=_value(row.get("practice_value", ""), float),
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
    """The new installation's rows for the bundle's trials, images and kept maps, made once each."""

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.units: dict[tuple[int, str, str, int], Unit] = {}
        self.images: dict[str, int] = {}
        self.trials: dict[tuple[int, int, str, int], Trial] = {}
        self.maps: dict[str, int] = {}  # the bundle's name of a kept map -> its id here
        self.kept: dict[tuple[int, int], int] = {}  # (unit, image) -> the id of its kept map here

    def unit(self, study: Study, kind: str, layer: str, channel: str) -> Unit:
        identity = (study.pk, kind, layer, int(channel))
        if identity not in self.units:
            self.units[identity] = Unit.objects.get(model=study.model, kind=kind, layer=layer, channel=int(channel))
        return self.units[identity]

    def image(self, sha256: str, pool_key: str) -> int:
        if sha256 not in self.images:
            image, _ = StimulusImage.objects.get_or_create(
                sha256=sha256, defaults={"file": f"stimuli/{sha256}.jpg", "source_key": pool_key}
            )
            self.images[sha256] = image.pk
        return self.images[sha256]

    def kept_map(self, study: Study, row: dict[str, str]) -> int:
        """The id here of a kept map kept_maps.csv names, stored from kept_maps.npz the first time."""
        name = row["map"]
        if name not in self.maps:
            if name not in self.arrays:
                raise BundleError(f"kept_maps.csv names the map {name}, which kept_maps.npz lacks.")
            values = self.arrays[name]
            unit = self.unit(study, row["unit_kind"], row["layer"], row["channel"])
            image = StimulusImage.objects.get(pk=self.image(row["image_sha256"], row["pool_key"]))
            kept = keep_map(unit, image, values)
            if not np.array_equal(stored_values(kept), values):
                raise BundleError(
                    f"The bundle's map {name} of {unit} on image {image.sha256[:12]} differs from the map this "
                    "installation keeps for them."
                )
            self.maps[name] = self.kept[(unit.pk, image.pk)] = kept.pk
        return self.maps[name]

    def trial(self, study: Study, row: dict[str, str], shown: list[dict[str, str]]) -> Trial:
        unit = self.unit(study, row["unit_kind"], row["layer"], row["channel"])
        identity = (study.pk, unit.pk, row["trial_kind"], int(row["batch"]))
        if identity not in self.trials:
            trial, _ = Trial.objects.get_or_create(
                study=study, unit=unit, kind=row["trial_kind"], batch=int(row["batch"]),
                defaults={"difficulty": row["difficulty"], "practice_level": row["practice_level"]},
            )
            for image in shown:
                image_id = self.image(image["image_sha256"], image["pool_key"])
                TrialImage.objects.get_or_create(
                    trial=trial, role=image["role"], rank=int(image["rank"]),
                    defaults={
                        "image_id": image_id,
                        "activation": _value(image["activation"], float),
                        "kept_map_id": self.kept.get((unit.pk, image_id)),
                    },
                )
            self.trials[identity] = trial
        return self.trials[identity]


def _trial_of(row: dict[str, str]) -> Trial_:
    return row["study"], row["session"], int(row["trial_index"])


class _Alongside:
    """A member's rows grouped by session trial, read alongside responses.csv: every table lists the sessions
    in sessions.csv's order and each session's trials by index, and this one may hold trials that
    responses.csv lacks (unanswered ones) and lack some that it has (those that read no kept map)."""

    def __init__(self, rows: Iterator[dict[str, str]], sessions: Mapping[tuple[str, str], Session]) -> None:
        self.rank = {session: number for number, session in enumerate(sessions)}
        self.groups = groupby(rows, key=_trial_of)
        self.pending: tuple[Trial_, list[dict[str, str]]] | None = None

    def _place(self, trial: Trial_) -> tuple[int, int]:
        return self.rank[trial[:2]], trial[2]

    def of(self, trial: Trial_) -> list[dict[str, str]]:
        """The trial's rows (none where the member has none), skipping those of the trials before it."""
        while True:
            if self.pending is None:
                found = next(self.groups, None)
                if found is None:
                    return []
                self.pending = (found[0], list(found[1]))
            identity, rows = self.pending
            if self._place(identity) > self._place(trial):
                return []
            self.pending = None
            if identity == trial:
                return rows


def _responses(
    bundle: zipfile.ZipFile, studies: dict[str, Study], sessions: dict[tuple[str, str], Session]
) -> None:
    shown = _Alongside(_read(bundle, "shown_images.csv"), sessions)
    # Only where verdicts read kept maps (and not in bundles written before they were exported).
    maps_read = _Alongside(_read(bundle, "kept_maps.csv", optional=True), sessions)
    with kept_arrays(bundle) as arrays:
        stimuli = _Stimuli(arrays)
        pending: list[tuple[SessionTrial, Response]] = []
        for row in _read(bundle, "responses.csv"):
            identity = _trial_of(row)
            images = shown.of(identity)
            study = studies[row["study"]]
            protocol = get_protocol(study.protocol)
            positions = [
                (image["position"], stimuli.image(image["image_sha256"], image["pool_key"])) for image in images
            ]
            reads = sorted(maps_read.of(identity), key=lambda read: int(read["read"]))
            maps = [stimuli.kept_map(study, read) for read in reads]
            trial = stimuli.trial(study, row, images)
            sources: dict[str, dict[str, Any]] = {"answer": {}, "key": {}, "details": {}}
            for name, column in protocol.export_columns.items():
                sources[column.source][column.field] = _value(row[name], _TYPES[column.type])
            answer, key = sources["answer"], protocol.key_with_maps(sources["key"], maps)
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
                rt_ms=int(row["rt_ms"]), server_ms=_value(row["server_ms"], int),
                correct=_value(row["correct"], bool), score=_value(row["score"], float), details=sources["details"],
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
    # Every stored trial is answered, so each session goes on after its last (as answer_trial keeps it).
    last_index = SessionTrial.objects.filter(session=OuterRef("pk")).order_by("-index").values("index")[:1]
    Session.objects.filter(pk__in={planned.session_id for planned, _ in pending}).update(
        next_index=Subquery(last_index) + 1
    )
    pending.clear()
