"""The admin's analysis pages (thin: the reads are experiments.reports'): a study's report, the comparison
of several, a unit's drill-down, and the live view during collection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from experiments.models import Study
from stimuli.models import Unit

if TYPE_CHECKING:
    from analysis.rows import RowFilter

# pandas, scipy and matplotlib load with the first analysis page, not with every web process: the
# analysis modules are imported inside the views.


def _row_filter(request: HttpRequest) -> RowFilter:
    from analysis.rows import SESSIONS, RowFilter

    sessions = request.GET.get("sessions", "passing")
    if sessions not in SESSIONS:
        raise Http404(f"sessions must be one of {', '.join(SESSIONS)}")
    return RowFilter(sessions=sessions)


class StudyReportsMixin(admin.ModelAdmin):
    """Mixed into the study admin: its analysis pages and the action that compares studies."""

    def report_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("analysis/", view(self.compare_view), name="experiments_study_compare"),
            path("<int:pk>/analysis/", view(self.analysis_view), name="experiments_study_analysis"),
            path("<int:pk>/analysis/units/<int:unit_pk>/", view(self.unit_view), name="experiments_study_unit"),
            path("<int:pk>/live/", view(self.live_view), name="experiments_study_live"),
        ]

    @admin.display(description="analysis")
    def analysis_links(self, obj: Study) -> str:
        if not obj.pk:
            return "-"
        return format_html(
            '<a href="{}">report</a> &middot; <a href="{}">live view (running score per unit)</a>',
            reverse("admin:experiments_study_analysis", args=[obj.pk]),
            reverse("admin:experiments_study_live", args=[obj.pk]),
        )

    @admin.action(description="Analyse and compare the selected studies (report)")
    def analyse_studies(self, request: HttpRequest, queryset: QuerySet[Study]) -> HttpResponseRedirect:
        ids = ",".join(str(pk) for pk in queryset.order_by("pk").values_list("pk", flat=True))
        return HttpResponseRedirect(f"{reverse('admin:experiments_study_compare')}?ids={ids}")

    def _viewable(self, request: HttpRequest, studies: list[Study]) -> None:
        if not all(self.has_view_permission(request, study) for study in studies):
            raise PermissionDenied

    def _viewable_study(self, request: HttpRequest, pk: int) -> Study:
        study = get_object_or_404(Study, pk=pk)
        self._viewable(request, [study])
        return study

    def _report(self, request: HttpRequest, studies: list[Study], title: str) -> HttpResponse:
        from experiments.analysis_frames import analyze_database
        from experiments.reports import report_context, study_unit_ids, unit_key

        self._viewable(request, studies)
        row_filter = _row_filter(request)
        ids = study_unit_ids(studies)
        pks = {study.slug: study.pk for study in studies}

        def unit_url(slug: str, unit: Mapping[str, Any]) -> str | None:
            unit_pk = ids.get((slug, unit_key(unit)))
            if unit_pk is None:
                return None
            return reverse("admin:experiments_study_unit", args=[pks[slug], unit_pk])

        context = {
            **self.admin_site.each_context(request),
            **report_context(analyze_database(studies, row_filter=row_filter), unit_url),
            "title": title,
            "studies": studies,
            "sessions": row_filter.sessions,
        }
        return render(request, "admin/experiments/study/analysis.html", context)

    def analysis_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        study = get_object_or_404(Study, pk=pk)
        return self._report(request, [study], f"Analysis of {study}")

    def compare_view(self, request: HttpRequest) -> HttpResponse:
        try:
            ids = [int(text) for text in request.GET.get("ids", "").split(",") if text]
        except ValueError as exc:
            raise Http404("ids must be study ids separated by commas") from exc
        studies = list(Study.objects.filter(pk__in=ids).order_by("pk"))
        if not studies or len(studies) != len(set(ids)):
            raise Http404("No such studies.")
        return self._report(request, studies, f"Comparison of {', '.join(s.slug for s in studies)}")

    def unit_view(self, request: HttpRequest, pk: int, unit_pk: int) -> HttpResponse:
        from experiments.reports import unit_detail

        study = self._viewable_study(request, pk)
        unit = get_object_or_404(Unit.objects.select_related("model"), pk=unit_pk, study_units__study=study)
        context = {
            **self.admin_site.each_context(request),
            **unit_detail(study, unit, _row_filter(request)),
            "title": f"{study}: unit {unit.layer} #{unit.channel}",
            "study": study,
        }
        return render(request, "admin/experiments/study/analysis_unit.html", context)

    def live_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        from experiments.reports import live_units

        study = self._viewable_study(request, pk)
        context = {
            **self.admin_site.each_context(request),
            **live_units(study, _row_filter(request)),
            "title": f"Live: {study}",
            "study": study,
            "sessions": request.GET.get("sessions", "passing"),
        }
        return render(request, "admin/experiments/study/analysis_live.html", context)
