"""MTurk writes: the took-part qualification, the HIT type, HITs, sync and top-up, payments, reconcile.

Every call goes through recruitment.mturk.client.call, so MTurk's errors
arrive as recruitment.errors; every row that stands for something created on
MTurk (a HIT, a payment) is written before the call that creates it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from django.utils import timezone

from experiments.assignment import end_unfinished
from experiments.models import Session, Study
from experiments.recruiters import ArrivalRefused
from recruitment import budget, selectors
from recruitment.conf import public_base_url
from recruitment.errors import ConfigurationError, ServiceRefused, TransientError
from recruitment.models import HIT, Assignment, LinkGroup, Payment, Recruitment, TookPartQualification
from recruitment.mturk.client import WORKER_SITES, call, get_client
from recruitment.tokens import make_token

logger = logging.getLogger(__name__)

# MTurk's system qualification types (§5).
LOCALE = "00000000000000000071"
NUMBER_HITS_APPROVED = "00000000000000000040"
PERCENT_ASSIGNMENTS_APPROVED = "000000000000000000L0"
# Workers who do not qualify do not even see the HIT in search.
GUARDED = "DiscoverPreviewAndAccept"
QUESTION_SCHEMA = (
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd"
)
# MTurk expires a HIT at once when told to expire it at a time in the past.
EXPIRE_NOW = datetime(2015, 1, 1, tzinfo=UTC)
# Adding assignments to a HIT about to expire would leave them unused.
MIN_LIFETIME_TO_EXTEND = timedelta(hours=1)
# MTurk remembers a UniqueRequestToken for 24 hours; past that, resending could create a second HIT.
TOKEN_MEMORY = timedelta(hours=24)
PAGE_SIZE = 100
HIT_ID = re.compile(r"\b[A-Z0-9]{30}\b")
STATUSES = {
    "Submitted": Assignment.Status.SUBMITTED,
    "Approved": Assignment.Status.APPROVED,
    "Rejected": Assignment.Status.REJECTED,
}
SESSION_ENDED = {
    Assignment.Status.RETURNED: Session.Status.RETURNED,
    Assignment.Status.ABANDONED: Session.Status.ABANDONED,
}
# What MTurk shows for an assignment once an approve or reject row is done (keyed by Payment.kind).
REVIEWED: dict[str, str] = {Payment.Kind.APPROVE: "Approved", Payment.Kind.REJECT: "Rejected"}


def study_url(study: Study) -> str:
    """The participant page MTurk frames; MTurk appends assignmentId, hitId, workerId, turkSubmitTo."""
    return f"{public_base_url(require_https=True)}/s/{study.slug}/"


def external_question(url: str, frame_height: int) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ExternalQuestion xmlns="{QUESTION_SCHEMA}">'
        f"<ExternalURL>{escape(url)}</ExternalURL>"
        f"<FrameHeight>{frame_height}</FrameHeight>"
        "</ExternalQuestion>"
    )


def qualification_requirements(recruitment: Recruitment, took_part_id: str) -> list[dict[str, Any]]:
    """§5's worker filters (live only: sandbox worker accounts have no approved HITs, so the
    filters would hide the HIT from the researchers trying it) plus "has not taken part"."""
    requirements: list[dict[str, Any]] = []
    if not recruitment.sandbox:
        requirements += [
            {
                "QualificationTypeId": LOCALE,
                "Comparator": "In",
                "LocaleValues": [{"Country": country} for country in recruitment.locales],
                "ActionsGuarded": GUARDED,
            },
            {
                "QualificationTypeId": NUMBER_HITS_APPROVED,
                "Comparator": "GreaterThanOrEqualTo",
                "IntegerValues": [recruitment.min_hits_approved],
                "ActionsGuarded": GUARDED,
            },
            {
                "QualificationTypeId": PERCENT_ASSIGNMENTS_APPROVED,
                "Comparator": "GreaterThanOrEqualTo",
                "IntegerValues": [recruitment.min_approval_rate],
                "ActionsGuarded": GUARDED,
            },
        ]
    requirements.append(
        {"QualificationTypeId": took_part_id, "Comparator": "DoesNotExist", "ActionsGuarded": GUARDED}
    )
    return requirements


def link_group(recruitment: Recruitment) -> LinkGroup:
    """The group whose took-part qualification the HITs carry; launching sets it."""
    if recruitment.group is None:
        raise ConfigurationError(
            f"Study {recruitment.study.slug} has no group of linked studies: choose one, or launch it again."
        )
    return recruitment.group


def took_part_qualification_name(recruitment: Recruitment) -> str:
    return f"psyplatform took part: {link_group(recruitment).name}"


def _find_qualification_type(client: Any, name: str) -> str | None:
    response = call(
        client,
        "list_qualification_types",
        Query=name,
        MustBeRequestable=False,
        MustBeOwnedByCaller=True,
        MaxResults=PAGE_SIZE,
    )
    for qualification in response.get("QualificationTypes", []):
        if qualification["Name"] == name:
            return qualification["QualificationTypeId"]
    return None


def ensure_took_part_qualification(recruitment: Recruitment, client: Any) -> str:
    """The group's took-part qualification type on this marketplace, created the first time."""
    group = link_group(recruitment)
    existing = group.qualifications.filter(sandbox=recruitment.sandbox).first()
    if existing:
        return existing.qualification_type_id
    name = took_part_qualification_name(recruitment)
    try:
        response = call(
            client,
            "create_qualification_type",
            Name=name,
            Keywords="psyplatform",
            Description="Granted to workers who took part in one of a group of linked studies, "
            "so that they are not offered the others.",
            QualificationTypeStatus="Active",
        )
        type_id = response["QualificationType"]["QualificationTypeId"]
    except ServiceRefused:
        # Names are unique per requester: an earlier attempt may have created it and then died.
        type_id = _find_qualification_type(client, name)
        if type_id is None:
            raise
    TookPartQualification.objects.get_or_create(
        group=group, sandbox=recruitment.sandbox, defaults={"qualification_type_id": type_id}
    )
    return type_id


def ensure_hit_type(recruitment: Recruitment, client: Any) -> str:
    """CreateHITType returns the same id for the same properties, so this is safe to repeat."""
    if recruitment.hit_type_id:
        return recruitment.hit_type_id
    took_part = ensure_took_part_qualification(recruitment, client)
    response = call(
        client,
        "create_hit_type",
        AutoApprovalDelayInSeconds=recruitment.auto_approval_delay_s,
        AssignmentDurationInSeconds=recruitment.assignment_duration_s,
        Reward=f"{recruitment.reward:.2f}",
        Title=recruitment.title,
        Keywords=recruitment.keywords,
        Description=recruitment.description,
        QualificationRequirements=qualification_requirements(recruitment, took_part),
    )
    recruitment.hit_type_id = response["HITTypeId"]
    recruitment.save(update_fields=["hit_type_id"])
    return recruitment.hit_type_id


def _apply_hit(hit: HIT, data: dict[str, Any], now: datetime) -> None:
    hit.hit_id = data["HITId"]
    hit.mturk_status = data.get("HITStatus", "")
    hit.max_assignments = data.get("MaxAssignments", hit.max_assignments)
    hit.expires_at = data.get("Expiration", hit.expires_at)
    hit.available = data.get("NumberOfAssignmentsAvailable", hit.available)
    hit.pending = data.get("NumberOfAssignmentsPending", hit.pending)
    hit.completed = data.get("NumberOfAssignmentsCompleted", hit.completed)
    hit.refreshed_at = now


def confirm_in_progress(session: Session) -> None:
    """Refuse a session whose HIT MTurk does not show with room for it among the accepted assignments
    in progress. MTurk being unreachable lets the worker go on (the sync settles the assignment later):
    a real worker must not be turned away by an outage."""
    hit_id = str(session.external.get("hit_id", ""))
    try:
        hit = call(get_client(sandbox=False), "get_hit", HITId=hit_id)["HIT"]
    except TransientError as exc:
        logger.warning("MTurk unreachable to confirm session %s on HIT %s: %s", session.pk, hit_id, exc)
        return
    except ServiceRefused as exc:
        raise ArrivalRefused(f"Mechanical Turk does not know this HIT: {exc}") from exc
    holding = (
        Session.objects.filter(
            study_id=session.study_id,
            source=session.source,
            status=Session.Status.ACTIVE,
            consented_at__isnull=False,
            external__hit_id=hit_id,
        )
        .exclude(pk=session.pk)
        .count()
    )
    if holding + 1 > int(hit.get("NumberOfAssignmentsPending", 0)):
        raise ArrivalRefused(
            "Mechanical Turk does not show this assignment as accepted: please accept the HIT first."
        )


def refresh_hit(hit: HIT, client: Any) -> None:
    _apply_hit(hit, call(client, "get_hit", HITId=hit.hit_id)["HIT"], timezone.now())
    hit.save()


def post_hit(hit: HIT, recruitment: Recruitment, client: Any) -> None:
    """Send CreateHITWithHITType for a written HIT row; repeating it with the row's token is safe."""
    now = timezone.now()
    if now - hit.created_at > TOKEN_MEMORY:
        hit.state = HIT.State.FAILED
        hit.last_error = (
            "MTurk never confirmed this HIT and its token has expired, so it is not sent again: "
            f"look on the requester site for a HIT annotated {hit.token!r}."
        )
        hit.save(update_fields=["state", "last_error"])
        return
    try:
        response = call(
            client,
            "create_hit_with_hit_type",
            HITTypeId=hit.hit_type_id,
            MaxAssignments=hit.max_assignments,
            LifetimeInSeconds=recruitment.lifetime_s,
            Question=external_question(study_url(recruitment.study), recruitment.frame_height),
            RequesterAnnotation=hit.token,
            UniqueRequestToken=hit.token,
        )
    except ServiceRefused as exc:
        # An earlier attempt created it: MTurk refuses the repeat and names the HIT.
        found = HIT_ID.search(str(exc)) if "alreadyexists" in exc.code.lower() else None
        if found is None:
            hit.state = HIT.State.FAILED
            hit.last_error = str(exc)
            hit.save(update_fields=["state", "last_error"])
            raise
        hit.hit_id = found.group(0)
        hit.state = HIT.State.CREATED
        refresh_hit(hit, client)
        return
    _apply_hit(hit, response["HIT"], now)
    hit.state = HIT.State.CREATED
    hit.last_error = ""
    hit.save()


def create_hit(recruitment: Recruitment, client: Any, size: int) -> HIT:
    # The token numbers the study's HITs, so a retried top-up resends the same HIT.
    number = recruitment.hits.count() + 1
    hit = HIT.objects.create(
        recruitment=recruitment,
        sandbox=recruitment.sandbox,
        hit_type_id=recruitment.hit_type_id,
        token=make_token(recruitment.study.slug, "hit", number),
        max_assignments=size,
        available=size,
    )
    post_hit(hit, recruitment, client)
    return hit


def extend_hit(hit: HIT, client: Any, extra: int) -> None:
    total = hit.max_assignments + extra
    call(
        client,
        "create_additional_assignments_for_hit",
        HITId=hit.hit_id,
        NumberOfAdditionalAssignments=extra,
        UniqueRequestToken=make_token(hit.hit_id, "extend", total),
    )
    hit.max_assignments = total
    hit.available += extra
    hit.save(update_fields=["max_assignments", "available"])


def expire_hit(hit: HIT, client: Any) -> None:
    call(client, "update_expiration_for_hit", HITId=hit.hit_id, ExpireAt=EXPIRE_NOW)
    hit.expires_at = timezone.now()
    hit.save(update_fields=["expires_at"])


def expire_open_hits(recruitment: Recruitment) -> int:
    now = timezone.now()
    open_hits = [hit for hit in selectors.env_hits(recruitment) if hit.is_open(now)]
    if open_hits:
        client = get_client(sandbox=recruitment.sandbox)
        for hit in open_hits:
            expire_hit(hit, client)
    return len(open_hits)


def list_assignments(client: Any, hit_id: str) -> Iterator[dict[str, Any]]:
    """Every submitted, approved or rejected assignment of the HIT, page by page."""
    params: dict[str, Any] = {
        "HITId": hit_id,
        "MaxResults": PAGE_SIZE,
        "AssignmentStatuses": list(STATUSES),
    }
    while True:
        page = call(client, "list_assignments_for_hit", **params)
        yield from page.get("Assignments", [])
        if not page.get("NextToken") or not page.get("Assignments"):
            return
        params["NextToken"] = page["NextToken"]


def list_bonus_payments(client: Any, **selector: str) -> Iterator[dict[str, Any]]:
    params: dict[str, Any] = {**selector, "MaxResults": PAGE_SIZE}
    while True:
        page = call(client, "list_bonus_payments", **params)
        yield from page.get("BonusPayments", [])
        if not page.get("NextToken") or not page.get("BonusPayments"):
            return
        params["NextToken"] = page["NextToken"]


def _session_for(recruitment: Recruitment, assignment_id: str, worker_id: str) -> Session | None:
    return Session.objects.filter(
        study_id=recruitment.study_id,
        source="mturk",
        participant_id=worker_id,
        external__assignment_id=assignment_id,
    ).first()


def record_assignment(recruitment: Recruitment, hit: HIT, data: dict[str, Any]) -> Assignment:
    assignment, _ = Assignment.objects.get_or_create(
        assignment_id=data["AssignmentId"],
        worker_id=data["WorkerId"],
        defaults={"recruitment": recruitment, "accepted_at": data.get("AcceptTime") or timezone.now()},
    )
    assignment.hit = hit
    assignment.status = STATUSES[data["AssignmentStatus"]]
    assignment.submitted_at = data.get("SubmitTime")
    assignment.auto_approval_at = data.get("AutoApprovalTime")
    if assignment.session_id is None:
        assignment.session = _session_for(recruitment, assignment.assignment_id, assignment.worker_id)
    assignment.save()
    return assignment


def settle_unsubmitted(hit: HIT, recruitment: Recruitment, listed: dict[str, str], now: datetime) -> None:
    """Mark returned or abandoned the accepted assignments MTurk no longer holds for their worker.

    ListAssignmentsForHIT shows submitted work only; an assignment that is
    gone was returned (MTurk may hand its id to the next worker) or ran out
    of time. listed maps the assignment ids MTurk listed to their worker.
    """
    duration = timedelta(seconds=recruitment.assignment_duration_s)
    for assignment in hit.assignments.filter(status=Assignment.Status.ACCEPTED):
        if hit.refreshed_at is None or assignment.accepted_at >= hit.refreshed_at:
            continue  # arrived after the HIT's counts were read
        reused = Assignment.objects.filter(
            assignment_id=assignment.assignment_id, accepted_at__gt=assignment.accepted_at
        ).exclude(pk=assignment.pk)
        taken_over = listed.get(assignment.assignment_id, assignment.worker_id) != assignment.worker_id
        taken_over = taken_over or reused.exists()
        out_of_time = now >= assignment.accepted_at + duration
        if not (taken_over or out_of_time or hit.pending == 0):
            continue
        assignment.status = Assignment.Status.ABANDONED if out_of_time else Assignment.Status.RETURNED
        assignment.save(update_fields=["status", "updated_at"])
        if assignment.session_id:
            # The worker cannot come back (they hold the took-part qualification), so their
            # units go back to the pool now rather than at the slot timeout.
            end_unfinished(Session.objects.filter(pk=assignment.session_id), SESSION_ENDED[assignment.status])


def sync_hit(hit: HIT, recruitment: Recruitment, client: Any) -> None:
    refresh_hit(hit, client)
    listed = {}
    for data in list_assignments(client, hit.mturk_id):
        record_assignment(recruitment, hit, data)
        listed[data["AssignmentId"]] = data["WorkerId"]
    settle_unsubmitted(hit, recruitment, listed, timezone.now())


def sandbox_of(assignment: Assignment) -> bool:
    if assignment.hit is not None:
        return assignment.hit.sandbox
    if assignment.session is not None:
        return assignment.session.external.get("turk_submit_to") == WORKER_SITES[True]
    return assignment.recruitment.sandbox


def grant_took_part(assignment: Assignment) -> bool:
    """Give the worker the group's took-part qualification so that MTurk hides the group's HITs
    from them; False when the study was never launched there (nothing to grant)."""
    sandbox = sandbox_of(assignment)
    qualification = TookPartQualification.objects.filter(
        group_id=assignment.recruitment.group_id, sandbox=sandbox
    ).first()
    if qualification is None:
        logger.info("no took-part qualification for %s: study not launched on this marketplace", assignment)
        return False
    call(
        get_client(sandbox=sandbox),
        "associate_qualification_with_worker",
        QualificationTypeId=qualification.qualification_type_id,
        WorkerId=assignment.worker_id,
        IntegerValue=1,
        SendNotification=False,
    )
    assignment.qualified_at = timezone.now()
    assignment.save(update_fields=["qualified_at", "updated_at"])
    return True


def close_if_target_met(recruitment: Recruitment, progress: selectors.Progress) -> bool:
    if progress.target_met and not recruitment.closed_at:
        expire_open_hits(recruitment)
        recruitment.close_for_target(progress.passing, progress.needed)
    return progress.target_met


def top_up(recruitment: Recruitment, client: Any) -> int:
    """Add assignments (to open HITs first, each HIT at most hit_size) until the passing sessions
    plus those in flight reach the target, within the budget cap; returns how many were added."""
    now = timezone.now()
    progress = selectors.progress(recruitment, now)
    if close_if_target_met(recruitment, progress) or not recruitment.is_recruiting or not progress.shortfall:
        return 0
    per_assignment = budget.assignment_cost(recruitment.reward, recruitment.hit_size)
    room = budget.affordable_assignments(
        selectors.budget_cap(recruitment), selectors.committed_spend(recruitment, now), per_assignment
    )
    to_add = min(progress.shortfall, room)
    recruitment.note_budget(cut_short=to_add < progress.shortfall)
    added = 0
    extendable = [
        hit
        for hit in selectors.env_hits(recruitment).filter(state=HIT.State.CREATED)
        if hit.max_assignments < recruitment.hit_size and hit.open_for(now) >= MIN_LIFETIME_TO_EXTEND
    ]
    for hit in extendable:
        extra = min(to_add - added, recruitment.hit_size - hit.max_assignments)
        if extra <= 0:
            break
        extend_hit(hit, client, extra)
        added += extra
    while added < to_add:
        size = min(to_add - added, recruitment.hit_size)
        create_hit(recruitment, client, size)
        added += size
    return added


def sync(recruitment: Recruitment) -> None:
    """Read every HIT and its submitted assignments, then top up or close."""
    client = get_client(sandbox=recruitment.sandbox)
    if recruitment.is_recruiting:
        ensure_hit_type(recruitment, client)
        # HITs written by a top-up whose call failed are sent again, with their token.
        for hit in selectors.env_hits(recruitment).filter(state=HIT.State.PENDING):
            post_hit(hit, recruitment, client)
    for hit in selectors.env_hits(recruitment).filter(state=HIT.State.CREATED):
        sync_hit(hit, recruitment, client)
    # Grants that failed on arrival are made up here.
    for assignment in recruitment.assignments.filter(qualified_at__isnull=True).exclude(
        status__in=[Assignment.Status.RETURNED, Assignment.Status.ABANDONED]
    ):
        grant_took_part(assignment)
    top_up(recruitment, client)


def pause(recruitment: Recruitment) -> None:
    expire_open_hits(recruitment)


def close(recruitment: Recruitment) -> None:
    expire_open_hits(recruitment)


def send_payment(payment: Payment) -> dict[str, Any]:
    """Approve, reject or bonus on MTurk (see recruitment.ledger); returns the request id."""
    client = get_client(sandbox=payment.sandbox)
    if payment.kind == Payment.Kind.APPROVE:
        response = call(client, "approve_assignment", AssignmentId=payment.external_id)
    elif payment.kind == Payment.Kind.REJECT:
        response = call(
            client,
            "reject_assignment",
            AssignmentId=payment.external_id,
            RequesterFeedback=payment.message,
        )
    else:
        response = call(
            client,
            "send_bonus",
            WorkerId=payment.worker_id,
            BonusAmount=f"{payment.amount:.2f}",
            AssignmentId=payment.external_id,
            Reason=payment.message,
            UniqueRequestToken=payment.token,
        )
    _record_review(payment)
    return {"request_id": response.get("ResponseMetadata", {}).get("RequestId", "")}


def payment_made(payment: Payment) -> bool:
    """Whether MTurk shows the payment as made: the bonus listed, or the assignment reviewed."""
    client = get_client(sandbox=payment.sandbox)
    if payment.kind == Payment.Kind.BONUS:
        return any(
            bonus["WorkerId"] == payment.worker_id and Decimal(bonus["BonusAmount"]) == payment.amount
            for bonus in list_bonus_payments(client, AssignmentId=payment.external_id)
        )
    assignment = call(client, "get_assignment", AssignmentId=payment.external_id)["Assignment"]
    made = assignment["AssignmentStatus"] == REVIEWED[payment.kind]
    if made:
        _record_review(payment)
    return made


def _record_review(payment: Payment) -> None:
    if payment.kind in REVIEWED:
        Assignment.objects.filter(assignment_id=payment.external_id, worker_id=payment.worker_id).update(
            status=STATUSES[REVIEWED[payment.kind]], updated_at=timezone.now()
        )


def reconcile(recruitment: Recruitment) -> list[dict[str, str]]:
    """Differences between the ledger and what MTurk reports (assignment statuses, bonuses)."""
    remote_status: dict[tuple[str, str], str] = {}
    remote_bonuses: dict[str, list[dict[str, Any]]] = {}
    for hit in recruitment.hits.filter(state=HIT.State.CREATED):
        client = get_client(sandbox=hit.sandbox)
        for data in list_assignments(client, hit.mturk_id):
            remote_status[(data["AssignmentId"], data["WorkerId"])] = data["AssignmentStatus"]
        for bonus in list_bonus_payments(client, HITId=hit.mturk_id):
            remote_bonuses.setdefault(bonus["AssignmentId"], []).append(bonus)

    differences = []
    ledger = recruitment.payments.filter(backend="mturk")
    for payment in ledger:
        key = (payment.external_id, payment.worker_id)
        if payment.status != Payment.Status.DONE:
            differences.append(_difference("not done", payment, f"ledger row is {payment.status}"))
        elif payment.kind == Payment.Kind.BONUS:
            listed = remote_bonuses.get(payment.external_id, [])
            if not any(Decimal(bonus["BonusAmount"]) == payment.amount for bonus in listed):
                differences.append(_difference("bonus missing", payment, "done in the ledger, not on MTurk"))
        elif remote_status.get(key) != REVIEWED[payment.kind]:
            seen = remote_status.get(key, "nothing")
            differences.append(_difference("status", payment, f"MTurk says {seen}"))

    bonus_rows = {
        p.external_id for p in ledger if p.kind == Payment.Kind.BONUS and p.status == Payment.Status.DONE
    }
    for assignment_id, bonuses in remote_bonuses.items():
        extra = len(bonuses) - (assignment_id in bonus_rows)
        if extra > 0:
            differences.append(
                {
                    "problem": "bonus not in ledger",
                    "external_id": assignment_id,
                    "detail": f"MTurk lists {len(bonuses)} bonus(es), the ledger {len(bonuses) - extra}",
                }
            )
    reviewed = {(p.external_id, p.worker_id) for p in ledger if p.kind != Payment.Kind.BONUS}
    for (assignment_id, worker_id), status in remote_status.items():
        if status in REVIEWED.values() and (assignment_id, worker_id) not in reviewed:
            differences.append(
                {
                    "problem": "reviewed outside the ledger",
                    "external_id": assignment_id,
                    "detail": f"{status} on MTurk (auto-approval or the requester site)",
                }
            )
    return differences


def _difference(problem: str, payment: Payment, detail: str) -> dict[str, str]:
    return {"problem": problem, "external_id": payment.external_id, "kind": payment.kind, "detail": detail}
