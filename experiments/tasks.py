"""Periodic upkeep of the participant side."""

from celery import shared_task

from experiments.assignment import release_abandoned
from experiments.models import Study


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def release_abandoned_slots() -> int:
    """Release the slots of sessions silent past their study's timeout; returns how many."""
    return sum(release_abandoned(study) for study in Study.objects.filter(status=Study.Status.OPEN))
