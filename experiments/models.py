"""Studies, their trials, and what participants did with them.

Every protocol parameter of ../shared/PROTOCOLS.md is a field whose default is
the published value, so a study keeps its own editable copy.
"""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, Q
from django.utils import timezone

from experiments.recruiters import recruiter_choices
from stimuli.models import ImagePool, StimulusImage, Unit, VisionModel


class Protocol(models.TextChoices):
    TWO_AFC = "2afc", "2-AFC (IMI)"
    LOCALIZABILITY = "localizability", "localizability"
    NAMEABILITY = "nameability", "nameability"


class Condition(models.TextChoices):
    NATURAL = "natural", "natural references"
    SYNTHETIC = "synthetic", "synthetic references (feature visualizations)"


class Difficulty(models.TextChoices):
    EASY = "easy", "easy (queries just inside the reference pools)"
    MEDIUM = "medium", "medium (99th / 1st percentile)"
    HARD = "hard", "hard (95th / 5th percentile)"
    VERY_HARD = "very_hard", "very hard (85th / 15th percentile)"


class Study(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "draft"
        RENDERING = "rendering", "rendering stimuli"
        READY = "ready", "stimuli ready"
        OPEN = "open", "open to participants"
        CLOSED = "closed", "closed"

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    protocol = models.CharField(max_length=20, choices=Protocol.choices, default=Protocol.TWO_AFC)
    condition = models.CharField(max_length=20, choices=Condition.choices, default=Condition.NATURAL)
    difficulty = models.CharField(max_length=20, choices=Difficulty.choices, default=Difficulty.EASY)
    # The recruiters register when Django is ready (recruitment.apps), so their choices are read late.
    recruiter = models.CharField(max_length=20, choices=recruiter_choices, default="local")
    model = models.ForeignKey(VisionModel, on_delete=models.PROTECT, related_name="studies")
    image_pool = models.ForeignKey(ImagePool, on_delete=models.PROTECT, related_name="studies")
    seed = models.IntegerField(default=0, help_text="Seeds unit sampling and stimulus selection.")

    # Stimuli (§1)
    n_units = models.PositiveIntegerField(default=84, help_text="Units sampled for the main block.")
    layers = models.JSONField(
        default=list, blank=True, help_text="Layers to sample units from; empty: the model's layers."
    )
    trials_per_unit = models.PositiveIntegerField(default=20, help_text="t: trials (batches) per unit.")
    references_per_side = models.PositiveIntegerField(default=9)
    image_size = models.PositiveIntegerField(default=224)
    resize_to = models.PositiveIntegerField(default=256)

    # Session (§1, §4)
    n_main_trials = models.PositiveIntegerField(default=40)
    n_catch_trials = models.PositiveIntegerField(default=5)
    n_practice_trials = models.PositiveIntegerField(default=5)
    n_practice_obvious = models.PositiveIntegerField(
        default=4, help_text="How many practice trials are obvious; the rest are less obvious."
    )
    practice_less_obvious_difficulty = models.CharField(
        max_length=20, choices=Difficulty.choices, default=Difficulty.MEDIUM
    )
    target_per_unit = models.PositiveIntegerField(
        default=30, help_text="Distinct participants each unit is answered by."
    )
    lock_ms = models.PositiveIntegerField(default=1500, help_text="Buttons locked after onset.")
    feedback_delay_ms = models.PositiveIntegerField(default=350)
    feedback_ms = models.PositiveIntegerField(default=1150)
    slot_timeout_minutes = models.PositiveIntegerField(
        default=150, help_text="A session silent this long releases its units' slots."
    )
    prompt = models.CharField(
        max_length=300, default="Which image at the center matches the right examples better?"
    )

    # Exclusion checks (§4)
    max_practice_attempts = models.PositiveIntegerField(default=3)
    min_instruction_s = models.FloatField(default=15)
    min_catch_correct = models.PositiveIntegerField(default=4)
    min_total_s = models.FloatField(default=135)
    max_total_s = models.FloatField(default=2500)
    min_position_count = models.PositiveIntegerField(
        default=5, help_text="Each response position must be chosen at least this often."
    )

    completion_code = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        if self.n_practice_obvious > self.n_practice_trials:
            raise ValidationError(
                {"n_practice_obvious": "Cannot exceed the number of practice trials."}
            )
        if self.min_total_s > self.max_total_s:
            raise ValidationError({"min_total_s": "Must not exceed the maximum total time."})

    def save(self, *args, **kwargs) -> None:
        if not self.completion_code:
            self.completion_code = secrets.token_hex(4).upper()
        super().save(*args, **kwargs)

    @property
    def trials_per_session(self) -> int:
        return self.n_main_trials + self.n_catch_trials


class StudyUnitQuerySet(models.QuerySet):
    def with_progress(self) -> "StudyUnitQuerySet":
        """Annotate held slots and completed responses from passing sessions."""
        return self.annotate(
            held=Count("slots", filter=Q(slots__released_at__isnull=True), distinct=True),
            completed=Count(
                "slots",
                filter=Q(
                    slots__released_at__isnull=True,
                    slots__session__status=Session.Status.COMPLETED,
                ),
                distinct=True,
            ),
        )


class StudyUnit(models.Model):
    """A unit taking part in a study, main block or practice."""

    class Role(models.TextChoices):
        MAIN = "main", "main"
        PRACTICE = "practice", "practice"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="study_units")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="study_units")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MAIN)
    order = models.PositiveIntegerField(default=0, help_text="Position in the seeded sample.")

    objects = StudyUnitQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "unit"], name="unique_unit_per_study")
        ]
        ordering = ["study", "role", "order"]

    def __str__(self) -> str:
        return f"{self.study} {self.unit}"


class Trial(models.Model):
    """One screen's stimuli. Sessions show trials; a trial is shared by many sessions."""

    class Kind(models.TextChoices):
        PRACTICE = "practice", "practice"
        MAIN = "main", "main"
        CATCH = "catch", "catch"

    class PracticeLevel(models.TextChoices):
        NONE = "", "-"
        OBVIOUS = "obvious", "obvious"
        LESS_OBVIOUS = "less_obvious", "less obvious"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="trials")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="trials")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    batch = models.PositiveIntegerField(help_text="b: which of the unit's t trials this is.")
    difficulty = models.CharField(max_length=20, choices=Difficulty.choices)
    practice_level = models.CharField(
        max_length=20, choices=PracticeLevel.choices, default=PracticeLevel.NONE, blank=True
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["study", "unit", "kind", "batch"], name="unique_trial_per_unit_batch"
            )
        ]
        ordering = ["study", "kind", "unit", "batch"]

    def __str__(self) -> str:
        return f"{self.study} {self.kind} {self.unit} b{self.batch}"


class TrialImage(models.Model):
    """An image of a trial in a role; rank orders by strength (0 = most extreme)."""

    class Role(models.TextChoices):
        REFERENCE_MIN = "reference_min", "minimally activating reference"
        REFERENCE_MAX = "reference_max", "maximally activating reference"
        QUERY_POSITIVE = "query_positive", "positive query"
        QUERY_NEGATIVE = "query_negative", "negative query"
        EXEMPLAR = "exemplar", "exemplar"
        CANDIDATE = "candidate", "candidate"

    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="images")
    image = models.ForeignKey(StimulusImage, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=20, choices=Role.choices)
    rank = models.PositiveIntegerField(default=0)
    activation = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trial", "role", "rank"], name="unique_image_slot")
        ]
        ordering = ["trial", "role", "rank"]


class Session(models.Model):
    """One participant's run through a study."""

    class Status(models.TextChoices):
        ACTIVE = "active", "active"
        COMPLETED = "completed", "completed"
        ABANDONED = "abandoned", "abandoned (slots released)"
        RETURNED = "returned", "returned"

    class Phase(models.TextChoices):
        PRACTICE = "practice", "practice"
        MAIN = "main", "main"

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="sessions")
    source = models.CharField(max_length=20, choices=recruiter_choices)
    pseudonym = models.CharField(max_length=64, help_text="Keyed hash of the participant id.")
    participant_id = models.CharField(
        max_length=200, help_text="Raw id, kept for paying and blocking only; never exported."
    )
    external = models.JSONField(default=dict, blank=True, help_text="Recruiter ids (HIT, assignment...).")
    token = models.CharField(max_length=64, unique=True, editable=False)
    seed = models.BigIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    phase = models.CharField(max_length=20, choices=Phase.choices, default=Phase.PRACTICE)
    practice_attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    consented_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    feedback = models.TextField(blank=True)
    passed = models.BooleanField(null=True, blank=True, help_text="All exclusion checks passed.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "pseudonym"], name="one_session_per_participant")
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.study} {self.pseudonym[:10]}"

    def save(self, *args, **kwargs) -> None:
        if not self.token:
            self.token = secrets.token_urlsafe(32)
        if self.seed is None:
            self.seed = secrets.randbits(62)
        super().save(*args, **kwargs)


class SessionUnit(models.Model):
    """A slot: one of a unit's target participants, held by a session until released."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="slots")
    study_unit = models.ForeignKey(StudyUnit, on_delete=models.CASCADE, related_name="slots")
    batch = models.PositiveIntegerField()
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "study_unit"], name="unit_once_per_session")
        ]


class SessionTrial(models.Model):
    """The index-th screen of a session, with its layout fixed when it is planned."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="session_trials")
    index = models.PositiveIntegerField()
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="+")
    phase = models.CharField(max_length=20, choices=Session.Phase.choices)
    attempt = models.PositiveIntegerField(default=1, help_text="Practice round number.")
    layout = models.JSONField(
        help_text="Image ids in display order: reference blocks and queries."
    )
    correct_choice = models.PositiveSmallIntegerField(
        null=True, help_text="Display position of the right answer, where there is one."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "index"], name="unique_index_per_session")
        ]
        ordering = ["session", "index"]


class Response(models.Model):
    """A participant's answer to a session trial. Protocol-specific fields stay null elsewhere."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="responses")
    session_trial = models.OneToOneField(
        SessionTrial, on_delete=models.CASCADE, related_name="response"
    )
    client_id = models.UUIDField()
    choice = models.PositiveSmallIntegerField(null=True, blank=True)
    confidence = models.PositiveSmallIntegerField(null=True, blank=True)
    clicks = models.JSONField(null=True, blank=True, help_text="[[x, y], ...] in image pixels.")
    text = models.TextField(blank=True)
    rt_ms = models.PositiveIntegerField()
    correct = models.BooleanField(null=True)
    score = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "client_id"], name="unique_client_id")
        ]
        ordering = ["session", "session_trial__index"]


class Event(models.Model):
    class Type(models.TextChoices):
        CONSENT = "consent", "consent"
        INSTRUCTIONS_START = "instructions_start", "instructions start"
        INSTRUCTIONS_END = "instructions_end", "instructions end"
        BLUR = "blur", "window lost focus"
        FOCUS = "focus", "window got focus"

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=40, choices=Type.choices)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["session", "created_at", "pk"]


class SessionCheck(models.Model):
    """One exclusion check's value and verdict for a completed session."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="checks")
    name = models.CharField(max_length=40)
    value = models.FloatField()
    passed = models.BooleanField()
    rule = models.CharField(max_length=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "name"], name="unique_check_per_session")
        ]
        ordering = ["session", "name"]
