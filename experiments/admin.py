"""Researchers configure, render, open and export studies here; thin classes over services."""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django_stubs_ext import StrOrPromise

from experiments.copies import copy_study, free_slug
from experiments.derivation import DerivationRefused, build_derived_study
from experiments.export.bundle import write_bundle
from experiments.export.formats import CONTENT_TYPES, FORMATS
from experiments.export.responses import responses_table
from experiments.forms import PARAM_PREFIX, StudyForm, param_field_names, stored_protocol
from experiments.links import participant_url
from experiments.models import Event, Response, Session, SessionCheck, Study, StudyUnit, Trial
from experiments.recruiters import recruiter_for
from experiments.report_views import StudyReportsMixin
from experiments.selectors import (
    StudyProgress,
    participation,
    pickable_trials,
    pool_fit,
    study_progress,
    trial_pictures,
    unit_gallery,
)
from experiments.services import PICKABLE_KINDS, pick_trials
from protocols.params import ParamsError
from workers.selectors import job_row, recent_jobs
from workers.services import start_rendering, start_summary

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldOpts, _FieldsetSpec


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class StudyUnitProgressInline(ReadOnlyInline):
    model = StudyUnit
    verbose_name_plural = "units and progress (passing participants / target)"
    fields = ("unit", "role", "progress", "held", "statistics", "practice_value", "gallery")
    readonly_fields = fields
    # The summary at the top of the page says where the study stands; the table is there to look things up.
    classes = ("collapse",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[StudyUnit]:
        return StudyUnit.objects.select_related("unit", "study").with_progress()

    # The rows carry the counts with_progress() annotates.
    @admin.display(description="completed / target")
    def progress(self, obj: Any) -> str:
        if obj.role != StudyUnit.Role.MAIN:
            return "-"
        return f"{obj.completed} / {obj.study.target_per_unit}"

    @admin.display(description="slots held")
    def held(self, obj: Any) -> int:
        return int(obj.held)

    @admin.display(description="trials")
    def gallery(self, obj: StudyUnit) -> str:
        if not obj.pk:
            return "-"
        url = reverse("admin:experiments_study_gallery", args=[obj.study_id, obj.pk])
        return format_html('<a href="{}">see its trials</a>', url)


@admin.register(Study)
class StudyAdmin(StudyReportsMixin, admin.ModelAdmin):
    form = StudyForm
    list_display = (
        "slug", "name", "status", "protocol", "units_complete", "passing_sessions", "spend", "participant_link"
    )
    list_filter = ("status", "protocol", "recruiter")
    search_fields = ("slug", "name")
    readonly_fields = (
        "progress_summary", "job_panel", "pool_check", "participant_link", "analysis_links", "participation_summary",
        "completion_code", "created_at", "derived_from", "hand_picked", "practice_units", "ranking_input",
    )
    inlines = [StudyUnitProgressInline]
    actions = [
        "render_stimuli", "open_study", "close_study", "copy_studies", "build_derived", "summarize", "export_csv",
        "export_jsonl", "export_parquet", "export_bundle", "analyse_studies",
    ]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "progress_summary", "job_panel", "slug", "name", "status", "participant_link", "analysis_links",
                    "participation_summary", "completion_code",
                )
            },
        ),
        ("Design", {"fields": ("protocol", "condition", "model", "image_pool", "pool_check", "seed", "derived_from")}),
        (
            "Stimuli",
            {
                "fields": (
                    "n_units", "layers", "unit_kind", "sae", "max_latent_frequency", "pooling", "trials_per_unit",
                    "batches_used", "image_size", "resize_to", "ranking_crop", "ranking_input",
                )
            },
        ),
        (
            "Session",
            {
                "fields": (
                    "n_main_trials", "n_catch_trials", "n_practice_trials", "target_per_unit", "lock_ms",
                    "feedback_delay_ms", "feedback_ms", "main_feedback", "slot_timeout_minutes", "hand_picked",
                    "practice_units",
                )
            },
        ),
        (
            "Exclusion checks",
            {
                "fields": (
                    "max_practice_attempts", "min_instruction_s", "min_total_s", "max_total_s",
                    "max_lock_boundary_share", "min_timing_variation", "hard_units_max_p", "hard_units_share",
                    "hard_units_min_answers",
                )
            },
        ),
        ("Recruitment", {"fields": ("recruiter", "accepts_unsigned_links", "consent_timeout_minutes")}),
        (
            "Participant page",
            {
                "fields": (
                    "devices", "min_window_width", "min_window_height", "offer_fullscreen", "enforce_instruction_time",
                    "preload_trials", "calibrate_size", "image_size_mm",
                )
            },
        ),
        (
            "Consent",
            {
                "fields": (
                    "researcher", "institution", "contact", "ethics_approval", "duration_minutes", "pay", "consent_text"
                ),
                "description": "Shown on the consent page; pay, when blank, is the recruiter's reward.",
            },
        ),
    )

    class Media:
        js = ("admin_desk/job_panel.js",)
        css = {"all": ("admin_desk/desk.css",)}
    FIXED_NOTE = (
        "This study has stimuli: what shaped them or what participants see is fixed (the disabled fields). "
        "To run another design, add a new study; the action 'Copy with its stimuli' runs this design again."
    )

    def get_fieldsets(self, request: HttpRequest, obj: Study | None = None) -> _FieldsetSpec:
        study = obj or Study()
        params: _FieldOpts = {
            "fields": tuple(param_field_names(study)),
            "description": "Blank fields take the published defaults.",
        }
        # Copies, so that the note on a rendered study never sticks to the class's fieldsets.
        fieldsets: list[tuple[StrOrPromise | None, _FieldOpts]] = [
            (name, {**options}) for name, options in self.fieldsets
        ]
        fieldsets.insert(3, (f"{stored_protocol(study).title} parameters", params))
        if study.has_stimuli:
            fieldsets[0][1]["description"] = self.FIXED_NOTE
        return fieldsets

    def get_form(self, request: HttpRequest, obj: Study | None = None, change: bool = False, **kwargs: Any) -> Any:
        # The parameters are fields the form adds itself; the model form factory must not look for them.
        fields = flatten_fieldsets(self.get_fieldsets(request, obj))
        kwargs["fields"] = [name for name in fields if not name.startswith(PARAM_PREFIX)]
        return super().get_form(request, obj, change, **kwargs)

    @admin.display(description="participant links")
    def participant_link(self, obj: Study) -> str:
        if not obj.pk:
            return "-"
        pilot = participant_url(obj, "pilot", base="")
        return format_html(
            '<a href="{}" target="_blank">signed pilot link</a> &middot; <a href="{}">make signed links</a>',
            pilot,
            reverse("admin:experiments_study_links", args=[obj.pk]),
        )

    @staticmethod
    def _progress(obj: Study) -> StudyProgress:
        """The study's progress, read once for the changelist's two columns of it."""
        found = vars(obj).get("_progress")
        if found is None:
            found = vars(obj)["_progress"] = study_progress(obj)
        return found

    @admin.display(description="units complete")
    def units_complete(self, obj: Study) -> str:
        progress = self._progress(obj)
        return f"{progress.units_complete} / {len(progress.units)}"

    @admin.display(description="passing sessions / needed")
    def passing_sessions(self, obj: Study) -> str:
        progress = self._progress(obj)
        return f"{progress.passing} / {progress.needed}"

    @admin.display(description="spend / budget")
    def spend(self, obj: Study) -> str:
        spend = recruiter_for(obj.recruiter).spend(obj)
        if spend is None:
            return "-"
        return f"{spend.spent} / {spend.budget} {spend.currency}".strip()

    @admin.display(description="progress")
    def progress_summary(self, obj: Study) -> str:
        if not obj.pk:
            return "-"
        progress = study_progress(obj)
        return render_to_string("admin/experiments/study/progress.html", {"progress": progress, "study": obj})

    @admin.display(description="jobs")
    def job_panel(self, obj: Study) -> str:
        if not obj.pk:
            return "-"
        url = reverse("admin:experiments_study_jobs", args=[obj.pk])
        rows = [job_row(job) for job in recent_jobs(obj)]
        return render_to_string("admin/experiments/study/jobs.html", {"rows": rows, "url": url})

    @admin.display(description="pool size")
    def pool_check(self, obj: Study) -> str:
        if not obj.pk:
            return "Checked once saved: the pool's image count beside the fewest images this design needs."
        try:
            fit = pool_fit(obj)
        except ParamsError as exc:
            return f"The parameters are not valid: {exc}"
        needed = "no pool is large enough" if fit.needed is None else f"needs at least {fit.needed}"
        if fit.images is None:
            return f"The pool cannot be opened ({fit.error}); this design {needed}."
        verdict = "enough" if fit.needed is not None and fit.images >= fit.needed else "too few: render would fail"
        return f"{fit.images} images in {obj.image_pool}; this design {needed} ({verdict})."

    @admin.display(description="places")
    def participation_summary(self, obj: Study) -> str:
        if not obj.pk:
            return "-"
        now = participation(obj)
        refused = ", ".join(f"{label}: {count}" for label, count in now.refused.items()) or "none"
        return (
            f"{now.holding} sessions hold {now.slots_held} unit places; {now.unconsented} started without "
            f"consenting yet (holding nothing); {now.lapsed} holds lapsed; refused starts: {refused}"
        )

    @admin.display(description="practice and catch trials")
    def hand_picked(self, obj: Study) -> str:
        if not obj.pk:
            return "-"
        counts = [
            f"{count} hand-picked" if (count := getattr(obj, f"{purpose}_trials").count()) else "automatic"
            for purpose in PICKABLE_KINDS
        ]
        return format_html(
            'practice: {}; catch: {} &middot; <a href="{}">pick them, seeing the trials</a>',
            *counts, reverse("admin:experiments_study_trials", args=[obj.pk]),
        )

    @admin.display(description="practice units")
    def practice_units(self, obj: Study) -> str:
        """The rule the render chose the study's own practice units by (each unit's value is in the units table),
        and whether hand-picked trials are shown instead."""
        if not obj.practice_rule:
            return "chosen when the stimuli are rendered"
        picked = obj.practice_trials.count() if obj.pk else 0
        if picked:
            return f"{obj.practice_rule} (not in use: {picked} hand-picked practice trials are shown instead)"
        return obj.practice_rule

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/links/", view(self.links_view), name="experiments_study_links"),
            path("<int:pk>/jobs.json", view(self.jobs_view), name="experiments_study_jobs"),
            path("<int:pk>/units/<int:unit_pk>/gallery/", view(self.gallery_view), name="experiments_study_gallery"),
            path("<int:pk>/trials/", view(self.trials_view), name="experiments_study_trials"),
            *self.report_urls(),
            *super().get_urls(),
        ]

    def jobs_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        """The study's recent jobs, which the job panel polls while one runs."""
        study = self._viewable_study(request, pk)
        return JsonResponse({"jobs": [job_row(job) for job in recent_jobs(study)]})

    def gallery_view(self, request: HttpRequest, pk: int, unit_pk: int) -> HttpResponse:
        """A unit's rendered trials as participants see them, with the answer marked for the researcher."""
        study = self._viewable_study(request, pk)
        study_unit = get_object_or_404(StudyUnit.objects.select_related("unit", "study"), pk=unit_pk, study=study)
        protocol = study.protocol_plugin
        context = {
            **self.admin_site.each_context(request),
            "title": f"Trials of {study_unit.unit} in {study}",
            "study": study,
            "study_unit": study_unit,
            "protocol": protocol,
            "screens": unit_gallery(study_unit),
        }
        return render(request, "admin/experiments/study/gallery.html", context)

    def trials_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Hand-pick the study's practice and catch trials among any study's rendered trials, shown as images."""
        study = get_object_or_404(Study, pk=pk)
        if not self.has_change_permission(request, study):
            raise PermissionDenied
        if request.method == "POST":
            purpose = request.POST.get("purpose", "")
            try:
                count = pick_trials(study, purpose, [int(pk) for pk in request.POST.getlist("trial") if pk.isdigit()])
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                done = f"{count} hand-picked {purpose} trials" if count else f"automatic {purpose} trials again"
                messages.success(request, f"{study}: {done}.")
            return redirect(request.get_full_path())
        source = Study.objects.filter(pk=request.GET.get("from", pk)).first() or study
        sections = []
        for purpose in PICKABLE_KINDS:
            picked = list(getattr(study, f"{purpose}_trials").select_related("study", "unit"))
            others = pickable_trials(source, purpose).exclude(pk__in=[trial.pk for trial in picked])
            sections.append((purpose, trial_pictures(picked), trial_pictures(others)))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Practice and catch trials of {study}",
            "study": study,
            "source": source,
            "sources": Study.objects.filter(protocol=study.protocol, trials__isnull=False).distinct().order_by("slug"),
            "sections": sections,
            "kinds": Trial.Kind,
        }
        return render(request, "admin/experiments/study/trials.html", context)

    def links_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Signed links for the participant ids a researcher enters, one per line."""
        study = self._viewable_study(request, pk)
        ids = [line.strip() for line in request.POST.get("participants", "").splitlines() if line.strip()]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Signed participant links of {study}",
            "study": study,
            "links": [(participant, participant_url(study, participant)) for participant in ids],
            "participants": request.POST.get("participants", ""),
        }
        return render(request, "admin/experiments/study/links.html", context)

    @admin.action(description="Render stimuli (sample units, record activations, write trials)")
    def render_stimuli(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        for study in queryset:
            try:
                job = start_rendering(study)
            except ValidationError as exc:
                self.message_user(request, f"{study} cannot be rendered: {' '.join(exc.messages)}", messages.ERROR)
                continue
            self.message_user(request, f"{study}: rendering queued as job #{job.pk}.")

    @admin.action(description="Open to participants")
    def open_study(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        not_ready = queryset.exclude(status__in=[Study.Status.READY, Study.Status.CLOSED])
        if not_ready.exists():
            names = ", ".join(s.slug for s in not_ready)
            self.message_user(request, f"Render stimuli first: {names}.", messages.ERROR)
            return
        queryset.update(status=Study.Status.OPEN)

    @admin.action(description="Close to participants")
    def close_study(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        queryset.filter(status=Study.Status.OPEN).update(status=Study.Status.CLOSED)

    @admin.action(description="Copy with its stimuli (to run the design again, e.g. with another recruiter)")
    def copy_studies(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        for study in queryset:
            try:
                copy = copy_study(study, free_slug(f"{study.slug}-copy"), name=f"{study.name[:190]} (copy)")
            except ValidationError as exc:
                self.message_user(request, f"{study}: {' '.join(exc.messages)}", messages.ERROR)
                continue
            url = reverse("admin:experiments_study_change", args=[copy.pk])
            self.message_user(request, format_html('{}: copied as <a href="{}">{}</a>.', study, url, copy))

    @admin.action(description="Build the verify study (from a describe study's names; the two are linked)")
    def build_derived(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        for study in queryset:
            try:
                built = build_derived_study(study)
            except (DerivationRefused, ValidationError) as exc:
                self.message_user(request, f"{study}: {exc}", messages.ERROR)
                continue
            url = reverse("admin:experiments_study_change", args=[built.pk])
            self.message_user(request, format_html('{}: built <a href="{}">{}</a>, ready to open.', study, url, built))

    @admin.action(description="Compute unit statistics (background job: agreement of names)")
    def summarize(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        for study in queryset:
            if not study.protocol_plugin.unit_statistics:
                self.message_user(request, f"{study}: its protocol computes no unit statistics.", messages.WARNING)
                continue
            job = start_summary(study)
            self.message_user(request, f"{study}: unit statistics queued as job #{job.pk}.")

    def _export(self, queryset: QuerySet[Study], fmt: str) -> StreamingHttpResponse:
        chunks = FORMATS[fmt](responses_table(queryset.order_by("pk")))
        response = StreamingHttpResponse(chunks, content_type=CONTENT_TYPES[fmt])
        response["Content-Disposition"] = f'attachment; filename="responses.{fmt}"'
        return response

    @admin.action(description="Export responses as CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Study]) -> StreamingHttpResponse:
        return self._export(queryset, "csv")

    @admin.action(description="Export responses as JSON Lines")
    def export_jsonl(self, request: HttpRequest, queryset: QuerySet[Study]) -> StreamingHttpResponse:
        return self._export(queryset, "jsonl")

    @admin.action(description="Export responses as Parquet")
    def export_parquet(self, request: HttpRequest, queryset: QuerySet[Study]) -> StreamingHttpResponse:
        return self._export(queryset, "parquet")

    @admin.action(description="Export the dataset bundle (zip: responses, shown images, units, sessions, datasheet)")
    def export_bundle(self, request: HttpRequest, queryset: QuerySet[Study]) -> FileResponse:
        # A zip is written whole before it is sent: through a temporary file, so memory stays flat.
        spool = tempfile.TemporaryFile()
        write_bundle(queryset.order_by("pk"), spool)
        spool.seek(0)
        return FileResponse(spool, as_attachment=True, filename="dataset.zip", content_type="application/zip")


class CheckInline(ReadOnlyInline):
    model = SessionCheck
    fields = ("name", "value", "rule", "passed")
    readonly_fields = fields


class ResponseInline(ReadOnlyInline):
    model = Response
    fields = ("trial_index", "answer", "correct", "score", "rt_ms", "created_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Response]:
        return super().get_queryset(request).select_related("session_trial")

    @admin.display(description="index")
    def trial_index(self, obj: Response) -> int:
        return obj.session_trial.index


class EventInline(ReadOnlyInline):
    model = Event
    fields = ("type", "payload", "created_at")
    readonly_fields = fields


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = (
        "pseudonym_short", "study", "source", "status", "passed", "completion_code", "practice_attempts",
        "created_at", "completed_at",
    )
    list_filter = ("study", "status", "passed", "source", "signed_link")
    # A completion code a participant sends in is looked up here.
    search_fields = ("pseudonym", "participant_id", "completion_code")
    # Never the bearer token: whoever reads it could act as the participant.
    exclude = ("token",)
    readonly_fields = [f.name for f in Session._meta.fields if f.name != "token"]
    inlines = [CheckInline, EventInline, ResponseInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="participant")
    def pseudonym_short(self, obj: Session) -> str:
        return obj.pseudonym[:12]
