"""MTurk's tables on a recruitment's admin page: its HITs and their assignments."""

from __future__ import annotations

from recruitment.inlines import ReadOnlyInline, WorkInline
from recruitment.models import HIT, Assignment


class HITInline(ReadOnlyInline):
    model = HIT
    fields = (
        "hit_id", "sandbox", "state", "mturk_status", "max_assignments", "available", "pending", "completed",
        "expires_at", "last_error",
    )


class AssignmentInline(WorkInline):
    model = Assignment
    fields = (
        "assignment_id", "worker_id", "status", "session", "checks", "accepted_at", "submitted_at",
        "qualified_at",
    )
