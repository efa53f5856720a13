"""Celery tasks. Names match settings.CELERY_TASK_ROUTES (`workers.tasks.render_*` -> queue "gpu")."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import ConnectionError as S3ConnectionError
from botocore.exceptions import ReadTimeoutError as S3ReadTimeoutError
from celery import Task, shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.db import InterfaceError, OperationalError

from experiments.models import Study
from workers import services
from workers.models import Job

# Failures worth another try: a database, broker or S3 connection that may come back.
TRANSIENT_ERRORS = (
    OperationalError,
    InterfaceError,
    ConnectionError,
    TimeoutError,
    S3ConnectionError,
    S3ReadTimeoutError,
)
MAX_RETRIES = 5

if TYPE_CHECKING:
    # Only for the type: the recording module loads torch, which web processes never need.
    from stimuli.recording import Progress


def _run(task: Task, job_id: int, work: Callable[[Study, Progress], object]) -> None:
    """Run a job's work on its study, reporting progress on its row; transient failures are retried with backoff."""
    job = services.mark_running(job_id)
    try:
        if job.study is None:
            raise ValueError(f"Job {job_id} has no study.")
        work(job.study, job.report)
    except TRANSIENT_ERRORS as exc:
        if task.request.retries >= MAX_RETRIES:
            services.mark_failed(job, exc)
            raise
        countdown = get_exponential_backoff_interval(
            factor=10, retries=task.request.retries, maximum=600, full_jitter=True
        )
        services.note_retry(job, exc, countdown)
        raise task.retry(exc=exc, countdown=countdown) from exc
    except Exception as exc:
        services.mark_failed(job, exc)
        raise
    services.mark_done(job)


@shared_task(bind=True, name="workers.tasks.render_stimuli", max_retries=MAX_RETRIES)
def render_stimuli(self: Task, job_id: int) -> None:
    """Render a study's stimuli for a Job, reporting progress on it; resumes where a
    crashed or retried run stopped."""
    # Imported here so that web processes, which only queue this task, never load torch.
    from experiments.rendering import render_study

    _run(self, job_id, render_study)


@shared_task(bind=True, name="workers.tasks.summarize_responses", max_retries=MAX_RETRIES)
def summarize_responses(self: Task, job_id: int) -> None:
    """Compute a study's unit statistics for a Job (nameability: embeddings of its names, cached per text)."""
    from experiments.summaries import summarize_study

    _run(self, job_id, summarize_study)


# Which task runs each kind of job.
TASKS = {Job.Kind.RENDER_STIMULI: render_stimuli, Job.Kind.SUMMARIZE: summarize_responses}
