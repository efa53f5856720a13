"""MTurk as a recruiter: a worker's arrival and hand-back, and MTurk's side of launching, syncing and paying.

The work itself is in recruitment.mturk.services; this class is what the rest
of the platform calls.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType, ModuleType
from typing import Any, ClassVar
from urllib.parse import urlparse

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from experiments.models import Session, Study
from experiments.recruiters import Arrival, ArrivalRefused
from recruitment import budget, selectors, tasks
from recruitment.backends import ServiceBackend, Work, recruitment_for
from recruitment.models import HIT, Assignment, Payment, Recruitment
from recruitment.mturk import services
from recruitment.mturk.client import WORKER_SITES
from recruitment.mturk.inlines import AssignmentInline, HITInline

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


class MTurkRecruiter(ServiceBackend):
    name = "mturk"
    title = label = "Amazon Mechanical Turk"
    # MTurk appends these to the ExternalQuestion's URL.
    url_params: Mapping[str, str] = MappingProxyType(
        {"assignment_id": "assignmentId", "hit_id": "hitId", "worker_id": "workerId", "turk_submit_to": "turkSubmitTo"}
    )
    admin_inlines = (HITInline, AssignmentInline)
    service: ClassVar[ModuleType] = services
    currency = "USD"

    # The participant side.

    def is_preview(self, query: Mapping[str, str]) -> bool:
        return query.get("assignmentId") == PREVIEW_ASSIGNMENT_ID

    def arrival(self, study: Study, data: dict[str, Any]) -> Arrival:
        if str(data.get("assignment_id") or "").strip() == PREVIEW_ASSIGNMENT_ID:
            raise ArrivalRefused("This is a preview: accept the HIT to start the study.")
        assignment_id = _field(data, "assignment_id", ENTITY_ID, "an MTurk assignment id")
        hit_id = _field(data, "hit_id", ENTITY_ID, "an MTurk HIT id")
        worker_id = _field(data, "worker_id", WORKER_ID, "an MTurk worker id")
        if not str(data.get("turk_submit_to") or "").strip():
            raise ValueError("turk_submit_to: missing; MTurk passes it to the page as a URL parameter")
        site = worker_site(str(data["turk_submit_to"]))
        recruitment = getattr(study, "recruitment", None)
        if recruitment and recruitment.launched_at:
            if site != WORKER_SITES[recruitment.sandbox]:
                where = "sandbox" if recruitment.sandbox else "live marketplace"
                raise ArrivalRefused(f"This study runs on the MTurk {where}; this HIT comes from the other one.")
            # Made-up ids are refused: the HIT must be one the platform posted for this study.
            if not recruitment.hits.filter(hit_id=hit_id).exists():
                raise ArrivalRefused("This HIT does not belong to this study: please open the study from its HIT.")
        return Arrival(
            participant_id=worker_id,
            external={
                "assignment_id": assignment_id,
                "hit_id": hit_id,
                "worker_id": worker_id,
                "turk_submit_to": site,
            },
        )

    def hand_back(self, session: Session) -> dict[str, Any]:
        site = worker_site(str(session.external.get("turk_submit_to", "")))
        return {
            "submit_url": f"{site}/mturk/externalSubmit",
            "fields": {"assignmentId": session.external["assignment_id"]},
        }

    def before_holding(self, session: Session) -> None:
        """Live, MTurk must show the HIT with at least as many accepted assignments in progress as this
        study has sessions holding units on it (GetAssignment cannot see an assignment before it is
        submitted, so the HIT's pending count is what confirms it)."""
        recruitment = getattr(session.study, "recruitment", None)
        if recruitment is not None and recruitment.launched_at and not recruitment.sandbox:
            services.confirm_in_progress(session)

    def session_started(self, session: Session) -> None:
        """Record the assignment and, once the session is committed, grant the took-part
        qualification so that MTurk stops offering this group's HITs to the worker."""
        recruitment = recruitment_for(session.study)
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

    # Launching, running and paying.

    def check_launch(self, recruitment: Recruitment, *, sandbox: bool) -> None:
        """Both marketplaces can be launched; boto3 finds the credentials when the sync first calls."""

    def can_resend_payment(self, payment: Payment) -> bool:
        # Approving or rejecting twice is refused, not repeated; a bonus carries its token,
        # and past the token's 24 hours verify_payment has just looked for it in ListBonusPayments.
        return True

    # Reads.

    def recruited_sessions(self, recruitment: Recruitment) -> QuerySet[Session]:
        """Only those of the marketplace it runs on, so that sandbox trials never count toward a live target."""
        sessions = super().recruited_sessions(recruitment)
        return sessions.filter(external__turk_submit_to=WORKER_SITES[recruitment.sandbox])

    def spent(self, recruitment: Recruitment) -> Decimal:
        # Every place on an open HIT counts as spent: MTurk holds its reward and fee until the HIT ends.
        return selectors.committed_spend(recruitment, timezone.now())

    def cost_estimate(self, recruitment: Recruitment) -> budget.CostEstimate:
        return budget.estimate_mturk_cost(
            sessions=recruitment.study.sessions_needed,
            reward=recruitment.reward,
            assignments_per_hit=recruitment.hit_size,
            over_recruitment=recruitment.over_recruitment,
            bonus=recruitment.bonus_passing,
        )

    def payable(self, recruitment: Recruitment) -> list[Work]:
        """Submitted assignments to review, and approved ones that may still get a bonus."""
        assignments = (
            recruitment.assignments.filter(status__in=[Assignment.Status.SUBMITTED, Assignment.Status.APPROVED])
            .select_related("session", "hit")
            .order_by("pk")
        )
        return [
            Work(
                external_id=assignment.assignment_id,
                worker_id=assignment.worker_id,
                session=assignment.session,
                reviewable=assignment.status == Assignment.Status.SUBMITTED,
                sandbox=assignment.hit.sandbox if assignment.hit else recruitment.sandbox,
            )
            for assignment in assignments
        ]

    def marketplace(self, recruitment: Recruitment) -> str:
        return "sandbox" if recruitment.sandbox else "live"

    def committed_spend(self, recruitment: Recruitment, now: datetime) -> Decimal:
        return selectors.committed_spend(recruitment, now)
