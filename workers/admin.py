"""Jobs are written by tasks only; the admin shows them read-only. Sparse autoencoders are trained from here."""

import numpy as np
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from stimuli.models import SparseAutoencoder
from workers.models import Job
from workers.services import start_training


def job_progress(job: Job) -> str:
    return f"{job.done}/{job.total} ({job.percent:.0f}%)" if job.total else "-"


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("__str__", "study", "sae", "status", "stage", "progress", "message", "updated_at")
    list_filter = ("kind", "status")
    search_fields = ("study__slug", "sae__name", "message", "error")
    fields = (
        "kind", "study", "sae", "status", "stage", "progress", "message", "error_text",
        "created_at", "started_at", "finished_at", "updated_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="progress")
    def progress(self, job: Job) -> str:
        return job_progress(job)

    @admin.display(description="error")
    def error_text(self, job: Job) -> str:
        return format_html("<pre>{}</pre>", job.error) if job.error else "-"


class SaeJobInline(admin.TabularInline):
    model = Job
    fields = ("__str__", "status", "stage", "progress", "message", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="progress")
    def progress(self, job: Job) -> str:
        return job_progress(job)


@admin.register(SparseAutoencoder)
class SparseAutoencoderAdmin(admin.ModelAdmin):
    """SAEs are configured here and trained by the *Train* action; what training wrote is read-only."""

    list_display = (
        "name", "model", "layer", "architecture", "n_latents", "k", "status", "variance_explained_pct",
        "mean_l0", "dead_pct",
    )
    list_filter = ("status", "architecture", "model")
    search_fields = ("name", "layer")
    actions = ("train",)
    inlines = [SaeJobInline]
    RESULTS = (
        "status", "variance_explained", "mean_l0", "dead_fraction", "frequencies", "n_tokens", "weights_file",
        "weights_sha256", "input_scale", "config", "code_version", "trained_at",
    )
    fieldsets = (
        (None, {"fields": ("name", "model", "layer", "image_pool", "n_images", "tokens")}),
        ("Architecture and training", {"fields": (
            "architecture", "n_latents", "k", "l1_coefficient", "aux_k_coefficient", "epochs", "batch_size",
            "learning_rate", "seed",
        )}),
        ("What training produced", {"fields": RESULTS}),
    )

    def get_readonly_fields(self, request, obj: SparseAutoencoder | None = None):
        if obj is not None and obj.status != SparseAutoencoder.Status.DRAFT:
            return (*SparseAutoencoder.TRAINING_FIELDS, "name", "tokens", *self.RESULTS)
        return self.RESULTS

    @admin.action(description="Train the selected SAEs")
    def train(self, request, queryset) -> None:
        for sae in queryset:
            try:
                job = start_training(sae)
            except ValidationError as exc:
                self.message_user(request, f"{sae} cannot be trained: {' '.join(exc.messages)}", messages.ERROR)
                continue
            self.message_user(request, f"{sae}: training queued as job #{job.pk}.")

    @admin.display(description="variance explained (R²)")
    def variance_explained_pct(self, sae: SparseAutoencoder) -> str:
        return "-" if sae.variance_explained is None else f"{100 * sae.variance_explained:.1f}%"

    @admin.display(description="dead latents")
    def dead_pct(self, sae: SparseAutoencoder) -> str:
        return "-" if sae.dead_fraction is None else f"{100 * sae.dead_fraction:.1f}%"

    @admin.display(description="firing frequency per latent")
    def frequencies(self, sae: SparseAutoencoder) -> str:
        if not sae.firing_frequency:
            return "-"
        values = np.array(sae.firing_frequency)
        alive = values[values > 0]
        quantiles = np.quantile(alive, [0.1, 0.5, 0.9]) if len(alive) else np.zeros(3)
        return (
            f"{len(alive)} of {len(values)} latents fire; among them 10th, 50th and 90th percentiles "
            f"{100 * quantiles[0]:.3f}%, {100 * quantiles[1]:.3f}%, {100 * quantiles[2]:.3f}% of tokens; "
            f"most frequent {100 * values.max():.2f}%"
        )
