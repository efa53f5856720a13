"""MTurk as a recruiter: what a worker's browser brings on arrival and how the assignment goes back."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from django.db import transaction

from recruitment import services, tasks
from recruitment.base import Arrival, ArrivalRefused, register
from recruitment.models import HIT, Assignment
from recruitment.mturk.client import WORKER_SITES

if TYPE_CHECKING:
    from experiments.models import Session, Study

# What MTurk puts in assignmentId while a worker only previews the HIT.
PREVIEW_ASSIGNMENT_ID = "ASSIGNMENT_ID_NOT_AVAILABLE"
ENTITY_ID = re.compile(r"^[A-Z0-9]{1,64}$")
WORKER_ID = re.compile(r"^A[A-Z0-9]{1,63}$")


def worker_site(turk_submit_to: str) -> str:
    """The MTurk worker site a turkSubmitTo names; anything else is refused, because the
    completion page posts the assignment (and its id) there."""
    parsed = urlparse(turk_submit_to.strip())
    site = f"{parsed.scheme}://{parsed.netloc}"
    if site not in WORKER_SITES.values() or parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        allowed = " or ".join(sorted(WORKER_SITES.values()))
        raise ValueError(f"turk_submit_to: must be {allowed}, not {turk_submit_to!r}")
    return site


def _field(data: dict[str, Any], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = str(data.get(name) or "").strip()
    if not value:
        raise ValueError(f"{name}: missing; MTurk passes it to the page as a URL parameter")
    if not pattern.match(value):
        raise ValueError(f"{name}: {value!r} is not {what}")
    return value


class MTurkRecruiter:
    name = "mturk"

    def arrival(self, study: "Study", data: dict[str, Any]) -> Arrival:
        if str(data.get("assignment_id") or "").strip() == PREVIEW_ASSIGNMENT_ID:
            raise ArrivalRefused("This is a preview: accept the HIT to start the study.")
        assignment_id = _field(data, "assignment_id", ENTITY_ID, "an MTurk assignment id")
        hit_id = _field(data, "hit_id", ENTITY_ID, "an MTurk HIT id")
        worker_id = _field(data, "worker_id", WORKER_ID, "an MTurk worker id")
        if not str(data.get("turk_submit_to") or "").strip():
            raise ValueError("turk_submit_to: missing; MTurk passes it to the page as a URL parameter")
        site = worker_site(str(data["turk_submit_to"]))
        recruitment = getattr(study, "recruitment", None)
        if recruitment and recruitment.launched_at and site != WORKER_SITES[recruitment.sandbox]:
            where = "sandbox" if recruitment.sandbox else "live marketplace"
            raise ArrivalRefused(f"This study runs on the MTurk {where}; this HIT comes from the other one.")
        return Arrival(
            participant_id=worker_id,
            external={
                "assignment_id": assignment_id,
                "hit_id": hit_id,
                "worker_id": worker_id,
                "turk_submit_to": site,
            },
        )

    def hand_back(self, session: "Session") -> dict[str, Any]:
        site = worker_site(str(session.external.get("turk_submit_to", "")))
        return {
            "submit_url": f"{site}/mturk/externalSubmit",
            "fields": {"assignmentId": session.external["assignment_id"]},
        }

    def session_started(self, session: "Session") -> None:
        """Record the assignment and, once the session is committed, grant the took-part
        qualification so that MTurk stops offering this group's HITs to the worker."""
        recruitment = services.recruitment_for(session.study)
        assignment, _ = Assignment.objects.get_or_create(
            assignment_id=session.external["assignment_id"],
            worker_id=session.participant_id,
            defaults={
                "recruitment": recruitment,
                "hit": HIT.objects.filter(hit_id=session.external.get("hit_id")).first(),
                "accepted_at": session.created_at,
            },
        )
        assignment.session = session
        assignment.save(update_fields=["session", "updated_at"])
        # Robust: a grant that cannot be queued (or, without a broker, fails in-process) must not
        # fail the worker's arrival; the next sync grants what is missing.
        transaction.on_commit(lambda: tasks.grant_took_part.delay(assignment.pk), robust=True)


register(MTurkRecruiter())
