"""Reads: who took part, how far recruitment is, what it costs, and what paying would do (dry run)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum

from experiments.models import Session, SessionCheck, Study
from recruitment import budget
from recruitment.models import HIT, Assignment, Payment, Recruitment
from recruitment.mturk.client import WORKER_SITES

PROLIFIC_AWAITING_REVIEW = "AWAITING REVIEW"
PROLIFIC_APPROVED = "APPROVED"


def linked_study_ids(study: Study) -> list[int]:
    """The study and every study linked to it (same LinkGroup)."""
    group_id = Recruitment.objects.filter(study=study).values_list("group_id", flat=True).first()
    if group_id is None:
        return [study.pk]
    linked = Recruitment.objects.filter(group_id=group_id).values_list("study_id", flat=True)
    return sorted({study.pk, *linked})


def has_taken_part(study: Study, participant_id: str) -> bool:
    """Whether this raw participant id has a session in the study or in a study linked to it."""
    studies = linked_study_ids(study)
    return Session.objects.filter(study_id__in=studies, participant_id=participant_id).exists()


def recruited_sessions(recruitment: Recruitment) -> QuerySet[Session]:
    """The study's sessions from its recruiter; for MTurk only those of the marketplace it runs on,
    so that sandbox trials never count toward a live target."""
    sessions = Session.objects.filter(study_id=recruitment.study_id, source=recruitment.backend)
    if recruitment.backend == Study.Recruiter.MTURK:
        sessions = sessions.filter(external__turk_submit_to=WORKER_SITES[recruitment.sandbox])
    return sessions


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
        needed=budget.sessions_needed(recruitment.study),
        passing=completed.filter(passed=True).count(),
        failing=completed.filter(passed=False).count(),
        unchecked=completed.filter(passed__isnull=True).count(),
        working=max(0, sum(hit.pending for hit in created) - finished_unsubmitted),
        open_places=sum(hit.available for hit in created if hit.is_open(now)),
        planned=sum(hit.max_assignments for hit in hits if hit.state == HIT.State.PENDING),
    )


def cost_estimate(recruitment: Recruitment) -> budget.CostEstimate:
    sessions = budget.sessions_needed(recruitment.study)
    if recruitment.backend == Study.Recruiter.PROLIFIC:
        return budget.estimate_prolific_cost(
            sessions=sessions,
            reward=recruitment.reward,
            over_recruitment=recruitment.over_recruitment,
            bonus=recruitment.bonus_passing,
        )
    return budget.estimate_mturk_cost(
        sessions=sessions,
        reward=recruitment.reward,
        assignments_per_hit=recruitment.hit_size,
        over_recruitment=recruitment.over_recruitment,
        bonus=recruitment.bonus_passing,
    )


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
        .exclude(study__recruiter=Study.Recruiter.LOCAL)
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


def _decisions(
    recruitment: Recruitment,
    *,
    external_id: str,
    worker_id: str,
    session: Session | None,
    reviewable: bool,
    sandbox: bool,
    done_kinds: set[str],
) -> list[PlannedPayment]:
    """Approve everyone (as IMI did) unless the study rejects failing sessions; bonus who passed."""
    passed = session.passed if session else None
    common = dict(
        external_id=external_id,
        worker_id=worker_id,
        session_id=session.pk if session else None,
        sandbox=sandbox,
        why=check_summary(session),
    )
    items = []
    if reviewable and not done_kinds & {Payment.Kind.APPROVE, Payment.Kind.REJECT}:
        if recruitment.reject_failing and passed is False:
            items.append(
                PlannedPayment(
                    kind=Payment.Kind.REJECT,
                    amount=Decimal("0.00"),
                    message=recruitment.rejection_feedback,
                    rejection_category=recruitment.rejection_category,
                    **common,
                )
            )
        else:
            items.append(
                PlannedPayment(
                    kind=Payment.Kind.APPROVE,
                    amount=recruitment.reward,
                    message="",
                    rejection_category="",
                    **common,
                )
            )
    if recruitment.bonus_passing > 0 and passed is True and Payment.Kind.BONUS not in done_kinds:
        items.append(
            PlannedPayment(
                kind=Payment.Kind.BONUS,
                amount=recruitment.bonus_passing,
                message=recruitment.bonus_reason,
                rejection_category="",
                **common,
            )
        )
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
    if recruitment.backend == Study.Recruiter.MTURK:
        assignments = (
            recruitment.assignments.filter(
                status__in=[Assignment.Status.SUBMITTED, Assignment.Status.APPROVED]
            )
            .select_related("session", "hit")
            .order_by("pk")
        )
        for assignment in assignments:
            items += _decisions(
                recruitment,
                external_id=assignment.assignment_id,
                worker_id=assignment.worker_id,
                session=assignment.session,
                reviewable=assignment.status == Assignment.Status.SUBMITTED,
                sandbox=assignment.hit.sandbox if assignment.hit else recruitment.sandbox,
                done_kinds=ledger.get(assignment.assignment_id, set()),
            )
    elif recruitment.backend == Study.Recruiter.PROLIFIC:
        submissions = (
            recruitment.submissions.filter(status__in=[PROLIFIC_AWAITING_REVIEW, PROLIFIC_APPROVED])
            .select_related("session")
            .order_by("pk")
        )
        for submission in submissions:
            items += _decisions(
                recruitment,
                external_id=submission.submission_id,
                worker_id=submission.participant_id,
                session=submission.session,
                reviewable=submission.status == PROLIFIC_AWAITING_REVIEW,
                sandbox=False,
                done_kinds=ledger.get(submission.submission_id, set()),
            )
    return PaymentPlan(items=tuple(items))


def ledger_summary(recruitment: Recruitment) -> list[dict]:
    """One line per kind and status: how many ledger rows and how much money."""
    return list(
        recruitment.payments.values("kind", "status")
        .annotate(rows=Count("pk"), amount=Sum("amount"))
        .order_by("kind", "status")
    )
