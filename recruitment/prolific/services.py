"""Prolific writes: the study (draft, publish, places), submissions, payments, reconcile."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from experiments.assignment import end_unfinished
from experiments.models import Session
from recruitment import selectors
from recruitment.conf import public_base_url
from recruitment.models import Payment, ProlificSubmission, Recruitment
from recruitment.prolific.client import get_client

# Prolific fills these in on the study link; the participant page reads them.
URL_PARAMETERS = "PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
COMPLETE_URL = "https://app.prolific.com/submissions/complete?cc={code}"
REJECTED = "REJECTED"
# Submissions that ended without the study being finished.
SESSION_ENDED = {"RETURNED": Session.Status.RETURNED, "TIMED-OUT": Session.Status.ABANDONED}
# What Prolific shows for a submission once an approve or reject row is done (keyed by Payment.kind).
REVIEWED: dict[str, str] = {Payment.Kind.APPROVE: "APPROVED", Payment.Kind.REJECT: REJECTED}


def study_payload(recruitment: Recruitment, places: int) -> dict[str, Any]:
    study = recruitment.study
    payload: dict[str, Any] = {
        "name": recruitment.title,
        "internal_name": study.slug,
        "description": recruitment.description,
        "external_study_url": f"{public_base_url(require_https=True)}/s/{study.slug}/?{URL_PARAMETERS}",
        "prolific_id_option": "url_parameters",
        # Every submission waits for the ledger, which approves, rejects or bonuses by the study's rules.
        "completion_codes": [
            {
                "code": study.completion_code,
                "code_type": "COMPLETED",
                "actions": [{"action": "MANUALLY_REVIEW"}],
            }
        ],
        "total_available_places": places,
        "estimated_completion_time": recruitment.estimated_minutes,
        "reward": int(recruitment.reward * 100),
        "device_compatibility": ["desktop"],
    }
    linked = sorted(
        Recruitment.objects.filter(group_id=recruitment.group_id)
        .exclude(pk=recruitment.pk)
        .exclude(prolific_study_id="")
        .values_list("prolific_study_id", flat=True)
    )
    if linked:
        payload["filters"] = [{"filter_id": "previous_studies_blocklist", "selected_values": linked}]
    return payload


def places_wanted(recruitment: Recruitment) -> tuple[int, int]:
    """(places the target needs, places the budget allows).

    A failing session that is paid keeps its place, so each one needs a
    place more; rejected, returned and timed-out submissions free theirs on
    Prolific's side. The budget counts rewards and bonuses before Prolific's fee.
    """
    sessions = selectors.recruited_sessions(recruitment)
    rejected = recruitment.submissions.filter(status=REJECTED).values_list("session_id", flat=True)
    failing_kept = sessions.filter(passed=False).exclude(pk__in=[pk for pk in rejected if pk]).count()
    wanted = recruitment.study.sessions_needed + failing_kept
    bonus_rows = recruitment.payments.filter(kind=Payment.Kind.BONUS).exclude(status=Payment.Status.FAILED)
    bonuses = sum(bonus_rows.values_list("amount", flat=True), Decimal("0.00"))
    affordable = max(0, int((selectors.budget_cap(recruitment) - bonuses) // recruitment.reward))
    return wanted, affordable


def _parse(value: str | None) -> datetime | None:
    return parse_datetime(value) if value else None


def record_submission(recruitment: Recruitment, data: dict[str, Any]) -> ProlificSubmission:
    submission, _ = ProlificSubmission.objects.update_or_create(
        submission_id=data["id"],
        defaults={
            "recruitment": recruitment,
            "participant_id": data.get("participant_id") or data.get("participant") or "",
            "status": data["status"],
            "started_at": _parse(data.get("started_at")),
            "completed_at": _parse(data.get("completed_at")),
        },
    )
    if submission.session_id is None:
        submission.session = Session.objects.filter(
            study_id=recruitment.study_id,
            source="prolific",
            external__session_id=submission.submission_id,
        ).first()
        submission.save(update_fields=["session", "updated_at"])
    if submission.session_id and submission.status in SESSION_ENDED:
        # Prolific will not let the participant back in, so their units go back to the pool now.
        end_unfinished(Session.objects.filter(pk=submission.session_id), SESSION_ENDED[submission.status])
    return submission


def _transition(recruitment: Recruitment, action: str) -> None:
    response = get_client().transition_study(recruitment.prolific_study_id, action)
    recruitment.prolific_status = response.get("status", recruitment.prolific_status)
    recruitment.save(update_fields=["prolific_status"])


def _affordable_places(recruitment: Recruitment) -> int:
    """Places the target needs, within the cap; notes on the row when the cap cuts them."""
    wanted, affordable = places_wanted(recruitment)
    recruitment.note_budget(cut_short=affordable < wanted)
    return min(wanted, affordable)


def sync(recruitment: Recruitment) -> None:
    """Create the study on the first run, read submissions, then stop at the target or
    add places and publish (or resume)."""
    client = get_client()
    if recruitment.is_recruiting and not recruitment.prolific_study_id:
        places = _affordable_places(recruitment)
        created = client.create_study(study_payload(recruitment, places))
        recruitment.prolific_study_id = created["id"]
        recruitment.prolific_status = created.get("status", "UNPUBLISHED")
        recruitment.prolific_places = places
        recruitment.save(update_fields=["prolific_study_id", "prolific_status", "prolific_places"])
    if not recruitment.prolific_study_id:
        return
    for data in client.submissions(recruitment.prolific_study_id):
        record_submission(recruitment, data)
    progress = selectors.progress(recruitment, timezone.now())
    if progress.target_met and not recruitment.closed_at:
        recruitment.close_for_target(progress.passing, progress.needed)
        close(recruitment)
        return
    if not recruitment.is_recruiting:
        return
    places = _affordable_places(recruitment)
    if places > recruitment.prolific_places:
        client.update_study(recruitment.prolific_study_id, {"total_available_places": places})
        recruitment.prolific_places = places
        recruitment.save(update_fields=["prolific_places"])
    if recruitment.prolific_status == "UNPUBLISHED":
        _transition(recruitment, "PUBLISH")
    elif recruitment.prolific_status == "PAUSED":
        _transition(recruitment, "START")


def pause(recruitment: Recruitment) -> None:
    if recruitment.prolific_status == "ACTIVE":
        _transition(recruitment, "PAUSE")


def close(recruitment: Recruitment) -> None:
    if recruitment.prolific_status in ("ACTIVE", "PAUSED"):
        _transition(recruitment, "STOP")


def send_payment(payment: Payment) -> dict[str, Any]:
    """Approve, reject or bonus on Prolific (see recruitment.ledger); returns the status it reports."""
    client = get_client()
    if payment.kind == Payment.Kind.APPROVE:
        response = client.approve(payment.external_id)
    elif payment.kind == Payment.Kind.REJECT:
        response = client.reject(payment.external_id, payment.message, payment.rejection_category)
    else:
        if not payment.remote_ref:
            # Setting up pays nothing; keep its id so that a retry pays this bonus, not a new one.
            bonus = client.set_up_bonus(
                payment.recruitment.prolific_study_id, f"{payment.worker_id},{payment.amount:.2f}\n"
            )
            payment.remote_ref = bonus["id"]
            payment.save(update_fields=["remote_ref"])
        response = client.pay_bonus(payment.remote_ref)
    if payment.kind in REVIEWED:
        ProlificSubmission.objects.filter(submission_id=payment.external_id).update(
            status=response.get("status") or REVIEWED[payment.kind]
        )
    return {"status": response.get("status", "")}


def payment_made(payment: Payment) -> bool:
    """Whether the submission on Prolific shows the payment: its status, or the bonus among its bonuses."""
    submission = get_client().submission(payment.external_id)
    if payment.kind == Payment.Kind.BONUS:
        cents = int(payment.amount * 100)
        return any(round(paid) == cents for paid in submission.get("bonus_payments") or [])
    return submission.get("status") == REVIEWED[payment.kind]


def reconcile(recruitment: Recruitment) -> list[dict[str, str]]:
    """Differences between the ledger and the submissions' statuses on Prolific.

    Bonuses are not in the submission list; a bonus whose outcome is unknown
    is marked FAILED by the ledger for a person to check instead.
    """
    if not recruitment.prolific_study_id:
        return []
    remote = {data["id"]: data["status"] for data in get_client().submissions(recruitment.prolific_study_id)}
    ledger = recruitment.payments.filter(backend="prolific")
    differences = []
    for payment in ledger:
        if payment.status != Payment.Status.DONE:
            differences.append(
                {
                    "problem": "not done",
                    "external_id": payment.external_id,
                    "kind": payment.kind,
                    "detail": payment.status,
                }
            )
        elif payment.kind in REVIEWED and remote.get(payment.external_id) != REVIEWED[payment.kind]:
            differences.append(
                {
                    "problem": "status",
                    "external_id": payment.external_id,
                    "kind": payment.kind,
                    "detail": f"Prolific says {remote.get(payment.external_id, 'nothing')}",
                }
            )
    reviewed = {p.external_id for p in ledger if p.kind != Payment.Kind.BONUS}
    for submission_id, status in remote.items():
        if status in REVIEWED.values() and submission_id not in reviewed:
            differences.append(
                {"problem": "reviewed outside the ledger", "external_id": submission_id, "detail": status}
            )
    return differences
