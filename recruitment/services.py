"""Recruitment writes that do not depend on the recruiter.

The admin calls launch, pause, resume, close, request_sync, record_payments
and retry_payment: they check, change the Recruitment row, and queue the
recruiter calls as Celery tasks on commit. The tasks call sync,
pause_on_recruiter, close_on_recruiter, run_payments and reconcile, each
inside errors_recorded so that a failure shows on the study in the admin.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from experiments.models import Study
from recruitment import ledger, selectors, tasks
from recruitment.backends import backend_for
from recruitment.conf import public_base_url
from recruitment.errors import ConfigurationError, RecruitmentError, TransientError
from recruitment.models import LinkGroup, Payment, Recruitment
from recruitment.tokens import make_token

logger = logging.getLogger(__name__)

# Longer than a sync of a large study; a lease that ran out belongs to a worker that died.
SYNC_LEASE = timedelta(minutes=15)


class PlanChanged(RecruitmentError):
    """What paying would do changed since the dry run the admin confirmed."""


def ensure_group(recruitment: Recruitment) -> None:
    """A study launched without linked studies gets a group of its own (for its took-part qualification)."""
    if recruitment.group_id is None:
        # A study built from another (a verify stage) joins that study's group, so that MTurk's took-part
        # qualification keeps the other study's workers out too.
        derived_from = recruitment.study.derived_from_id
        source = (
            Recruitment.objects.filter(study_id=derived_from, group__isnull=False).first() if derived_from else None
        )
        recruitment.group = source.group if source else LinkGroup.objects.get_or_create(
            name=f"study {recruitment.study.slug}"
        )[0]
        recruitment.save(update_fields=["group"])


def launch(recruitment: Recruitment, *, sandbox: bool, confirmed_total: Decimal | None = None) -> None:
    """Start recruiting; live needs the cost the admin showed (confirmed_total) to still hold."""
    backend_for(recruitment.backend).check_launch(recruitment, sandbox=sandbox)
    if recruitment.study.status != Study.Status.OPEN:
        raise ConfigurationError("Open the study to participants before launching its recruitment.")
    public_base_url(require_https=True)
    try:
        recruitment.full_clean()
    except ValidationError as exc:
        problems = (f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
        raise ConfigurationError("; ".join(problems)) from exc
    if not sandbox:
        total = selectors.cost_estimate(recruitment).total
        if confirmed_total != total:
            raise ConfigurationError(
                f"Launching live spends money: confirm the estimated cost ({total}) first."
            )
    if recruitment.launched_at and not recruitment.closed_at and recruitment.sandbox != sandbox:
        raise ConfigurationError("Close the current run before launching on the other marketplace.")
    ensure_group(recruitment)
    recruitment.sandbox = sandbox
    recruitment.launched_at = timezone.now()
    recruitment.paused_at = recruitment.closed_at = recruitment.budget_reached_at = None
    recruitment.close_reason = ""
    recruitment.hit_type_id = ""  # made again from the current title, reward...
    recruitment.save()
    transaction.on_commit(lambda: tasks.sync_recruitment.delay(recruitment.pk))


def pause(recruitment: Recruitment) -> None:
    if not recruitment.is_recruiting:
        raise RecruitmentError("Only a running recruitment can be paused.")
    recruitment.paused_at = timezone.now()
    recruitment.save(update_fields=["paused_at"])
    transaction.on_commit(lambda: tasks.pause_recruitment.delay(recruitment.pk))


def resume(recruitment: Recruitment) -> None:
    if not recruitment.paused_at or recruitment.closed_at:
        raise RecruitmentError("Only a paused recruitment can be resumed.")
    recruitment.paused_at = None
    recruitment.save(update_fields=["paused_at"])
    request_sync(recruitment)


def close(recruitment: Recruitment, reason: str = "closed by the researcher") -> None:
    if not recruitment.launched_at or recruitment.closed_at:
        raise RecruitmentError("Only a launched, open recruitment can be closed.")
    recruitment.closed_at = timezone.now()
    recruitment.close_reason = reason
    recruitment.save(update_fields=["closed_at", "close_reason"])
    transaction.on_commit(lambda: tasks.close_recruitment.delay(recruitment.pk))


def request_sync(recruitment: Recruitment) -> None:
    """Sync (and top up) now rather than at the next beat."""
    transaction.on_commit(lambda: tasks.sync_recruitment.delay(recruitment.pk))


def request_reconcile(recruitment: Recruitment) -> None:
    transaction.on_commit(lambda: tasks.reconcile_recruitment.delay(recruitment.pk))


@contextmanager
def exclusive(recruitment_id: int) -> Iterator[Recruitment]:
    """Hold the recruitment's sync lease, so that two workers never top up or expire at once."""
    now = timezone.now()
    claimed = (
        Recruitment.objects.filter(pk=recruitment_id)
        .filter(Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now))
        .update(sync_lease_until=now + SYNC_LEASE)
    )
    if not claimed:
        raise TransientError("another worker is syncing this recruitment", maybe_processed=False)
    try:
        yield Recruitment.objects.select_related("study", "group").get(pk=recruitment_id)
    finally:
        Recruitment.objects.filter(pk=recruitment_id).update(sync_lease_until=None)


@contextmanager
def errors_recorded(recruitment_id: int) -> Iterator[None]:
    """Store any recruitment error on the row (shown in the admin), then let it propagate."""
    try:
        yield
    except RecruitmentError as exc:
        logger.warning("recruitment %s: %s", recruitment_id, exc)
        Recruitment.objects.filter(pk=recruitment_id).update(
            last_error=str(exc), last_error_at=timezone.now()
        )
        raise


def sync(recruitment_id: int) -> None:
    with exclusive(recruitment_id) as recruitment:
        backend_for(recruitment.backend).sync(recruitment)
        recruitment.last_synced_at = timezone.now()
        recruitment.last_error = ""
        recruitment.save(update_fields=["last_synced_at", "last_error"])


def pause_on_recruiter(recruitment_id: int) -> None:
    with exclusive(recruitment_id) as recruitment:
        backend_for(recruitment.backend).pause(recruitment)


def close_on_recruiter(recruitment_id: int) -> None:
    with exclusive(recruitment_id) as recruitment:
        backend_for(recruitment.backend).close(recruitment)


def record_payments(recruitment: Recruitment, digest: str) -> int:
    """Write the ledger rows of the dry run the admin confirmed (digest), then pay them.

    The ledger's unique (backend, id, kind) makes writing the same plan twice harmless.
    """
    plan = selectors.plan_payments(recruitment)
    if plan.digest != digest:
        raise PlanChanged("What paying would do has changed since the dry run: review it again.")
    rows = [
        Payment(
            recruitment=recruitment,
            backend=recruitment.backend,
            sandbox=item.sandbox,
            kind=item.kind,
            session_id=item.session_id,
            external_id=item.external_id,
            worker_id=item.worker_id,
            amount=item.amount,
            message=item.message,
            rejection_category=item.rejection_category,
            token=make_token(item.kind, item.external_id),
        )
        for item in plan.items
    ]
    Payment.objects.bulk_create(rows, ignore_conflicts=True)
    transaction.on_commit(lambda: tasks.run_payments.delay(recruitment.pk))
    return len(rows)


def run_payments(recruitment_id: int) -> int:
    """Carry out every open ledger row, oldest first; returns how many this call completed."""
    done, failed = 0, []
    rows = Payment.objects.filter(
        recruitment_id=recruitment_id, status__in=[Payment.Status.PENDING, Payment.Status.SENDING]
    ).order_by("pk")
    for payment_id in rows.values_list("pk", flat=True):
        payment = ledger.execute_payment(payment_id)
        if payment is None:
            continue
        if payment.status == Payment.Status.FAILED:
            failed.append(f"{payment.kind} {payment.external_id}: {payment.last_error}")
        else:
            done += 1
    if failed:
        raise RecruitmentError(f"{len(failed)} payment(s) failed: " + "; ".join(failed))
    return done


def retry_payment(payment: Payment) -> None:
    ledger.retry_failed(payment)
    transaction.on_commit(lambda: tasks.run_payments.delay(payment.recruitment_id))


def reconcile(recruitment_id: int) -> list[dict[str, str]]:
    recruitment = Recruitment.objects.select_related("study").get(pk=recruitment_id)
    differences = backend_for(recruitment.backend).reconcile(recruitment)
    recruitment.reconcile_report = {"differences": differences}
    recruitment.reconciled_at = timezone.now()
    recruitment.save(update_fields=["reconcile_report", "reconciled_at"])
    if differences:
        logger.warning("recruitment %s: %d ledger difference(s)", recruitment_id, len(differences))
    return differences
