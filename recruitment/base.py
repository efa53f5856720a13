"""The one interface every recruiter backend implements.

A backend turns what a participant's browser brings on arrival into a
participant id (raw, for paying and blocking) plus the recruiter's own ids, and
tells the completion page how to hand the work back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from experiments.models import Session, Study


class ArrivalRefused(Exception):
    """The arrival cannot start a session (for example an MTurk preview); the message says why."""


@dataclass(frozen=True)
class Arrival:
    participant_id: str
    external: dict[str, Any] = field(default_factory=dict)


class Recruiter(Protocol):
    name: str

    def arrival(self, study: "Study", data: dict[str, Any]) -> Arrival:
        """Validate the source-specific fields of POST /sessions; raise ArrivalRefused or ValueError."""

    def hand_back(self, session: "Session") -> dict[str, Any]:
        """What the completion page needs: a code, a redirect, or a form to post."""

    def session_started(self, session: "Session") -> None:
        """Called inside the transaction that created the session: record the recruiter's side.

        Calls to the recruiter itself are queued with transaction.on_commit,
        so a rolled-back start never reaches MTurk or Prolific.
        """


_BACKENDS: dict[str, Recruiter] = {}


def register(backend: Recruiter) -> Recruiter:
    _BACKENDS[backend.name] = backend
    return backend


def backend_for(source: str) -> Recruiter:
    try:
        return _BACKENDS[source]
    except KeyError:
        raise ValueError(
            f"unknown source {source!r}; expected one of {', '.join(sorted(_BACKENDS))}"
        ) from None
