"""The responses table: one row per response, the generic columns, then each protocol's own, then
every check's value and verdict.

Rows come from one query of plain values (no model instances; the protocols'
columns read out of the answer and key JSON by the database), through a
server-side cursor in chunks, and the sessions' checks from a second query read
alongside in the same session order, so memory stays flat in the number of
responses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import groupby
from typing import Any

from django.db.models import BooleanField, Field, FloatField, IntegerField, QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from experiments.checks import GENERIC_CHECKS
from experiments.export.table import CHUNK, Table
from experiments.models import Response, SessionCheck, Study
from protocols import get_protocol
from protocols.base import ExportColumn, Protocol

# (column, type, the value's path from Response)
GENERIC = [
    ("study", "str", "session__study__slug"),
    ("protocol", "str", "session__study__protocol"),
    ("condition", "str", "session__study__condition"),
    ("difficulty", "str", "session_trial__trial__difficulty"),
    ("model", "str", "session_trial__trial__unit__model__name"),
    ("unit_kind", "str", "session_trial__trial__unit__kind"),
    ("layer", "str", "session_trial__trial__unit__layer"),
    ("channel", "int", "session_trial__trial__unit__channel"),
    ("batch", "int", "session_trial__trial__batch"),
    ("trial_kind", "str", "session_trial__trial__kind"),
    ("practice_level", "str", "session_trial__trial__practice_level"),
    ("phase", "str", "session_trial__phase"),
    ("attempt", "int", "session_trial__attempt"),
    ("trial_index", "int", "session_trial__index"),
]
OUTCOME = [
    ("correct", "bool", "correct"),
    ("score", "float", "score"),
    ("rt_ms", "int", "rt_ms"),
    ("server_ms", "int", "server_ms"),
    ("responded_at", "datetime", "created_at"),
    ("session", "str", "session__pseudonym"),
    ("session_status", "str", "session__status"),
    ("session_passed", "bool", "session__passed"),
]
# What the browser reported of its display on each trial (Response.geometry): (column, type, its key there).
GEOMETRY = [
    ("window_width", "int", "window_width"),
    ("window_height", "int", "window_height"),
    ("screen_width", "int", "screen_width"),
    ("screen_height", "int", "screen_height"),
    ("device_pixel_ratio", "float", "device_pixel_ratio"),
    ("zoom", "float", "zoom"),
    ("fullscreen", "bool", "fullscreen"),
    ("image_css_px_min", "float", "image_css_px_min"),
    ("image_css_px_max", "float", "image_css_px_max"),
    ("image_device_px_min", "float", "image_device_px_min"),
    ("image_device_px_max", "float", "image_device_px_max"),
    ("px_per_mm", "float", "px_per_mm"),  # the session's size calibration, stamped by the server
    ("user_agent", "str", "user_agent"),
]
# Where each source of a protocol's export columns is, from Response.
SOURCES = {"answer": "answer", "key": "session_trial__key", "details": "details"}
CASTS: dict[str, type[Field[Any, Any]]] = {
    "int": IntegerField, "float": FloatField, "bool": BooleanField, "str": TextField, "json": TextField,
}


class _DatabaseCast(Cast):
    """A cast whose values the database returns already typed (CAST AS integer gives an int on PostgreSQL and
    SQLite alike), so Django's int() or float() of every value is skipped: it took about a third of the
    time the export spends making rows."""

    @property
    def convert_value(self) -> Any:
        return _as_returned


def _as_returned(value: Any, expression: Any, connection: Any) -> Any:
    return value


def _protocols(studies: Iterable[Study]) -> list[Protocol[Any]]:
    return [get_protocol(name) for name in dict.fromkeys(study.protocol for study in studies)]


def check_names(studies: Iterable[Study]) -> list[str]:
    protocols = _protocols(studies)
    return list(dict.fromkeys([*GENERIC_CHECKS, *(name for p in protocols for name in p.check_names)]))


def protocol_columns(studies: Iterable[Study]) -> dict[str, ExportColumn]:
    own: dict[str, ExportColumn] = {}
    for protocol in _protocols(studies):
        own.update(protocol.export_columns)
    return own


def columns(studies: Iterable[Study]) -> list[tuple[str, str]]:
    """The export's columns and types for these studies, each protocol's own after the generic ones."""
    own = {name: column.type for name, column in protocol_columns(studies).items()}
    checks = [
        (f"check_{name}_{part}", kind)
        for name in check_names(studies)
        for part, kind in (("value", "float"), ("passed", "bool"))
    ]
    return [
        *((name, kind) for name, kind, _ in GENERIC),
        *own.items(),
        *((n, k) for n, k, _ in OUTCOME),
        *((n, k) for n, k, _ in GEOMETRY),
        *checks,
    ]


def checks_by_session(studies: list[Study]) -> Iterator[tuple[int, dict[str, Any]]]:
    rows = (
        SessionCheck.objects.filter(session__study__in=studies)
        .order_by("session_id", "name")
        .values_list("session_id", "name", "value", "passed")
        .iterator(chunk_size=CHUNK)
    )
    for session_id, checks in groupby(rows, key=lambda row: row[0]):
        values: dict[str, Any] = {}
        for _, name, value, passed in checks:
            values[f"check_{name}_value"] = value
            values[f"check_{name}_passed"] = passed
        yield session_id, values


def response_values(studies: list[Study]) -> QuerySet[Response, tuple[Any, ...]]:
    """The responses' column values, in session order, with the session id last."""
    # Prefixed, so that a protocol's column never clashes with a field of Response.
    fields = {
        f"own_{name}": _DatabaseCast(KeyTextTransform(column.field, SOURCES[column.source]), CASTS[column.type]())
        for name, column in protocol_columns(studies).items()
    }
    shown = {f"geometry_{name}": Cast(KeyTextTransform(key, "geometry"), CASTS[kind]()) for name, kind, key in GEOMETRY}
    paths = [
        *(path for _, _, path in GENERIC), *fields, *(path for _, _, path in OUTCOME), *shown, "session_id"
    ]
    return (
        Response.objects.filter(session__study__in=studies)
        .annotate(**fields, **shown)
        .order_by("session_id", "session_trial__index")
        .values_list(*paths)
    )


def _rows(studies: list[Study]) -> Iterator[tuple[Any, ...]]:
    responses = response_values(studies).iterator(chunk_size=CHUNK)
    checks = checks_by_session(studies)
    pending = next(checks, None)
    check_columns = [f"check_{name}_{part}" for name in check_names(studies) for part in ("value", "passed")]
    session_checks: tuple[Any, ...] = ()
    current_session = None
    for row in responses:
        session_id = row[-1]
        if session_id != current_session:
            current_session = session_id
            # Both streams go in session order: skip checks of sessions without responses.
            while pending is not None and pending[0] < session_id:
                pending = next(checks, None)
            values = pending[1] if pending is not None and pending[0] == session_id else {}
            session_checks = tuple(values.get(name) for name in check_columns)
        yield row[:-1] + session_checks


def responses_table(studies: Iterable[Study]) -> Table:
    chosen = list(studies)
    return Table("responses", columns(chosen), _rows(chosen))
