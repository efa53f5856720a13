"""Carrying out ledger rows so that nobody is paid twice.

A row is claimed under select_for_update and committed as SENDING with a
lease before the call goes out, so a second worker (a retried task, a
concurrent run) sees it held and leaves it alone. The response marks it DONE;
a DONE row is never sent again, whatever MTurk's 24-hour token memory says.
A row whose call may or may not have reached the recruiter stays SENDING
without a lease; whoever picks it up next first asks the recruiter whether
it happened (verify) and only sends again when it did not and sending again
is safe.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from recruitment.backends import backend_for
from recruitment.errors import ConfigurationError, RecruitmentError, ServiceRefused, TransientError
from recruitment.models import Payment

logger = logging.getLogger(__name__)

# Longer than any single call with botocore's own retries; a SENDING row whose
# lease ran out belongs to a worker that died.
LEASE = timedelta(minutes=10)


def _claim(payment_id: int) -> tuple[Payment, bool] | None:
    """Take the row for this worker; returns (payment, outcome_unknown) or None if not ours to send."""
    now = timezone.now()
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status in (Payment.Status.DONE, Payment.Status.FAILED):
            return None
        if payment.status == Payment.Status.SENDING and payment.lease_until and payment.lease_until > now:
            return None  # another worker is sending it right now
        outcome_unknown = payment.status == Payment.Status.SENDING
        payment.status = Payment.Status.SENDING
        payment.attempts += 1
        payment.lease_until = now + LEASE
        payment.sent_at = payment.sent_at or now
        payment.save(update_fields=["status", "attempts", "lease_until", "sent_at"])
    return payment, outcome_unknown


def _finish(payment: Payment, response: dict[str, Any]) -> Payment:
    payment.status = Payment.Status.DONE
    payment.done_at = timezone.now()
    payment.lease_until = None
    payment.last_error = ""
    payment.response = response
    payment.save(update_fields=["status", "done_at", "lease_until", "last_error", "response"])
    return payment


def _fail(payment: Payment, error: str) -> Payment:
    payment.status = Payment.Status.FAILED
    payment.lease_until = None
    payment.last_error = error
    payment.save(update_fields=["status", "lease_until", "last_error"])
    return payment


def _release(payment: Payment, error: TransientError, *, outcome_unknown: bool) -> None:
    """Give the row back after a transient error: PENDING if the call certainly did not happen,
    SENDING without a lease (verify before sending) if it may have."""
    unknown = outcome_unknown or error.maybe_processed
    payment.status = Payment.Status.SENDING if unknown else Payment.Status.PENDING
    payment.lease_until = None
    payment.last_error = str(error)
    payment.save(update_fields=["status", "lease_until", "last_error"])


def execute_payment(payment_id: int) -> Payment | None:
    """Carry out one ledger row; None when it was not this call's to carry out.

    Raises TransientError (after giving the row back) so that the task retries;
    a refusal marks the row FAILED and returns it.
    """
    claimed = _claim(payment_id)
    if claimed is None:
        return None
    payment, outcome_unknown = claimed
    backend = backend_for(payment.backend)
    try:
        if outcome_unknown:
            if backend.verify_payment(payment):
                return _finish(payment, {"verified": True})
            if not backend.can_resend_payment(payment):
                return _fail(
                    payment,
                    f"The outcome of an earlier attempt is unknown and {payment.backend} has no safe retry "
                    "for it: check the recruiter's site, then mark the row done or retry it.",
                )
        response = backend.send_payment(payment)
    except TransientError as exc:
        _release(payment, exc, outcome_unknown=outcome_unknown)
        raise
    except ServiceRefused as exc:
        # The refusal may be of a repeat (already approved, token already used):
        # the recruiter's own record decides.
        try:
            made = backend.verify_payment(payment)
        except RecruitmentError:
            made = False
        if made:
            return _finish(payment, {"verified": True, "refusal": str(exc)})
        logger.warning("payment %s refused: %s", payment.pk, exc)
        return _fail(payment, str(exc))
    except ConfigurationError as exc:
        # Raised before anything is sent (no credentials, no token).
        _release(payment, TransientError(str(exc), maybe_processed=False), outcome_unknown=outcome_unknown)
        raise
    except RecruitmentError as exc:
        _release(payment, TransientError(str(exc), maybe_processed=True), outcome_unknown=outcome_unknown)
        raise
    return _finish(payment, response)


def retry_failed(payment: Payment) -> None:
    """An admin's decision after a refusal was fixed (funds added...): send again with the same token."""
    updated = Payment.objects.filter(pk=payment.pk, status=Payment.Status.FAILED).update(
        status=Payment.Status.SENDING if payment.sent_at else Payment.Status.PENDING, lease_until=None
    )
    if not updated:
        raise RecruitmentError(f"payment {payment.pk} is {payment.status}, not failed")


def mark_done_by_hand(payment: Payment, checked_by: str) -> None:
    """Someone checked on the recruiter's site that a failed or unknown payment was made."""
    updated = Payment.objects.filter(
        pk=payment.pk, status__in=[Payment.Status.FAILED, Payment.Status.SENDING], lease_until__isnull=True
    ).update(
        status=Payment.Status.DONE,
        done_at=timezone.now(),
        response={"marked_done_by": checked_by},
    )
    if not updated:
        raise RecruitmentError(f"payment {payment.pk} is {payment.status} and cannot be marked done by hand")
