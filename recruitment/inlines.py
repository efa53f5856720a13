"""Read-only tables on a recruitment's admin page; each backend names its own (Backend.admin_inlines)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from recruitment import selectors
from recruitment.models import Assignment, Payment, ProlificSubmission


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class WorkInline(ReadOnlyInline):
    """Rows that each stand for one participant's work, with the verdict of its session's checks."""

    readonly_fields = ("checks",)

    @admin.display(description="checks")
    def checks(self, work: Assignment | ProlificSubmission) -> str:
        return selectors.check_summary(work.session)


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = (
        "kind", "external_id", "worker_id", "amount", "status", "attempts", "token", "done_at", "last_error"
    )
