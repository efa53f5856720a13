"""Jobs are written by tasks only; the admin shows them read-only."""

from django.contrib import admin
from django.utils.html import format_html

from workers.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("__str__", "study", "status", "stage", "progress", "message", "updated_at")
    list_filter = ("kind", "status")
    search_fields = ("study__slug", "message", "error")
    fields = (
        "kind", "study", "status", "stage", "progress", "message", "error_text",
        "created_at", "started_at", "finished_at", "updated_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="progress")
    def progress(self, job: Job) -> str:
        return f"{job.done}/{job.total} ({job.percent:.0f}%)" if job.total else "-"

    @admin.display(description="error")
    def error_text(self, job: Job) -> str:
        return format_html("<pre>{}</pre>", job.error) if job.error else "-"
