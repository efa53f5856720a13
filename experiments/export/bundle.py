"""A dataset bundle: one zip with every table of some studies and a datasheet, so that an analyst can
recompute every number without asking, and another installation can read it back (reimport.py).

responses.csv, shown_images.csv, units.csv, sessions.csv, kept_maps.csv and
kept_maps.npz where verdicts read kept maps (kept_maps.py), and datasheet.json:
the studies' parameters, their models (timm names, weights and their sha256
where a file holds them), pools, the code's version, the counts, which rows
are in the files, and every other member's size and sha256, which an import
checks. Every member is written as it streams.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.forms.models import model_to_dict
from django.utils import timezone

from experiments.export.formats import csv_chunks
from experiments.export.kept_maps import ARRAYS, KeptMapsTable
from experiments.export.responses import responses_table
from experiments.export.table import Table
from experiments.export.tables import sessions_table, shown_images_table, units_table
from experiments.models import Response, Study, StudyUnit, Trial
from stimuli.models import VisionModel

FORMAT_VERSION = 1
ROW_FILTER = (
    "Every response of every session of the studies, practice and catch included; filter on phase, "
    "trial_kind and session_passed (the sessions table gives each check's value and the failed checks)."
)


def code_version() -> str:
    """The commit the code runs from, where it is a git checkout."""
    try:
        found = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return found.stdout.strip() if found.returncode == 0 else "unknown"


def weights_sha256(model: VisionModel) -> str | None:
    """The hash of the model's weights file, where one holds them (a checkpoint); None for timm's own."""
    if model.weights != VisionModel.Weights.CHECKPOINT or not Path(model.checkpoint_path).is_file():
        return None
    digest = hashlib.sha256()
    with open(model.checkpoint_path, "rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _study_sheet(study: Study) -> dict[str, Any]:
    # Not the completion code: it is what participants show to be paid.
    fields = model_to_dict(
        study, exclude=["id", "model", "image_pool", "sae", "completion_code", "practice_trials", "catch_trials"]
    )
    counts = Response.objects.filter(session__study=study).aggregate(
        responses=Count("pk"), passing_responses=Count("pk", filter=Q(session__passed=True))
    )
    return {
        **fields,
        # Every parameter, defaults included: what the participants actually had.
        "params": study.protocol_params.to_json(),
        # What the network ranked the pool by (not editable, so model_to_dict leaves it out); resize_to and
        # image_size above are what participants saw.
        "ranking_input": study.ranking_input,
        # Hand-picked trials by what names them in any installation; empty lists: the automatic choice.
        **{picks: _trial_names(getattr(study, picks).all()) for picks in ("practice_trials", "catch_trials")},
        # How the render chose the study's own practice units (hand-picked practice trials win over them), and
        # each practice unit's and candidate's value by that rule (units.csv has it too).
        "practice_rule": study.practice_rule,
        "practice_units": [
            {"role": role, "kind": kind, "layer": layer, "channel": channel, "practice_value": value}
            for role, kind, layer, channel, value in study.study_units.exclude(role=StudyUnit.Role.MAIN)
            .order_by("order")
            .values_list("role", "unit__kind", "unit__layer", "unit__channel", "practice_value")
        ],
        "created_at": study.created_at.isoformat(),
        "model": {
            "name": study.model.name,
            "timm_name": study.model.timm_name,
            "weights": study.model.weights,
            "weights_sha256": weights_sha256(study.model),
            "layers": study.model.layers,
        },
        # The SAE whose latents are the units (by its weights' hash), or None for channels.
        "sae": study.sae and {
            "name": study.sae.name,
            "layer": study.sae.layer,
            "architecture": study.sae.architecture,
            "n_latents": study.sae.n_latents,
            "k": study.sae.k,
            "weights_sha256": study.sae.weights_sha256,
            "variance_explained": study.sae.variance_explained,
        },
        "pool": {
            "name": study.image_pool.name,
            "source": study.image_pool.source,
            "location": study.image_pool.location,
            "size": study.image_pool.size,
            "seed": study.image_pool.seed,
        },
        "counts": {
            **counts,
            "sessions": study.sessions.count(),
            "passing_sessions": study.sessions.filter(passed=True).count(),
            "units": study.study_units.count(),
        },
    }


def _trial_names(trials: QuerySet[Trial]) -> list[dict[str, Any]]:
    return [
        {"study": study, "layer": layer, "channel": channel, "kind": kind, "batch": batch}
        for study, layer, channel, kind, batch in trials.order_by(
            "study__slug", "unit__layer", "unit__channel", "batch"
        ).values_list("study__slug", "unit__layer", "unit__channel", "kind", "batch")
    ]


def datasheet(studies: list[Study], files: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    return {
        "format": "psyplatform dataset bundle",
        "format_version": FORMAT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "code_version": code_version(),
        "rows": ROW_FILTER,
        "studies": [_study_sheet(study) for study in studies],
        # Every other member: an import refuses a bundle whose members do not match (reimport.check_files).
        "files": list(files),
    }


class _Hashed:
    """A member being written, with the size and sha256 of what went into it."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out, self.digest, self.size = out, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


def _member(bundle: zipfile.ZipFile, name: str, compression: int, write: Callable[[Any], None]) -> dict[str, Any]:
    """Write a member, and say what the datasheet lists of it."""
    info = zipfile.ZipInfo(name, time.localtime()[:6])
    info.compress_type = compression
    with bundle.open(info, "w", force_zip64=True) as member:
        hashed = _Hashed(member)
        write(hashed)
    return {"name": info.filename, "bytes": hashed.size, "sha256": hashed.digest.hexdigest()}


def _csv(table: Table) -> Callable[[Any], None]:
    def write(out: _Hashed) -> None:
        for chunk in csv_chunks(table):
            out.write(chunk)

    return write


def write_bundle(studies: Iterable[Study], out: IO[bytes]) -> None:
    chosen = list(studies)
    tables = [responses_table(chosen), shown_images_table(chosen), units_table(chosen), sessions_table(chosen)]
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        files = [_member(bundle, f"{table.name}.csv", zipfile.ZIP_DEFLATED, _csv(table)) for table in tables]
        kept = KeptMapsTable(chosen)
        kept_table = kept.table()
        if kept_table is not None:
            files.append(_member(bundle, f"{kept_table.name}.csv", zipfile.ZIP_DEFLATED, _csv(kept_table)))
            # Stored as it is (its arrays are compressed inside it), so that an import can seek in it.
            files.append(_member(bundle, ARRAYS, zipfile.ZIP_STORED, kept.write_arrays))
        bundle.writestr("datasheet.json", json.dumps(datasheet(chosen, files), indent=2, default=str))
