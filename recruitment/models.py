"""Recruitment settings and state per study, what MTurk and Prolific report, and the payment ledger.

experiments.Study says which recruiter a study uses; everything that recruiter
needs lives here, one-to-one with the study (Recruitment), with defaults from
docs/protocols.md §5.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import ClassVar

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from experiments.models import Session, Study, forget_cached_studies
from experiments.recruiters import recruiter_choices
from recruitment.errors import RecruitmentError

# MTurk charges a 40% fee instead of 20% on HITs of 10 or more assignments.
MAX_HIT_SIZE = 9


def default_locales() -> list[str]:
    return ["US", "CA", "GB", "AU", "NZ", "IE"]


class LinkGroup(models.Model):
    """Studies of which a worker may take only one.

    Every launched study belongs to a group (a study launched alone gets its
    own), because a study posts several HITs and a worker must not take two
    of those either. On MTurk the group is one "took part" qualification.
    """

    name = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class TookPartQualification(models.Model):
    """The MTurk qualification type granted to every worker of a group (sandbox and live differ)."""

    group = models.ForeignKey(LinkGroup, on_delete=models.CASCADE, related_name="qualifications")
    sandbox = models.BooleanField()
    qualification_type_id = models.CharField(max_length=64)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["group", "sandbox"], name="one_took_part_qualification_per_env")
        ]


class Recruitment(models.Model):
    """How a study recruits and pays, and where its recruitment stands."""

    class RejectionCategory(models.TextChoices):
        # Prolific's categories; MTurk takes only the feedback text.
        FAILED_CHECK = "FAILED_CHECK", "failed attention checks"
        LOW_EFFORT = "LOW_EFFORT", "low effort"
        TOO_QUICKLY = "TOO_QUICKLY", "too quickly"
        FAILED_INSTRUCTIONS = "FAILED_INSTRUCTIONS", "did not follow instructions"
        OTHER = "OTHER", "other"

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="recruitment")
    group = models.ForeignKey(
        LinkGroup,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="recruitments",
        help_text="Linked studies: a worker takes at most one study of the group.",
    )

    # What workers see (§5)
    title = models.CharField(max_length=128, default="Which image matches the examples?")
    description = models.TextField(
        max_length=2000,
        default="Look at example images and pick the one that fits them best (about 11 minutes). "
        "Please do not take part if you are colour-blind or visually impaired.",
    )
    keywords = models.CharField(max_length=1000, default="images, perception, research, psychology")
    reward = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        default=Decimal("2.79"),
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="Per assignment (MTurk: USD; Prolific: the workspace currency).",
    )
    estimated_minutes = models.PositiveIntegerField(
        default=11, help_text="Prolific: estimated completion time."
    )
    lifetime_s = models.PositiveIntegerField(default=4 * 3600, help_text="How long a HIT stays listed.")
    assignment_duration_s = models.PositiveIntegerField(
        default=2 * 3600, help_text="How long a worker has once they accept."
    )
    auto_approval_delay_s = models.PositiveIntegerField(
        default=3 * 24 * 3600, help_text="MTurk approves a submission by itself after this long."
    )
    frame_height = models.PositiveIntegerField(
        default=0, help_text="ExternalQuestion frame height in pixels; 0 fills the worker's window."
    )
    hit_size = models.PositiveIntegerField(
        default=MAX_HIT_SIZE,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_HIT_SIZE)],
        help_text="Assignments per HIT (MTurk's fee doubles at 10 or more).",
    )

    # Who may take part on MTurk live (§5); the sandbox has no such workers, so it gets none of these.
    locales = models.JSONField(default=default_locales, help_text="Worker countries (ISO 3166 codes).")
    min_hits_approved = models.PositiveIntegerField(default=2000)
    min_approval_rate = models.PositiveIntegerField(default=99, validators=[MaxValueValidator(100)])

    # Budget
    over_recruitment = models.DecimalField(
        max_digits=4, decimal_places=2, default=Decimal("0.20"),
        help_text="Allowance for sessions that fail the checks, as a fraction of the sessions needed.",
    )
    budget_cap = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True,
        help_text="Recruitment stops here (fees included); empty: the estimate with its allowance.",
    )

    # Payment rules: approve everyone by default (as IMI did)
    reject_failing = models.BooleanField(default=False, help_text="Reject sessions that fail the checks.")
    rejection_feedback = models.TextField(
        blank=True, help_text="Shown to rejected workers; required to reject."
    )
    rejection_category = models.CharField(
        max_length=30, choices=RejectionCategory.choices, default=RejectionCategory.FAILED_CHECK
    )
    bonus_passing = models.DecimalField(
        max_digits=6, decimal_places=2, default=Decimal("0.00"), help_text="Bonus for sessions that pass."
    )
    bonus_reason = models.CharField(max_length=500, default="Thank you for your careful answers.")

    # State
    sandbox = models.BooleanField(default=True, help_text="MTurk: which marketplace it was launched on.")
    launched_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=200, blank=True)
    budget_reached_at = models.DateTimeField(null=True, blank=True)
    hit_type_id = models.CharField(max_length=64, blank=True)
    prolific_study_id = models.CharField(max_length=64, blank=True)
    prolific_status = models.CharField(max_length=30, blank=True, help_text="As Prolific last reported it.")
    prolific_places = models.PositiveIntegerField(default=0, help_text="total_available_places on Prolific.")
    last_synced_at = models.DateTimeField(null=True, blank=True)
    sync_lease_until = models.DateTimeField(
        null=True, blank=True, help_text="Held by the sync running now, so that two never top up at once."
    )
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    reconcile_report = models.JSONField(default=dict, blank=True)
    reconciled_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"recruitment of {self.study}"

    def clean(self) -> None:
        if self.reject_failing and not self.rejection_feedback.strip():
            raise ValidationError({"rejection_feedback": "MTurk and Prolific require a reason to reject."})
        unknown = [code for code in self.locales if not (isinstance(code, str) and len(code) == 2)]
        if unknown:
            raise ValidationError({"locales": f"Not two-letter country codes: {unknown}"})

    @property
    def backend(self) -> str:
        return self.study.recruiter

    @property
    def is_recruiting(self) -> bool:
        return bool(self.launched_at) and not self.paused_at and not self.closed_at

    def note_budget(self, *, cut_short: bool) -> None:
        """Remember since when the cap keeps recruitment short of the target (shown in the admin)."""
        self.budget_reached_at = (self.budget_reached_at or timezone.now()) if cut_short else None
        self.save(update_fields=["budget_reached_at"])

    def close_for_target(self, passing: int, needed: int) -> None:
        self.closed_at = timezone.now()
        self.close_reason = f"target met: {passing} passing sessions of {needed} needed"
        self.save(update_fields=["closed_at", "close_reason"])


class HIT(models.Model):
    """One MTurk HIT, written before CreateHITWithHITType with the token that call carries."""

    class State(models.TextChoices):
        PENDING = "pending", "not yet confirmed by MTurk"
        CREATED = "created", "created"
        FAILED = "failed", "creation refused"

    recruitment = models.ForeignKey(Recruitment, on_delete=models.CASCADE, related_name="hits")
    sandbox = models.BooleanField()
    hit_type_id = models.CharField(max_length=64)
    hit_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    token = models.CharField(max_length=64, unique=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    max_assignments = models.PositiveIntegerField()
    mturk_status = models.CharField(max_length=20, blank=True, help_text="HITStatus as last seen.")
    expires_at = models.DateTimeField(null=True, blank=True)
    available = models.PositiveIntegerField(default=0)
    pending = models.PositiveIntegerField(default=0, help_text="Accepted, not yet submitted.")
    completed = models.PositiveIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True, help_text="When the counts were read.")
    created_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["recruitment", "created_at", "pk"]
        verbose_name = "HIT"

    def __str__(self) -> str:
        return self.hit_id or f"(pending {self.token})"

    @property
    def mturk_id(self) -> str:
        """The HIT's id on MTurk, which only a HIT MTurk confirmed has."""
        if not self.hit_id:
            raise RecruitmentError(f"HIT {self.token} has no MTurk id: MTurk never confirmed it.")
        return self.hit_id

    def is_open(self, now: datetime) -> bool:
        """Can still be accepted by new workers."""
        return self.open_for(now) > timedelta(0)

    def open_for(self, now: datetime) -> timedelta:
        """How much longer new workers can accept it; nothing once it expired or MTurk closed it."""
        if (
            self.state != self.State.CREATED
            or self.expires_at is None
            or self.mturk_status not in ("", "Assignable", "Unassignable")
        ):
            return timedelta(0)
        return max(timedelta(0), self.expires_at - now)


class Assignment(models.Model):
    """One worker's assignment. MTurk reuses an assignment id after a return, so the key is (id, worker)."""

    class Status(models.TextChoices):
        ACCEPTED = "accepted", "accepted (working)"
        SUBMITTED = "submitted", "submitted"
        APPROVED = "approved", "approved"
        REJECTED = "rejected", "rejected"
        RETURNED = "returned", "returned"
        ABANDONED = "abandoned", "abandoned (time ran out)"

    recruitment = models.ForeignKey(Recruitment, on_delete=models.CASCADE, related_name="assignments")
    hit = models.ForeignKey(HIT, on_delete=models.SET_NULL, null=True, blank=True, related_name="assignments")
    assignment_id = models.CharField(max_length=64)
    worker_id = models.CharField(max_length=64)
    session = models.OneToOneField(
        Session, on_delete=models.SET_NULL, null=True, blank=True, related_name="mturk_assignment"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACCEPTED)
    accepted_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    auto_approval_at = models.DateTimeField(null=True, blank=True)
    qualified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the took-part qualification was granted."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["assignment_id", "worker_id"], name="unique_assignment_worker")
        ]
        ordering: ClassVar[list[str]] = ["recruitment", "accepted_at", "pk"]

    def __str__(self) -> str:
        return f"{self.assignment_id} ({self.worker_id})"


class ProlificSubmission(models.Model):
    recruitment = models.ForeignKey(Recruitment, on_delete=models.CASCADE, related_name="submissions")
    submission_id = models.CharField(max_length=64, unique=True)
    participant_id = models.CharField(max_length=64)
    status = models.CharField(max_length=30, help_text="Prolific's status, e.g. AWAITING REVIEW.")
    session = models.OneToOneField(
        Session, on_delete=models.SET_NULL, null=True, blank=True, related_name="prolific_submission"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["recruitment", "started_at", "pk"]

    def __str__(self) -> str:
        return self.submission_id


class Payment(models.Model):
    """A ledger row: one approval, rejection or bonus, written before the call that makes it.

    The row, not the recruiter, decides whether to pay: a DONE row is never
    sent again, a SENDING row is held by one worker for LEASE, and a row
    whose outcome is unknown is checked against the recruiter before it is
    sent again (MTurk honours the token for 24 hours only).
    """

    class Kind(models.TextChoices):
        APPROVE = "approve", "approve"
        REJECT = "reject", "reject"
        BONUS = "bonus", "bonus"

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        SENDING = "sending", "sent, outcome not yet known"
        DONE = "done", "done"
        FAILED = "failed", "failed (see error)"

    recruitment = models.ForeignKey(Recruitment, on_delete=models.PROTECT, related_name="payments")
    backend = models.CharField(max_length=20, choices=recruiter_choices)
    sandbox = models.BooleanField(default=False, help_text="MTurk: paid on the sandbox.")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    session = models.ForeignKey(Session, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    external_id = models.CharField(max_length=64, help_text="MTurk assignment id or Prolific submission id.")
    worker_id = models.CharField(max_length=64, help_text="MTurk worker id or Prolific participant id.")
    amount = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0.00"))
    message = models.TextField(
        blank=True, help_text="Bonus reason or rejection feedback, shown to the worker."
    )
    rejection_category = models.CharField(max_length=30, blank=True)
    token = models.CharField(max_length=64, unique=True, help_text="UniqueRequestToken (MTurk).")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="First time the call was sent.")
    done_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    remote_ref = models.CharField(max_length=64, blank=True, help_text="Prolific: the bulk bonus payment id.")
    response = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["backend", "external_id", "kind"], name="one_payment_per_kind")
        ]
        ordering: ClassVar[list[str]] = ["recruitment", "created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.kind} {self.external_id} ({self.status})"


# Which studies are linked is cached with the study (recruitment.backends.linked_study_ids): a change made in
# this process is seen at once.
for _links in (LinkGroup, Recruitment):
    post_save.connect(forget_cached_studies, sender=_links)
    post_delete.connect(forget_cached_studies, sender=_links)
