"""Celery tasks. Names match settings.CELERY_TASK_ROUTES (`workers.tasks.render_*`, `train_*` -> queue "gpu")."""

from __future__ import annotations

from collections.abc import Callable

from botocore.exceptions import ConnectionError as S3ConnectionError
from botocore.exceptions import ReadTimeoutError as S3ReadTimeoutError
from celery import Task, shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.db import InterfaceError, OperationalError

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


def _run(task: Task, job_id: int, work: Callable[[Job], None]) -> None:
    """Run work(job) for a Job, retrying transient failures with backoff and recording how it ended."""
    job = services.mark_running(job_id)
    try:
        work(job)
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


def _render(job: Job) -> None:
    # Imported here so that web processes, which only queue this task, never load torch.
    from experiments.rendering import render_study

    if job.study is None:
        raise ValueError(f"Job {job.pk} renders no study.")
    render_study(job.study, progress=job.reporter())


def _train(job: Job) -> None:
    from stimuli.services import train_autoencoder

    if job.sae is None:
        raise ValueError(f"Job {job.pk} trains no SAE.")
    train_autoencoder(job.sae, report=job.reporter())


def _summarize(job: Job) -> None:
    from experiments.summaries import summarize_study

    if job.study is None:
        raise ValueError(f"Job {job.pk} summarizes no study.")
    summarize_study(job.study, job.reporter())


@shared_task(bind=True, name="workers.tasks.render_stimuli", max_retries=MAX_RETRIES)
def render_stimuli(self: Task, job_id: int) -> None:
    """Render a study's stimuli for a Job, reporting progress on it; resumes where a
    crashed or retried run stopped."""
    _run(self, job_id, _render)


@shared_task(bind=True, name="workers.tasks.train_sae", max_retries=MAX_RETRIES)
def train_sae(self: Task, job_id: int) -> None:
    """Train a sparse autoencoder for a Job, reporting epochs, loss, R² and dead latents on it;
    resumes from its last checkpoint after a crash or a retry."""
    _run(self, job_id, _train)


@shared_task(bind=True, name="workers.tasks.summarize_responses", max_retries=MAX_RETRIES)
def summarize_responses(self: Task, job_id: int) -> None:
    """Compute a study's unit statistics for a Job (nameability: embeddings of its names, cached per text)."""
    _run(self, job_id, _summarize)


# The task that runs each kind of Job.
TASKS: dict[str, Task] = {
    Job.Kind.RENDER_STIMULI: render_stimuli,
    Job.Kind.TRAIN_SAE: train_sae,
    Job.Kind.SUMMARIZE: summarize_responses,
}
