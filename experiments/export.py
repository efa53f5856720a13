"""Response datasets for analysts: one row per response, streamed, never the raw participant id.

The columns are the generic ones, then those of each protocol the exported
studies use (the 2-AFC's positions, choice and confidence), then every check's
value and verdict.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.db.models import QuerySet

from experiments.checks import GENERIC_CHECKS
from experiments.models import Response, Session, Study
from protocols import get_protocol
from protocols.base import Protocol

FIRST_COLUMNS = (
    "study", "protocol", "condition", "difficulty", "model", "unit_kind", "layer", "channel",
    "batch", "trial_kind", "phase", "attempt", "trial_index",
)
ANSWER_COLUMNS = (
    "correct", "score", "rt_ms", "server_ms", "responded_at", "session", "session_status", "session_passed",
)
CHUNK = 2000


def responses_of(studies: Iterable[Study]) -> QuerySet[Response]:
    return (
        Response.objects.filter(session__study__in=list(studies))
        .select_related("session__study", "session_trial__trial__unit__model")
        .order_by("session__study_id", "session_id", "session_trial__index")
    )


def _protocols(studies: Iterable[Study]) -> list[Protocol[Any]]:
    names = dict.fromkeys(study.protocol for study in studies)
    return [get_protocol(name) for name in names]


def columns(studies: Iterable[Study]) -> tuple[str, ...]:
    """The export's columns for these studies, each protocol's own after the generic ones."""
    protocols = _protocols(studies)
    answer = dict.fromkeys(column for p in protocols for column in p.export_columns)
    checks = dict.fromkeys([*GENERIC_CHECKS, *(name for p in protocols for name in p.check_names)])
    return (
        *FIRST_COLUMNS,
        *answer,
        *ANSWER_COLUMNS,
        *(f"check_{name}_{part}" for name in checks for part in ("value", "passed")),
    )


def _check_columns(session: Session) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for check in session.checks.all():
        columns[f"check_{check.name}_value"] = check.value
        columns[f"check_{check.name}_passed"] = check.passed
    return columns


def rows(responses: QuerySet[Response]) -> Iterator[dict[str, Any]]:
    """One dict per response; columns a row has no value for are missing. Sessions' checks are read
    once per session."""
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
            **get_protocol(study.protocol).export_values(response.answer, planned.key),
            "correct": response.correct,
            "score": response.score,
            "rt_ms": response.rt_ms,
            "server_ms": response.server_ms,
            "responded_at": response.created_at.isoformat(),
            "session": session.pseudonym,
            "session_status": session.status,
            "session_passed": session.passed,
            **session_columns,
        }


def dataset(studies: QuerySet[Study]) -> tuple[tuple[str, ...], Iterator[dict[str, Any]]]:
    """The columns and the rows of an export of these studies."""
    chosen = list(studies)
    return columns(chosen), rows(responses_of(chosen))


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def as_csv(records: Iterable[dict[str, Any]], fieldnames: Sequence[str]) -> Iterator[str]:
    writer = csv.DictWriter(_Echo(), fieldnames=fieldnames)
    yield writer.writeheader()
    for record in records:
        yield writer.writerow(record)


def as_jsonl(records: Iterable[dict[str, Any]], fieldnames: Sequence[str]) -> Iterator[str]:
    for record in records:
        yield json.dumps({name: record.get(name) for name in fieldnames}) + "\n"


FORMATS = {"csv": as_csv, "jsonl": as_jsonl}
CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
