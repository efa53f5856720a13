"""Reads of the workers app: jobs as the admin's job panel shows them."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from experiments.models import Study
from workers.models import Job

RECENT = 5


def recent_jobs(study: Study) -> QuerySet[Job]:
    return Job.objects.filter(study=study).order_by("-created_at", "-pk")[:RECENT]


def job_row(job: Job) -> dict[str, Any]:
    """One row of the job panel: its stage (or plainly done), how far, how fast and how long still."""
    rate, eta = job.rate, job.eta_s
    return {
        "id": job.pk,
        "kind": f"{job.get_kind_display()} #{job.pk}",
        "status": job.status,
        "stage": job.stage_label,
        "progress": f"{job.done} / {job.total} ({job.percent:.0f}%)" if job.total else "",
        "percent": round(job.percent if job.status != Job.Status.DONE else 100.0, 1),
        "rate": f"{rate:.1f}/s" if rate else "",
        "eta": _duration(eta) if eta is not None else "",
        "message": job.error.splitlines()[-1] if job.error else job.message,
        "updated_at": job.updated_at.isoformat(),
    }


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
