"""What the participant workflow asks of a study's recruiter, and the one registry of recruiters.

The workflow calls a recruiter when a participant's browser arrives (is it a
preview? who is it? did they take part already?), when their session starts,
and when the finished work goes back. The recruiters themselves live in the
recruitment app, which registers them when Django starts; this module knows
none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from experiments.models import Session, Study


class ArrivalRefused(Exception):
    """The arrival cannot start a session (for example an MTurk preview); the message says why.

    reason names the kind of refusal for the counts the admin shows (StartRefusal.Reason).
    """

    def __init__(self, message: str, reason: str = "recruiter") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Arrival:
    participant_id: str  # raw, kept for paying and blocking only
    # The recruiter's own ids, kept on the session: resuming it takes the same ones, which only the
    # participant has (MTurk's assignment, Prolific's session), not just their participant id.
    external: dict[str, Any] = field(default_factory=dict)
    signed: bool = False  # from a link the platform signed: exempt from the per-address limits


@dataclass(frozen=True)
class Terms:
    """What the recruiter pays and on what terms, as participants are told before they start."""

    pay: str  # e.g. "$2.79 per completed task"; blank where the recruiter does not pay
    payment: str  # the payment policy: who is paid, and whether failing the checks costs the pay


@dataclass(frozen=True)
class Spend:
    """Money spent or committed on a study's recruitment, and its budget (fees included)."""

    spent: Decimal
    budget: Decimal
    currency: str


class Recruiter(Protocol):
    name: str  # stored in Study.recruiter and Session.source
    title: str  # the choice shown in the admin
    label: str  # where participants come from, as told to those who arrive another way
    # A field of POST /sessions -> the URL query parameter the recruiter puts on the study link.
    url_params: Mapping[str, str]

    def is_preview(self, query: Mapping[str, str]) -> bool:
        """Whether the study link's query is a look at the task before taking it (no session)."""

    def arrival(self, study: Study, data: dict[str, Any]) -> Arrival:
        """Validate the recruiter's fields of POST /sessions; raise ArrivalRefused or ValueError."""

    def has_taken_part(self, study: Study, participant_id: str) -> bool:
        """Whether this raw participant id has a session in the study or in a study linked to it."""

    def prepare(self, study: Study) -> None:
        """Create what the recruiter keeps for the study, so that it can be reviewed before anyone arrives."""

    def before_holding(self, session: Session) -> None:
        """Called when the participant consents, before any unit is held for them: confirm with the
        recruiter's service, where it can tell, that they really are taking part; raise ArrivalRefused."""

    def session_started(self, session: Session) -> None:
        """Called inside the transaction that created the session: record the recruiter's side.

        Calls to the recruiter's service are queued with transaction.on_commit,
        so that a rolled-back start never reaches it.
        """

    def hand_back(self, session: Session) -> dict[str, Any]:
        """What the completion page needs: a code, a redirect, or a form to post."""

    def terms(self, study: Study) -> Terms:
        """The pay and payment policy the consent page and the preview state."""

    def spend(self, study: Study) -> Spend | None:
        """What the study's recruitment has spent against its budget; None where the recruiter pays nothing."""


# In registration order: the participant page tries the recruiters' URL parameters in this order.
_REGISTRY: dict[str, Recruiter] = {}


def register(recruiter: Recruiter) -> Recruiter:
    """Add a recruiter; registering a name again replaces it in place (Django may run ready() twice)."""
    _REGISTRY[recruiter.name] = recruiter
    return recruiter


def recruiter_for(name: str) -> Recruiter:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown source {name!r}; expected one of {', '.join(sorted(_REGISTRY))}") from None


def registered() -> list[Recruiter]:
    return list(_REGISTRY.values())


def recruiter_choices() -> list[tuple[str, str]]:
    """The choices of the model fields that name a recruiter; Django calls it when it needs them."""
    return [(recruiter.name, recruiter.title) for recruiter in _REGISTRY.values()]
