"""Prolific's table on a recruitment's admin page: its submissions."""

from __future__ import annotations

from recruitment.inlines import WorkInline
from recruitment.models import ProlificSubmission


class SubmissionInline(WorkInline):
    model = ProlificSubmission
    fields = ("submission_id", "participant_id", "status", "session", "checks", "started_at", "completed_at")
