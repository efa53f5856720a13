"""A dataset bundle: one zip with every table of some studies and a datasheet, so that an analyst can
recompute every number without asking, and another installation can read it back (reimport.py).

responses.csv, shown_images.csv, units.csv, sessions.csv, and datasheet.json:
the studies' parameters, their models (timm names, weights and their sha256
where a file holds them), pools, the code's version, the counts, and which rows
are in the files. Every member is written as it streams.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.forms.models import model_to_dict
from django.utils import timezone

from experiments.export.formats import csv_chunks
from experiments.export.responses import responses_table
from experiments.export.table import Table
from experiments.export.tables import sessions_table, shown_images_table, units_table
from experiments.models import Response, Study, Trial
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


def datasheet(studies: list[Study]) -> dict[str, Any]:
    return {
        "format": "psyplatform dataset bundle",
        "format_version": FORMAT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "code_version": code_version(),
        "rows": ROW_FILTER,
        "studies": [_study_sheet(study) for study in studies],
    }


def write_bundle(studies: Iterable[Study], out: IO[bytes]) -> None:
    chosen = list(studies)
    tables: list[Table] = [
        responses_table(chosen), shown_images_table(chosen), units_table(chosen), sessions_table(chosen),
    ]
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for table in tables:
            with bundle.open(f"{table.name}.csv", "w", force_zip64=True) as member:
                for chunk in csv_chunks(table):
                    member.write(chunk)
        bundle.writestr("datasheet.json", json.dumps(datasheet(chosen), indent=2, default=str))
