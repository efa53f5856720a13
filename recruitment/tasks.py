"""Celery tasks: fetch by id, call a service, retry throttling with backoff.

Every task is safe to run twice: syncs hold a lease, payments go through the
ledger, granting a qualification twice sets the same value. Errors are
stored on the Recruitment row by services.errors_recorded before they
propagate, so the admin shows them even when Celery gives up.
"""

from __future__ import annotations

from celery import Task, shared_task
from django.db.models import Q
from django.utils import timezone

from recruitment import selectors, services
from recruitment.errors import TransientError
from recruitment.models import Assignment, Payment, Recruitment
from recruitment.mturk import services as mturk


class RecruiterTask(Task):
    autoretry_for = (TransientError,)
    retry_backoff = 30
    retry_backoff_max = 30 * 60
    retry_jitter = True
    max_retries = 8


@shared_task(base=RecruiterTask)
def sync_recruitment(recruitment_id: int) -> None:
    with services.errors_recorded(recruitment_id):
        services.sync(recruitment_id)


@shared_task
def sync_recruitments() -> None:
    """Beat: sync every recruitment that recruits or still has unsettled assignments."""
    for recruitment_id in selectors.recruitments_to_sync().values_list("pk", flat=True):
        sync_recruitment.delay(recruitment_id)


@shared_task(base=RecruiterTask)
def pause_recruitment(recruitment_id: int) -> None:
    with services.errors_recorded(recruitment_id):
        services.pause_on_recruiter(recruitment_id)


@shared_task(base=RecruiterTask)
def close_recruitment(recruitment_id: int) -> None:
    with services.errors_recorded(recruitment_id):
        services.close_on_recruiter(recruitment_id)


@shared_task(base=RecruiterTask)
def grant_took_part(assignment_id: int) -> None:
    assignment = Assignment.objects.select_related("recruitment", "hit", "session").get(pk=assignment_id)
    if assignment.qualified_at:
        return
    with services.errors_recorded(assignment.recruitment_id):
        mturk.grant_took_part(assignment)


@shared_task(base=RecruiterTask)
def run_payments(recruitment_id: int) -> None:
    with services.errors_recorded(recruitment_id):
        services.run_payments(recruitment_id)


@shared_task
def run_due_payments() -> None:
    """Beat: pick up ledger rows left pending or half-sent (a worker died, retries ran out)."""
    due = Payment.objects.filter(
        Q(status=Payment.Status.PENDING)
        | Q(status=Payment.Status.SENDING, lease_until__isnull=True)
        | Q(status=Payment.Status.SENDING, lease_until__lt=timezone.now())
    )
    for recruitment_id in due.values_list("recruitment_id", flat=True).distinct():
        run_payments.delay(recruitment_id)


@shared_task(base=RecruiterTask)
def reconcile_recruitment(recruitment_id: int) -> None:
    with services.errors_recorded(recruitment_id):
        services.reconcile(recruitment_id)


@shared_task
def reconcile_recruitments() -> None:
    """Beat: compare every ledger with its recruiter."""
    ids = Recruitment.objects.filter(payments__isnull=False).values_list("pk", flat=True).distinct()
    for recruitment_id in ids:
        reconcile_recruitment.delay(recruitment_id)
