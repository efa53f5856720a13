"""Writes of the workers app: queueing background jobs and moving Job rows through their states."""

from __future__ import annotations

import logging
import traceback

from django.db import transaction
from django.utils import timezone

from experiments.models import Study
from stimuli.models import SparseAutoencoder
from workers.models import Job

logger = logging.getLogger(__name__)


def start_rendering(study: Study) -> Job:
    """Create a render_stimuli Job for the study and queue it once the transaction commits.

    A study that does not validate (a protocol, condition or unit kind not
    implemented, bad parameters) is refused here with Django's ValidationError,
    and again by the task itself.

    Rendering is idempotent, so a second job for the same study only finds
    the work done (and waits for a running one on the same host). Without
    REDIS_URL the task runs in-process when the transaction commits, i.e.
    before this returns when called outside a transaction; refresh the job to
    see how it ended.
    """
    study.full_clean()
    return _queued(Job.objects.create(kind=Job.Kind.RENDER_STIMULI, study=study))


def start_training(sae: SparseAutoencoder) -> Job:
    """Create a train_sae Job for the SAE and queue it once the transaction commits (as start_rendering).

    Training resumes from its checkpoints, so a second job for the same SAE
    continues the first's work, and one for a trained SAE finds it done.
    """
    sae.full_clean()
    return _queued(Job.objects.create(kind=Job.Kind.TRAIN_SAE, sae=sae))


def start_summary(study: Study) -> Job:
    """Create a summarize Job (the protocol's unit statistics, e.g. nameability's agreement) and queue it once
    the transaction commits; like rendering, it runs in-process without REDIS_URL."""
    return _queued(Job.objects.create(kind=Job.Kind.SUMMARIZE, study=study))


def _queued(job: Job) -> Job:
    """The job, its task queued once the transaction commits."""
    transaction.on_commit(lambda: _enqueue(job.pk, job.kind))
    return job


def _enqueue(job_id: int, kind: str) -> None:
    # Imported here because the task module imports this one.
    from workers.tasks import TASKS

    try:
        TASKS[kind].delay(job_id)
    except Exception as exc:
        # Raised by an unreachable broker, or by the task itself when it runs
        # in-process; either way the job row records it and the request that
        # queued it (an admin action) must not fail.
        logger.exception("Job %s could not run", job_id)
        Job.objects.filter(pk=job_id).exclude(status=Job.Status.FAILED).update(
            status=Job.Status.FAILED, error=_describe(exc), finished_at=timezone.now()
        )


def mark_running(job_id: int) -> Job:
    job = Job.objects.select_related("study__model", "study__image_pool", "sae__model", "sae__image_pool").get(
        pk=job_id
    )
    job.status, job.started_at, job.finished_at, job.error = (
        Job.Status.RUNNING, timezone.now(), None, ""
    )
    job.save(update_fields=["status", "started_at", "finished_at", "error", "updated_at"])
    return job


def note_retry(job: Job, exc: BaseException, countdown: float) -> None:
    job.message = f"Retrying in {countdown:.0f} s after {type(exc).__name__}: {exc}"
    job.status = Job.Status.QUEUED
    job.save(update_fields=["message", "status", "updated_at"])


def mark_done(job: Job) -> None:
    job.status, job.finished_at = Job.Status.DONE, timezone.now()
    job.save(update_fields=["status", "finished_at", "updated_at"])


def mark_failed(job: Job, exc: BaseException) -> None:
    job.status, job.finished_at, job.error = Job.Status.FAILED, timezone.now(), _describe(exc)
    job.save(update_fields=["status", "finished_at", "error", "updated_at"])


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).strip()
