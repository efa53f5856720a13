"""The researcher's recruitment desk: per study, HITs or submissions, assignments, the ledger.

Admin classes stay thin: each button is a view that calls one service and
reports the outcome as a message; errors the tasks hit show on the study.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import InlineModelAdmin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from recruitment import ledger, selectors, services
from recruitment.backends import backend_for
from recruitment.errors import RecruitmentError
from recruitment.inlines import PaymentInline
from recruitment.models import Assignment, LinkGroup, Payment, Recruitment

STATE_FIELDS = (
    "launched_at", "paused_at", "closed_at", "close_reason", "budget_reached_at", "sandbox", "hit_type_id",
    "prolific_study_id", "prolific_status", "prolific_places", "last_synced_at", "error",
    "progress_summary", "cost_summary", "ledger_table", "reconciliation",
)


@admin.register(Recruitment)
class RecruitmentAdmin(admin.ModelAdmin):
    list_display = ("study", "backend", "marketplace", "state", "progress_summary", "last_synced_at", "error")
    list_select_related = ("study",)
    search_fields = ("study__slug", "study__name")
    readonly_fields = STATE_FIELDS
    change_form_template = "admin/recruitment/recruitment/change_form.html"
    fieldsets = (
        (None, {"fields": ("study", "group")}),
        ("What workers see", {"fields": ("title", "description", "keywords", "reward", "estimated_minutes")}),
        ("MTurk", {"fields": ("lifetime_s", "assignment_duration_s", "auto_approval_delay_s", "frame_height",
                              "hit_size", "locales", "min_hits_approved", "min_approval_rate")}),
        ("Budget", {"fields": ("over_recruitment", "budget_cap", "cost_summary")}),
        ("Payment rules (approve everyone unless set)", {"fields": (
            "reject_failing", "rejection_feedback", "rejection_category", "bonus_passing", "bonus_reason")}),
        ("State", {"fields": tuple(f for f in STATE_FIELDS if f != "cost_summary")}),
    )

    def get_inlines(self, request: HttpRequest, obj: Recruitment | None) -> list[type[InlineModelAdmin[Any, Any]]]:
        if obj is None:
            return []
        return [*backend_for(obj.backend).admin_inlines, PaymentInline]

    @admin.display(description="marketplace")
    def marketplace(self, recruitment: Recruitment) -> str | None:
        return backend_for(recruitment.backend).marketplace(recruitment)

    @admin.display(description="state")
    def state(self, recruitment: Recruitment) -> str:
        if recruitment.closed_at:
            return f"closed ({recruitment.close_reason})"
        if recruitment.paused_at:
            return "paused"
        if recruitment.budget_reached_at:
            return "recruiting, stopped short by the budget cap"
        return "recruiting" if recruitment.launched_at else "not launched"

    @admin.display(description="error")
    def error(self, recruitment: Recruitment) -> str:
        if not recruitment.last_error:
            return "-"
        return format_html('<strong style="color:#ba2121">{}</strong> ({})', recruitment.last_error,
                           recruitment.last_error_at)

    @admin.display(description="passing / needed")
    def progress_summary(self, recruitment: Recruitment) -> str:
        progress = selectors.progress(recruitment, timezone.now())
        return (
            f"{progress.passing} / {progress.needed} passing; {progress.failing} failing, "
            f"{progress.unchecked} unchecked, {progress.working} working, {progress.open_places} open places"
        )

    @admin.display(description="cost")
    def cost_summary(self, recruitment: Recruitment) -> str:
        estimate = selectors.cost_estimate(recruitment)
        text = (
            f"estimate {estimate.total}: {estimate.assignments} assignments x {estimate.cost_per_assignment} "
            f"(reward {estimate.reward} + {estimate.fee_rate:.0%} fee) + bonuses; "
            f"cap {selectors.budget_cap(recruitment)}"
        )
        backend = backend_for(recruitment.backend)
        committed = backend.committed_spend(recruitment, timezone.now()) if recruitment.launched_at else None
        if committed is not None:
            text += f"; committed so far {committed}"
        if recruitment.budget_reached_at:
            text += f"; BUDGET CAP REACHED at {recruitment.budget_reached_at}"
        return text

    @admin.display(description="ledger")
    def ledger_table(self, recruitment: Recruitment) -> str:
        lines = [f"{row['kind']} {row['status']}: {row['rows']} ({row['amount']})"
                 for row in selectors.ledger_summary(recruitment)]
        return "; ".join(lines) or "-"

    @admin.display(description="reconciliation")
    def reconciliation(self, recruitment: Recruitment) -> str:
        if not recruitment.reconciled_at:
            return "never run"
        differences = recruitment.reconcile_report.get("differences", [])
        summary = "; ".join(f"{d['problem']} {d['external_id']}: {d['detail']}" for d in differences)
        return f"{recruitment.reconciled_at}: {len(differences)} difference(s). {summary}"

    # Buttons on the change page, each a POST to one of these views.

    def get_urls(self) -> list[URLPattern]:
        def view(function: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
            return self.admin_site.admin_view(function)

        return [
            path("<int:pk>/launch/<str:marketplace>/", view(self.launch_view), name="recruitment_launch"),
            path("<int:pk>/payments/", view(self.payments_view), name="recruitment_payments"),
            path("<int:pk>/do/<str:operation>/", view(self.operation_view), name="recruitment_operation"),
        ] + super().get_urls()

    def _recruitment(self, request: HttpRequest, pk: int) -> Recruitment:
        recruitment = get_object_or_404(Recruitment.objects.select_related("study"), pk=pk)
        if not self.has_change_permission(request, recruitment):
            raise PermissionDenied
        return recruitment

    def _back(self, recruitment: Recruitment) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:recruitment_recruitment_change", args=[recruitment.pk]))

    def _run(
        self, request: HttpRequest, recruitment: Recruitment, done: str, action: Callable[[], Any]
    ) -> None:
        try:
            with transaction.atomic():
                action()
        except RecruitmentError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, done, messages.SUCCESS)

    def launch_view(self, request: HttpRequest, pk: int, marketplace: str) -> HttpResponse:
        """Sandbox launches at once; live first shows the cost and asks for confirmation."""
        recruitment = self._recruitment(request, pk)
        sandbox = marketplace == "sandbox"
        if request.method == "POST":
            try:
                confirmed = None if sandbox else Decimal(request.POST.get("confirmed_total", ""))
            except InvalidOperation:
                confirmed = None
            self._run(request, recruitment, f"Launched ({marketplace}); HITs are being posted.",
                      lambda: services.launch(recruitment, sandbox=sandbox, confirmed_total=confirmed))
            return self._back(recruitment)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Launch {recruitment.study} ({marketplace})",
            "recruitment": recruitment,
            "marketplace": marketplace,
            "estimate": selectors.cost_estimate(recruitment),
            "cap": selectors.budget_cap(recruitment),
            "opts": self.model._meta,
        }
        return render(request, "admin/recruitment/confirm_launch.html", context)

    def operation_view(self, request: HttpRequest, pk: int, operation: str) -> HttpResponse:
        recruitment = self._recruitment(request, pk)
        operations = {
            "pause": ("Paused; open HITs are being expired.", lambda: services.pause(recruitment)),
            "resume": ("Resumed; topping up.", lambda: services.resume(recruitment)),
            "sync": ("Sync and top-up queued.", lambda: services.request_sync(recruitment)),
            "close": ("Closed; open HITs are being expired.", lambda: services.close(recruitment)),
            "reconcile": ("Reconciliation queued.", lambda: services.request_reconcile(recruitment)),
        }
        if request.method != "POST" or operation not in operations:
            return self._back(recruitment)
        done, action = operations[operation]
        self._run(request, recruitment, done, action)
        return self._back(recruitment)

    def payments_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The dry run; confirming it writes exactly those ledger rows and pays them."""
        recruitment = self._recruitment(request, pk)
        if request.method == "POST":
            self._run(request, recruitment, "Payments written to the ledger and queued.",
                      lambda: services.record_payments(recruitment, request.POST.get("digest", "")))
            return self._back(recruitment)
        plan = selectors.plan_payments(recruitment)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Payments for {recruitment.study}: dry run",
            "recruitment": recruitment,
            "plan": plan,
            "approvals": plan.count(Payment.Kind.APPROVE),
            "rejections": plan.count(Payment.Kind.REJECT),
            "bonuses": plan.count(Payment.Kind.BONUS),
            "opts": self.model._meta,
        }
        return render(request, "admin/recruitment/payment_plan.html", context)


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = (
        "recruitment", "kind", "external_id", "worker_id", "amount", "status", "attempts", "done_at",
        "last_error",
    )
    list_filter = ("status", "kind", "backend", "sandbox")
    search_fields = ("external_id", "worker_id", "token", "recruitment__study__slug")
    actions = ("retry", "mark_done")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # rows come from a confirmed dry run only

    def has_change_permission(self, request: HttpRequest, obj: Payment | None = None) -> bool:
        return False

    @admin.action(description="Retry failed payments (same token; looked up first if sent before)")
    def retry(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        for payment in queryset:
            self._each(request, payment, partial(services.retry_payment, payment))

    @admin.action(description="Mark done: I checked on the recruiter's site that it was paid")
    def mark_done(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        checked_by = request.user.get_username()
        for payment in queryset:
            self._each(request, payment, partial(ledger.mark_done_by_hand, payment, checked_by))

    def _each(self, request: HttpRequest, payment: Payment, action: Callable[[], None]) -> None:
        try:
            with transaction.atomic():
                action()
        except RecruitmentError as exc:
            self.message_user(request, str(exc), messages.ERROR)


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("assignment_id", "worker_id", "recruitment", "hit", "status", "session", "submitted_at",
                    "qualified_at")
    list_filter = ("status",)
    search_fields = ("assignment_id", "worker_id", "recruitment__study__slug")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Assignment | None = None) -> bool:
        return False


@admin.register(LinkGroup)
class LinkGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "studies", "created_at")

    @admin.display(description="studies")
    def studies(self, group: LinkGroup) -> str:
        return ", ".join(group.recruitments.values_list("study__slug", flat=True))
