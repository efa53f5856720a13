"""Celery tasks. Names match settings.CELERY_TASK_ROUTES (`workers.tasks.render_*` -> queue "gpu")."""

from __future__ import annotations

from botocore.exceptions import ConnectionError as S3ConnectionError
from botocore.exceptions import ReadTimeoutError as S3ReadTimeoutError
from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.db import InterfaceError, OperationalError

from workers import services

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


@shared_task(bind=True, name="workers.tasks.render_stimuli", max_retries=MAX_RETRIES)
def render_stimuli(self, job_id: int) -> None:
    """Render a study's stimuli for a Job, reporting progress on it; resumes where a
    crashed or retried run stopped."""
    # Imported here so that web processes, which only queue this task, never load torch.
    from experiments.rendering import render_study

    job = services.mark_running(job_id)
    try:
        if job.study is None:
            raise ValueError(f"Job {job_id} renders no study.")
        render_study(job.study, progress=job.report)
    except TRANSIENT_ERRORS as exc:
        if self.request.retries >= MAX_RETRIES:
            services.mark_failed(job, exc)
            raise
        countdown = get_exponential_backoff_interval(
            factor=10, retries=self.request.retries, maximum=600, full_jitter=True
        )
        services.note_retry(job, exc, countdown)
        raise self.retry(exc=exc, countdown=countdown) from exc
    except Exception as exc:
        services.mark_failed(job, exc)
        raise
    services.mark_done(job)
