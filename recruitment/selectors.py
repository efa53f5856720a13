"""Reads: who took part, how far recruitment is, what it costs, and what paying would do (dry run)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from experiments.models import Session, SessionCheck
from recruitment import budget
from recruitment.backends import Work, backend_for
from recruitment.models import HIT, Assignment, Payment, Recruitment

PROLIFIC_AWAITING_REVIEW = "AWAITING REVIEW"
PROLIFIC_APPROVED = "APPROVED"


def recruited_sessions(recruitment: Recruitment) -> QuerySet[Session]:
    """The study's sessions from its recruiter, which count toward its target and get paid."""
    return backend_for(recruitment.backend).recruited_sessions(recruitment)


@dataclass(frozen=True)
class Progress:
    needed: int  # passing sessions the target needs
    passing: int
    failing: int
    unchecked: int  # completed, checks not computed yet
    working: int  # MTurk: accepted, not yet submitted
    open_places: int  # MTurk: still available on open HITs
    planned: int  # MTurk: on HITs written but not yet confirmed by MTurk

    @property
    def expected(self) -> int:
        """Passing sessions to expect if everyone in flight passes."""
        return self.passing + self.unchecked + self.working + self.open_places + self.planned

    @property
    def shortfall(self) -> int:
        return max(0, self.needed - self.expected)

    @property
    def target_met(self) -> bool:
        return self.passing >= self.needed


def env_hits(recruitment: Recruitment) -> QuerySet[HIT]:
    return recruitment.hits.filter(sandbox=recruitment.sandbox)


def progress(recruitment: Recruitment, now: datetime) -> Progress:
    completed = recruited_sessions(recruitment).filter(status=Session.Status.COMPLETED)
    hits = list(env_hits(recruitment))
    created = [hit for hit in hits if hit.state == HIT.State.CREATED]
    # MTurk still counts as pending a worker who finished the session but has not yet
    # submitted the assignment; that session is already counted as completed.
    finished_unsubmitted = Assignment.objects.filter(
        hit__in=created, status=Assignment.Status.ACCEPTED, session__status=Session.Status.COMPLETED
    ).count()
    return Progress(
        needed=recruitment.study.sessions_needed,
        passing=completed.filter(passed=True).count(),
        failing=completed.filter(passed=False).count(),
        unchecked=completed.filter(passed__isnull=True).count(),
        working=max(0, sum(hit.pending for hit in created) - finished_unsubmitted),
        open_places=sum(hit.available for hit in created if hit.is_open(now)),
        planned=sum(hit.max_assignments for hit in hits if hit.state == HIT.State.PENDING),
    )


def cost_estimate(recruitment: Recruitment) -> budget.CostEstimate:
    return backend_for(recruitment.backend).cost_estimate(recruitment)


def budget_cap(recruitment: Recruitment) -> Decimal:
    if recruitment.budget_cap is not None:
        return recruitment.budget_cap
    return cost_estimate(recruitment).total


def committed_spend(recruitment: Recruitment, now: datetime) -> Decimal:
    """MTurk money spent or promised: every place on an open HIT, every place taken on a closed
    one, and every bonus in the ledger that has not failed, fees included."""
    total = Decimal("0.00")
    for hit in env_hits(recruitment).exclude(state=HIT.State.FAILED):
        if hit.state == HIT.State.PENDING or hit.is_open(now):
            places = hit.max_assignments
        else:
            places = hit.completed + hit.pending
        total += places * budget.assignment_cost(recruitment.reward, hit.max_assignments)
    bonuses = recruitment.payments.filter(kind=Payment.Kind.BONUS, sandbox=recruitment.sandbox).exclude(
        status=Payment.Status.FAILED
    )
    for amount in bonuses.values_list("amount", flat=True):
        total += budget.bonus_cost(amount)
    return total


def recruitments_to_sync() -> QuerySet[Recruitment]:
    """Launched recruitments still recruiting, or whose assignments are not all settled yet."""
    unsettled = Q(assignments__status__in=[Assignment.Status.ACCEPTED, Assignment.Status.SUBMITTED]) | Q(
        submissions__status__in=["ACTIVE", "RESERVED", PROLIFIC_AWAITING_REVIEW]
    )
    return (
        Recruitment.objects.filter(launched_at__isnull=False)
        .filter(Q(closed_at__isnull=True) | unsettled)
        .exclude(study__recruiter="local")  # nothing to sync: a study switched to a local link after its launch
        .distinct()
    )


def failed_check_names(session: Session) -> list[str]:
    return list(SessionCheck.objects.filter(session=session, passed=False).values_list("name", flat=True))


@dataclass(frozen=True)
class PlannedPayment:
    kind: str
    external_id: str
    worker_id: str
    session_id: int | None
    amount: Decimal
    message: str
    rejection_category: str
    sandbox: bool
    why: str


@dataclass(frozen=True)
class PaymentPlan:
    items: tuple[PlannedPayment, ...]

    @property
    def digest(self) -> str:
        """Identifies the plan, so that what is confirmed is exactly what the dry run showed."""
        rows = [{**asdict(item), "amount": str(item.amount)} for item in self.items]
        return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]

    def count(self, kind: str) -> int:
        return sum(1 for item in self.items if item.kind == kind)

    @property
    def bonus_total(self) -> Decimal:
        return sum((item.amount for item in self.items if item.kind == Payment.Kind.BONUS), Decimal("0.00"))


def check_summary(session: Session | None) -> str:
    """The session's verdict in a few words, naming the checks it failed."""
    if session is None:
        return "no session on record"
    if session.passed is None:
        return "checks not computed"
    if session.passed:
        return "passed the checks"
    return "failed: " + ", ".join(failed_check_names(session))


def _decisions(recruitment: Recruitment, work: Work, done_kinds: set[str]) -> list[PlannedPayment]:
    """Approve everyone (as IMI did) unless the study rejects failing sessions; bonus who passed."""
    session = work.session
    passed = session.passed if session else None
    why = check_summary(session)

    def planned(kind: str, amount: Decimal, message: str, rejection_category: str = "") -> PlannedPayment:
        return PlannedPayment(
            kind=kind,
            external_id=work.external_id,
            worker_id=work.worker_id,
            session_id=session.pk if session else None,
            amount=amount,
            message=message,
            rejection_category=rejection_category,
            sandbox=work.sandbox,
            why=why,
        )

    items = []
    if work.reviewable and not done_kinds & {Payment.Kind.APPROVE, Payment.Kind.REJECT}:
        if recruitment.reject_failing and passed is False:
            items.append(
                planned(
                    Payment.Kind.REJECT,
                    Decimal("0.00"),
                    recruitment.rejection_feedback,
                    recruitment.rejection_category,
                )
            )
        else:
            items.append(planned(Payment.Kind.APPROVE, recruitment.reward, ""))
    if recruitment.bonus_passing > 0 and passed is True and Payment.Kind.BONUS not in done_kinds:
        items.append(planned(Payment.Kind.BONUS, recruitment.bonus_passing, recruitment.bonus_reason))
    return items


def _ledger_kinds(recruitment: Recruitment) -> dict[str, set[str]]:
    kinds: dict[str, set[str]] = {}
    for external_id, kind in recruitment.payments.values_list("external_id", "kind"):
        kinds.setdefault(external_id, set()).add(kind)
    return kinds


def plan_payments(recruitment: Recruitment) -> PaymentPlan:
    """What paying now would do, without doing it: the dry run shown before any payment."""
    ledger = _ledger_kinds(recruitment)
    items: list[PlannedPayment] = []
    for work in backend_for(recruitment.backend).payable(recruitment):
        items += _decisions(recruitment, work, ledger.get(work.external_id, set()))
    return PaymentPlan(items=tuple(items))


def ledger_summary(recruitment: Recruitment) -> list[dict[str, Any]]:
    """One line per kind and status: how many ledger rows and how much money."""
    return list(
        recruitment.payments.values("kind", "status")
        .annotate(rows=Count("pk"), amount=Sum("amount"))
        .order_by("kind", "status")
    )
