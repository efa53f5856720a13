"""Job rows: what a background task is doing, so that the admin can show it."""

from __future__ import annotations

import math
import time

from django.db import models
from django.utils import timezone

# How often a running task's progress is written at most (one UPDATE of the job row each time).
REPORT_EVERY_S = 1.0


class Job(models.Model):
    class Kind(models.TextChoices):
        RENDER_STIMULI = "render_stimuli", "render stimuli"
        TRAIN_SAE = "train_sae", "train a sparse autoencoder"
        SUMMARIZE = "summarize", "unit statistics"

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    kind = models.CharField(max_length=40, choices=Kind.choices)
    study = models.ForeignKey(
        "experiments.Study", on_delete=models.CASCADE, related_name="jobs", null=True, blank=True
    )
    sae = models.ForeignKey(
        "stimuli.SparseAutoencoder", on_delete=models.CASCADE, related_name="jobs", null=True, blank=True
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=100, blank=True)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    stage_started_at = models.DateTimeField(
        null=True, blank=True, help_text="When the stage began: its rate and time left are counted from here."
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 0.0

    def report(self, stage: str, done: int, total: int, message: str = "") -> None:
        """Save progress; called from inside a running task."""
        if stage != self.stage or self.stage_started_at is None:
            self.stage_started_at = timezone.now()
        self.stage, self.done, self.total = stage, done, total
        if message:
            self.message = message
        self.save(update_fields=["stage", "done", "total", "message", "updated_at", "stage_started_at"])

    def reporter(self, every_s: float = REPORT_EVERY_S) -> ThrottledReport:
        """report() for a task to call as often as it likes (SAE training calls it every step)."""
        return ThrottledReport(self, every_s)

    @property
    def stage_label(self) -> str:
        """What the job is doing: its stage while it runs, and plainly done, failed or queued otherwise."""
        return self.stage if self.status == self.Status.RUNNING and self.stage else self.get_status_display()

    @property
    def rate(self) -> float | None:
        """Items (images, units) per second in the current stage, while it runs."""
        if self.status != self.Status.RUNNING or self.stage_started_at is None or not self.done:
            return None
        seconds = (timezone.now() - self.stage_started_at).total_seconds()
        return self.done / seconds if seconds > 0 else None

    @property
    def eta_s(self) -> float | None:
        """Seconds left in the current stage at its rate so far."""
        rate = self.rate
        return (self.total - self.done) / rate if rate else None


class ThrottledReport:
    """Job.report that saves a new stage, a message and a stage's end at once, and otherwise at most once
    every `every_s` seconds: a task's progress costs an UPDATE of its row, which per SAE training step
    would cost more than the step."""

    def __init__(self, job: Job, every_s: float) -> None:
        self.job, self.every_s, self.last = job, every_s, -math.inf

    def __call__(self, stage: str, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if stage != self.job.stage or message or done >= total or now - self.last >= self.every_s:
            self.job.report(stage, done, total, message)
            self.last = now
