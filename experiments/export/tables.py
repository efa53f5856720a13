"""The other tables of a dataset: one row per shown image, the units, the sessions.

With them an analyst can recompute every response's correctness (where each
image was shown and what its role was), audit the stimuli (content hashes, pool
keys, activations) and apply the exclusions themselves (every check's value).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from experiments.export.responses import CASTS, check_names, checks_by_session
from experiments.export.table import CHUNK, Table
from experiments.models import Response, Session, SessionTrial, Study, StudyUnit, TrialImage
from protocols import get_protocol
from protocols.base import Protocol, Score

SHOWN_COLUMNS = [
    ("study", "str"), ("session", "str"), ("trial_index", "int"), ("position", "str"), ("role", "str"),
    ("rank", "int"), ("image_sha256", "str"), ("pool_key", "str"), ("activation", "float"),
]
UNIT_COLUMNS = [
    ("study", "str"), ("role", "str"), ("order", "int"), ("model", "str"), ("timm_name", "str"), ("kind", "str"),
    ("layer", "str"), ("channel", "int"), ("relative_depth", "float"), ("sae", "str"), ("practice_value", "float"),
]
SESSION_COLUMNS = [
    ("study", "str"), ("session", "str"), ("recruiter", "str"), ("seed", "int"), ("status", "str"),
    ("passed", "bool"), ("exclusion_reasons", "str"), ("phase", "str"), ("practice_attempts", "int"),
    ("created_at", "datetime"), ("consented_at", "datetime"), ("last_answer_at", "datetime"),
    ("completed_at", "datetime"), ("feedback", "str"),
]


def _shown_rows(studies: list[Study]) -> Iterator[tuple[Any, ...]]:
    protocols = {study.pk: get_protocol(study.protocol) for study in studies}
    planned = (
        SessionTrial.objects.filter(session__study__in=studies)
        .order_by("session_id", "index")
        .values_list("session__study_id", "session__study__slug", "session__pseudonym", "index", "trial_id", "layout")
        .iterator(chunk_size=CHUNK)
    )
    while chunk := list(islice(planned, CHUNK)):
        # The images of the chunk's trials in one query, looked up by (trial, image).
        images = {
            (trial, image): rest
            for trial, image, *rest in TrialImage.objects.filter(trial_id__in={row[4] for row in chunk}).values_list(
                "trial_id", "image_id", "role", "rank", "image__sha256", "image__source_key", "activation"
            )
        }
        for study_id, slug, pseudonym, index, trial_id, layout in chunk:
            for position, image_id in protocols[study_id].positions(layout):
                role, rank, sha256, pool_key, activation = images[(trial_id, image_id)]
                yield slug, pseudonym, index, position, role, rank, sha256, pool_key, activation


def shown_images_table(studies: Iterable[Study]) -> Table:
    return Table("shown_images", SHOWN_COLUMNS, _shown_rows(list(studies)))


def unit_statistics(studies: Iterable[Study]) -> dict[str, str]:
    """Every unit statistic the studies' protocols' summary jobs store (nameability: agreement), with its type."""
    names: dict[str, str] = {}
    for protocol in dict.fromkeys(get_protocol(study.protocol) for study in studies):
        names.update(protocol.unit_statistics)
    return names


def _verdicts(protocols: dict[int, Protocol[Any]]) -> dict[tuple[int, int], list[Score]]:
    """Per (study, unit), the verdicts on its counted answers, for the studies whose protocol has unit columns."""
    scoring = [pk for pk, protocol in protocols.items() if protocol.unit_columns]
    verdicts: dict[tuple[int, int], list[Score]] = defaultdict(list)
    rows = (
        Response.objects.counted()
        .filter(session__study__in=scoring)
        .order_by()  # grouped here: the model's ordering would only add a join and a sort
        .values_list("session__study_id", "session_trial__trial__unit_id", "correct", "score", "details")
    )
    for study_id, unit_id, correct, score, details in rows.iterator(chunk_size=CHUNK):
        verdicts[(study_id, unit_id)].append(Score(correct, score, details))
    return verdicts


def units_table(studies: Iterable[Study]) -> Table:
    """The units, with each protocol's own columns: computed from the verdicts (localizability: its
    chance-anchored score; verify: accuracy and S), and stored by a summary job (nameability: agreement)."""
    chosen = list(studies)
    protocols = {study.pk: get_protocol(study.protocol) for study in chosen}
    own: dict[str, str] = {}
    for protocol in protocols.values():
        own.update(protocol.unit_columns)
    verdicts = _verdicts(protocols)
    # Validated once per study, not per unit (verify's chance level is its 1/m).
    params = {study.pk: study.protocol_params for study in chosen if protocols[study.pk].unit_columns}
    statistics = unit_statistics(chosen)
    # Read out of the JSON by the database, as the responses' protocol columns are; empty until a summary ran.
    fields = {
        f"stat_{name}": Cast(KeyTextTransform(name, "statistics"), CASTS[kind]()) for name, kind in statistics.items()
    }
    rows = (
        StudyUnit.objects.filter(study__in=chosen)
        .annotate(**fields)
        .order_by("study_id", "role", "order")
        .values_list(
            "study__slug", "role", "order", "unit__model__name", "unit__model__timm_name", "unit__kind",
            "unit__layer", "unit__channel", "relative_depth", "unit__sae__name", "practice_value", *fields,
            "study_id", "unit_id",
        )
        .iterator(chunk_size=CHUNK)
    )

    def with_own(row: tuple[Any, ...]) -> tuple[Any, ...]:
        *shared, study_id, unit_id = row
        protocol = protocols[study_id]
        values = {}
        if protocol.unit_columns:
            values = protocol.unit_values(params[study_id], verdicts.get((study_id, unit_id), []))
        return (*shared, *(values.get(name) for name in own))

    return Table("units", UNIT_COLUMNS + list(statistics.items()) + list(own.items()), map(with_own, rows))


def _session_rows(studies: list[Study], checks: list[str]) -> Iterator[tuple[Any, ...]]:
    sessions = (
        Session.objects.filter(study__in=studies)
        .order_by("pk")
        .values_list(
            "pk", "study__slug", "pseudonym", "source", "seed", "status", "passed", "phase", "practice_attempts",
            "created_at", "consented_at", "last_answer_at", "completed_at", "feedback",
        )
        .iterator(chunk_size=CHUNK)
    )
    check_stream = checks_by_session(studies)
    pending = next(check_stream, None)
    for pk, slug, pseudonym, source, seed, status, passed, *rest in sessions:
        while pending is not None and pending[0] < pk:
            pending = next(check_stream, None)
        values = pending[1] if pending is not None and pending[0] == pk else {}
        failed = [name for name in checks if values.get(f"check_{name}_passed") is False]
        yield (
            slug, pseudonym, source, seed, status, passed, ";".join(failed), *rest,
            *(values.get(f"check_{name}_{part}") for name in checks for part in ("value", "passed")),
        )


def sessions_table(studies: Iterable[Study]) -> Table:
    chosen = list(studies)
    checks = check_names(chosen)
    columns = SESSION_COLUMNS + [
        (f"check_{name}_{part}", kind) for name in checks for part, kind in (("value", "float"), ("passed", "bool"))
    ]
    return Table("sessions", columns, _session_rows(chosen, checks))
