"""Job rows: what a background task is doing, so that the admin can show it."""

from django.db import models
from django.utils import timezone


class Job(models.Model):
    class Kind(models.TextChoices):
        RENDER_STIMULI = "render_stimuli", "render stimuli"
        TRAIN_SAE = "train_sae", "train a sparse autoencoder"

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

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 0.0

    def report(self, stage: str, done: int, total: int, message: str = "") -> None:
        """Save progress; called from inside a running task."""
        self.stage, self.done, self.total = stage, done, total
        if message:
            self.message = message
        self.save(update_fields=["stage", "done", "total", "message", "updated_at"])
