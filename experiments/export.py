"""Response datasets for analysts: one row per response, streamed, never the raw participant id."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet

from experiments.models import Response, Study

CHECK_NAMES = ("practice_attempts", "instruction_time", "catch_trials", "total_time", "position_bias")
COLUMNS = (
    "study", "protocol", "condition", "difficulty", "model", "unit_kind", "layer", "channel",
    "batch", "trial_kind", "phase", "attempt", "trial_index", "positive_position",
    "choice", "correct", "confidence", "rt_ms", "responded_at", "session", "session_status",
    "session_passed",
    *(f"check_{name}_{part}" for name in CHECK_NAMES for part in ("value", "passed")),
)
CHUNK = 2000


def responses_of(studies: Iterable[Study]) -> QuerySet[Response]:
    return (
        Response.objects.filter(session__study__in=list(studies))
        .select_related("session__study", "session_trial__trial__unit__model")
        .order_by("session__study_id", "session_id", "session_trial__index")
    )


def _check_columns(session) -> dict[str, Any]:
    checks = {c.name: c for c in session.checks.all()}
    columns: dict[str, Any] = {}
    for name in CHECK_NAMES:
        check = checks.get(name)
        columns[f"check_{name}_value"] = check.value if check else None
        columns[f"check_{name}_passed"] = check.passed if check else None
    return columns


def rows(responses: QuerySet[Response]) -> Iterator[dict[str, Any]]:
    """One dict per response, in COLUMNS order; sessions' checks are read once per session."""
    session_id, session_columns = None, {}
    for response in responses.iterator(chunk_size=CHUNK):
        session = response.session
        if session.pk != session_id:
            session_id, session_columns = session.pk, _check_columns(session)
        planned = response.session_trial
        trial = planned.trial
        study = session.study
        yield {
            "study": study.slug,
            "protocol": study.protocol,
            "condition": study.condition,
            "difficulty": trial.difficulty,
            "model": trial.unit.model.name,
            "unit_kind": trial.unit.kind,
            "layer": trial.unit.layer,
            "channel": trial.unit.channel,
            "batch": trial.batch,
            "trial_kind": trial.kind,
            "phase": planned.phase,
            "attempt": planned.attempt,
            "trial_index": planned.index,
            "positive_position": planned.correct_choice,
            "choice": response.choice,
            "correct": response.correct,
            "confidence": response.confidence,
            "rt_ms": response.rt_ms,
            "responded_at": response.created_at.isoformat(),
            "session": session.pseudonym,
            "session_status": session.status,
            "session_passed": session.passed,
            **session_columns,
        }


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def as_csv(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    writer = csv.DictWriter(_Echo(), fieldnames=COLUMNS)
    yield writer.writeheader()
    for record in records:
        yield writer.writerow(record)


def as_jsonl(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    for record in records:
        yield json.dumps(record) + "\n"


FORMATS = {"csv": as_csv, "jsonl": as_jsonl}
CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
