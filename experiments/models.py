"""Studies, their trials, and what participants did with them.

A study keeps its own editable copy of every parameter: the generic ones as
columns, its protocol's own as validated JSON (`params`), each defaulting to
the published value (docs/protocols.md).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Count, Q
from django.db.models.base import ModelState
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils import timezone

from experiments.recruiters import recruiter_choices
from experiments.unit_sources import unit_source
from protocols import DEFAULT_PROTOCOL, NotImplementedProtocol, base, condition_choices, get_protocol, protocol_choices
from protocols.base import Design, Protocol
from protocols.params import Params, ParamsError
from stimuli.models import ImagePool, KeptMap, SparseAutoencoder, StimulusImage, Unit, VisionModel

# Studies as participant calls read them, by id, and what every start plans from (its practice and catch
# trials): every call needs its study's settings, and reading its ~60 columns costs more than the rest of a
# trial fetch. A process keeps each for at most this long; a change to a study or its trials made in the
# process forgets them at once, so another process sees a researcher's change within this time, and this
# process (the admin's, a test's) at once.
STUDY_CACHE_S = 2.0
_CACHED_STUDIES: dict[tuple[str, int | str], tuple[float, Any]] = {}
_T = TypeVar("_T")
_M = TypeVar("_M", bound=models.Model)


def cached_for_study(kind: str, study: int | str, read: Callable[[], _T]) -> _T:
    """What read() gave for the study (its id, or its slug) in this process at most STUDY_CACHE_S ago; kind
    names what it is. Shared between threads: callers must not change it."""
    now = time.monotonic()
    found = _CACHED_STUDIES.get((kind, study))
    if found is None or now - found[0] > STUDY_CACHE_S:
        found = _CACHED_STUDIES[(kind, study)] = (now, read())
    return found[1]


def forget_cached_studies(*args: Any, **kwargs: Any) -> None:
    """Forget every cached study (a signal receiver too, hence the arguments it ignores)."""
    _CACHED_STUDIES.clear()


class StudyQuerySet(models.QuerySet["Study"]):
    def update(self, **kwargs: Any) -> int:
        updated = super().update(**kwargs)
        forget_cached_studies()
        return updated

    def delete(self) -> tuple[int, dict[str, int]]:
        deleted = super().delete()
        forget_cached_studies()
        return deleted


def _copy_of(instance: _M) -> _M:
    """A shallow copy of the instance, as copy.copy makes one (Model.__getstate__: the instance's values, and
    its state with a cache of related instances of its own), at a tenth of the cost (1 against 11 us): copy.copy
    pickles and unpickles it, and every participant call copies its study."""
    clone = instance.__class__.__new__(instance.__class__)
    clone.__dict__.update(instance.__dict__)
    state = clone._state = ModelState()
    state.__dict__.update(instance._state.__dict__)
    state.fields_cache = dict(instance._state.fields_cache)
    return clone


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
    protocol = models.CharField(max_length=40, choices=protocol_choices, default=DEFAULT_PROTOCOL)
    condition = models.CharField(max_length=20, choices=condition_choices, default="natural")
    params = models.JSONField(
        default=dict, blank=True, help_text="The protocol's own parameters; missing ones take their defaults."
    )
    # The recruiters register when Django is ready (recruitment.apps), so their choices are read late.
    recruiter = models.CharField(max_length=20, choices=recruiter_choices, default="local")
    model = models.ForeignKey(VisionModel, on_delete=models.PROTECT, related_name="studies")
    image_pool = models.ForeignKey(ImagePool, on_delete=models.PROTECT, related_name="studies")
    seed = models.IntegerField(default=0, help_text="Seeds unit sampling and stimulus selection.")

    # Stimuli
    n_units = models.PositiveIntegerField(default=84, help_text="Units sampled for the main block.")
    layers = models.JSONField(
        default=list, blank=True, help_text="Layers to sample units from; empty: the model's layers."
    )
    unit_kind = models.CharField(
        max_length=20, choices=Unit.Kind.choices, default=Unit.Kind.CHANNEL,
        help_text="Channels of the layers of interest, or latents of the SAE below.",
    )
    sae = models.ForeignKey(
        SparseAutoencoder, on_delete=models.PROTECT, null=True, blank=True, related_name="studies",
        help_text="The trained sparse autoencoder whose latents are the units (SAE latents only).",
    )
    max_latent_frequency = models.FloatField(
        default=0.2, validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="SAE latents firing on more than this fraction of the training tokens are not sampled "
        "(nor are dead ones).",
    )
    pooling = models.CharField(
        max_length=10, choices=[("mean", "mean"), ("max", "max")], default="mean",
        help_text="A unit's activation for an image: the mean (IMI) or the max of its values over the layer's "
        "positions.",
    )
    trials_per_unit = models.PositiveIntegerField(default=20, help_text="t: trials (batches) per unit.")
    batches_used = models.PositiveIntegerField(
        default=10,
        help_text="How many of a unit's t batches participants see, each answered equally often "
        "(IMI: 10 of 20, so 3 answers each for 30 per unit); 0: all t.",
    )
    image_size = models.PositiveIntegerField(default=224)
    resize_to = models.PositiveIntegerField(default=256)

    class RankingCrop(models.TextChoices):
        SHOWN = "shown", "the crop participants see (resize_to, then image_size), with the model's normalisation"
        MODEL = "model", "the model's own timm preprocessing (not the pixels participants see)"

    ranking_crop = models.CharField(
        max_length=10,
        choices=RankingCrop.choices,
        default=RankingCrop.SHOWN,
        help_text="Which pixels the network ranks the pool by. IMI: the ones shown. The export's datasheet "
        "records the crop shown and what the network was given (ranking_input).",
    )
    ranking_input = models.JSONField(
        default=dict, blank=True, editable=False,
        help_text="What the network was given when the stimuli were rendered (crop, resampling, normalisation).",
    )

    # Session
    n_main_trials = models.PositiveIntegerField(default=40)
    n_catch_trials = models.PositiveIntegerField(default=5)
    n_practice_trials = models.PositiveIntegerField(default=5)
    target_per_unit = models.PositiveIntegerField(
        default=30, help_text="Distinct participants each unit is answered by."
    )
    lock_ms = models.PositiveIntegerField(
        default=1500,
        help_text="Answers locked after onset; the server refuses an answer sooner than this after sending the trial.",
    )
    feedback_delay_ms = models.PositiveIntegerField(default=350)
    feedback_ms = models.PositiveIntegerField(default=1150)
    main_feedback = models.BooleanField(
        default=True,
        help_text="Tell participants after each main-block answer whether it was right, as IMI did. Off: only "
        "practice answers are judged, and no reply in the main block says anything drawn from the answer key.",
    )
    # Hand-picked trials (IMI: "hand-picked practice trials", "catch trials with obvious, hand-picked stimuli");
    # left empty, sessions use the study's own automatic ones. Picked in the admin (services.pick_trials).
    practice_trials: models.ManyToManyField[Trial, Any] = models.ManyToManyField(
        "Trial", blank=True, related_name="practice_for",
        help_text="Hand-picked practice trials, from any rendered study; empty: the study's own practice trials.",
    )
    catch_trials: models.ManyToManyField[Trial, Any] = models.ManyToManyField(
        "Trial", blank=True, related_name="catch_for",
        help_text="Hand-picked catch trials, from any rendered study; empty: the catch trials of the study's units.",
    )
    practice_rule = models.CharField(
        max_length=300, blank=True, editable=False,
        help_text="How the render chose the study's own practice units (its protocol's rule); hand-picked practice "
        "trials, where there are any, are shown instead of them.",
    )
    consent_timeout_minutes = models.PositiveIntegerField(
        default=10, help_text="A session that has not consented this long after it started lapses."
    )
    slot_timeout_minutes = models.PositiveIntegerField(
        default=20,
        help_text="A session with no answer this long (since its consent or its last answer) lapses and "
        "releases its units; events such as focus changes do not keep it alive.",
    )
    accepts_unsigned_links = models.BooleanField(
        default=False,
        help_text="Local links need the platform's signature (minted in the admin or by `manage.py participant_link`); "
        "tick for pilots, so that any ?participant= id can start.",
    )

    # Exclusion checks every protocol shares; a protocol's own are among its params.
    max_practice_attempts = models.PositiveIntegerField(default=3)
    min_instruction_s = models.FloatField(default=15)
    min_total_s = models.FloatField(default=135)
    max_total_s = models.FloatField(default=2500)
    max_lock_boundary_share = models.FloatField(
        default=0.8,
        help_text="Timing check: the share of main answers arriving within 250 ms after the lock ends, beyond "
        "which a session fails (answers fired as soon as they are allowed).",
    )
    min_timing_variation = models.FloatField(
        default=0.15,
        help_text="Timing check: the least coefficient of variation of the server-timed answer intervals "
        "(a bot's metronome is below it; people vary far more).",
    )
    # The answer-key check (experiments/plausibility.py).
    hard_units_max_p = models.FloatField(
        default=0.01,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="A session fails when another participant would answer at least as many of its hardest units "
        "right with a probability below this; 0 turns the check off.",
    )
    hard_units_share = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0.01), MaxValueValidator(1)],
        help_text="The hardest units: this share of the units, those other passing participants answered right "
        "least often.",
    )
    hard_units_min_answers = models.PositiveIntegerField(
        default=10,
        help_text="A unit counts for the answer-key check once other passing participants answered it this often.",
    )

    # The participant page: who may take part on what, and what they are told before they agree.
    class Devices(models.TextChoices):
        DESKTOP = "desktop", "desktop or laptop with a keyboard"
        ANY = "any", "any device, phones and tablets included"

    devices = models.CharField(
        max_length=20, choices=Devices.choices, default=Devices.DESKTOP,
        help_text="Phones and tablets are refused before consent, without a session, unless 'any'.",
    )
    min_window_width = models.PositiveIntegerField(
        default=940, help_text="CSS pixels the browser window needs before consent (IMI: 940 x 600)."
    )
    min_window_height = models.PositiveIntegerField(default=600)
    offer_fullscreen = models.BooleanField(default=True, help_text="Offer fullscreen on the instructions.")
    enforce_instruction_time = models.BooleanField(
        default=True,
        help_text="The start button counts down the minimum instruction time; off: the time is only measured.",
    )
    preload_trials = models.PositiveIntegerField(
        default=3, help_text="Trials whose images the page loads ahead of the one on screen."
    )
    calibrate_size = models.BooleanField(
        default=False,
        help_text="After consent the participant matches an outline to a bank card held against the screen (the "
        "virtual chinrest's card method), and the images are then shown at image_size_mm on that screen.",
    )
    image_size_mm = models.FloatField(
        default=30,
        validators=[MinValueValidator(5), MaxValueValidator(300)],
        help_text="With calibrate_size: the side in millimetres of each unit image (a reference or exemplar cell; "
        "the protocol's other images keep their proportion to it). A window it does not fit is asked to grow.",
    )
    researcher = models.CharField(max_length=200, blank=True, help_text="Shown on the consent page.")
    institution = models.CharField(max_length=200, blank=True)
    contact = models.CharField(max_length=200, blank=True, help_text="An e-mail address for questions.")
    ethics_approval = models.CharField(
        max_length=300, blank=True, help_text="The ethics board and approval number, shown on the consent page."
    )
    duration_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Expected duration told to participants; blank: estimated from the trials."
    )
    pay = models.CharField(max_length=100, blank=True, help_text="What participants are paid, e.g. '$2.50'.")
    consent_text = models.TextField(
        blank=True, help_text="Extra paragraphs for the consent page (plain text); blank: the standard text only."
    )

    completion_code = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    derived_from = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="derived_studies",
        help_text="The study whose responses this one was built from (a verify stage); the two are linked: "
        "nobody takes both.",
    )

    # What shaped the rendered stimuli or what participants see: fixed once a study has stimuli.
    FIXED_AFTER_RENDER = (
        "protocol", "condition", "model", "image_pool", "seed", "n_units", "layers", "unit_kind", "sae",
        "max_latent_frequency", "pooling", "trials_per_unit",
        "batches_used", "image_size", "resize_to", "ranking_crop", "n_main_trials", "n_catch_trials",
        "n_practice_trials", "lock_ms", "feedback_delay_ms", "feedback_ms", "main_feedback", "derived_from",
        "calibrate_size", "image_size_mm",
    )

    objects = StudyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.slug

    @classmethod
    def cached(cls, pk: int) -> Study:
        """The study as this process read it at most STUDY_CACHE_S ago: a copy, so that what a caller
        changes on it stays the caller's."""
        return _copy_of(cached_for_study("study", pk, lambda: cls.objects.get(pk=pk)))

    @classmethod
    def cached_by_slug(cls, slug: str) -> Study | None:
        """As cached, found by slug (how participants' links name studies); None for no such study. The process
        keeps one copy of each study, so an arrival and the calls after it read the same one."""
        pk = cached_for_study(
            "id by slug", slug, lambda: cls.objects.filter(slug=slug).values_list("pk", flat=True).first()
        )
        return None if pk is None else cls.cached(pk)

    @property
    def has_stimuli(self) -> bool:
        """Rendered, being rendered, or with trials left by an interrupted render."""
        return bool(self.pk) and (self.status != self.Status.DRAFT or self.trials.exists())

    def clean(self) -> None:
        if self.min_total_s > self.max_total_s:
            raise ValidationError({"min_total_s": "Must not exceed the maximum total time."})
        if self.batches_used > self.trials_per_unit:
            raise ValidationError({"batches_used": "Cannot exceed the trials (batches) per unit."})
        unit_source(self.unit_kind).check(self)
        self.check_implemented()
        try:
            self.protocol_plugin.check_design(self.design)
        except ParamsError as exc:
            # Not keyed by field: forms edit the parameters as fields of their own (see experiments.admin).
            raise ValidationError([f"{name}: {' '.join(m)}" for name, m in exc.errors.items()]) from exc

    def check_implemented(self) -> None:
        """Refuse, naming it, a protocol, condition or unit kind that is not implemented for this study."""
        try:
            protocol = self.protocol_plugin
        except NotImplementedProtocol as exc:
            raise ValidationError({"protocol": str(exc)}) from exc
        if self.condition not in protocol.conditions:
            raise ValidationError(
                {
                    "condition": f"The condition {self.condition!r} is not implemented for {protocol.title} "
                    f"(implemented: {', '.join(protocol.conditions)})."
                }
            )
        kinds = {self.unit_kind}
        if self.pk:
            kinds |= set(self.study_units.values_list("unit__kind", flat=True))
        if kinds:
            unsupported = sorted(kinds - set(protocol.unit_kinds) | kinds - set(Unit.Kind.values))
            if unsupported:
                raise ValidationError(
                    f"Units of kind {', '.join(map(repr, unsupported))} are not implemented for "
                    f"{protocol.title} (implemented: {', '.join(protocol.unit_kinds)})."
                )

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.completion_code:
            self.completion_code = secrets.token_hex(4).upper()
        super().save(*args, **kwargs)
        forget_cached_studies()

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        deleted = super().delete(*args, **kwargs)
        forget_cached_studies()
        return deleted

    @property
    def protocol_plugin(self) -> Protocol[Any]:
        """The registered implementation of the study's protocol (raises NotImplementedProtocol)."""
        return get_protocol(self.protocol)

    @property
    def design(self) -> Design[Any]:
        """The settings the protocol builds and runs trials with; raises ParamsError for bad params."""
        return Design(
            trials_per_unit=self.trials_per_unit,
            n_practice_trials=self.n_practice_trials,
            params=self.protocol_plugin.params(self.params),
        )

    @property
    def protocol_params(self) -> Params:
        return self.design.params

    @property
    def batches_in_use(self) -> int:
        """The batches 0..n-1 participants see."""
        return self.batches_used or self.trials_per_unit

    @property
    def trials_per_session(self) -> int:
        return self.n_main_trials + self.n_catch_trials

    @property
    def sessions_needed(self) -> int:
        """Passing sessions for every unit to reach its target: ceil(units x target / main trials)."""
        if self.n_main_trials <= 0:
            raise ValueError(f"study {self.slug} has no main trials, so no number of sessions is enough")
        return -(-self.n_units * self.target_per_unit // self.n_main_trials)

    # Seconds per trial a participant needs on average, with feedback and continue (IMI: about 15 s).
    SECONDS_PER_TRIAL = 15

    @property
    def expected_minutes(self) -> int:
        """The duration participants are told: the study's own, or estimated from its trials and the
        instruction time."""
        if self.duration_minutes:
            return self.duration_minutes
        trials = self.trials_per_session + self.n_practice_trials
        return max(1, round((trials * self.SECONDS_PER_TRIAL + self.min_instruction_s + 60) / 60))


class StudyUnitQuerySet(models.QuerySet):
    def with_progress(self) -> StudyUnitQuerySet:
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
        # Drawn as a practice unit where the protocol draws several per practice unit, and not kept.
        PRACTICE_CANDIDATE = "practice_candidate", "practice candidate, not kept"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="study_units")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="study_units")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MAIN)
    order = models.PositiveIntegerField(default=0, help_text="Position in the seeded sample.")
    relative_depth = models.FloatField(
        null=True, blank=True, help_text="Its layer's place among the layers of interest: 0 first, 1 last."
    )
    statistics = models.JSONField(
        default=dict, blank=True, help_text="Its protocol's unit statistics, as the last summary job computed them."
    )
    practice_value = models.FloatField(
        null=True, blank=True, editable=False,
        help_text="How obvious its practice trials are, where practice units were chosen among candidates "
        "(Study.practice_rule; localizability: its exemplar maps' mean p0); the lower, the more obvious.",
    )

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
        PRACTICE = base.PRACTICE, "practice"
        MAIN = base.MAIN, "main"
        CATCH = base.CATCH, "catch"

    class PracticeLevel(models.TextChoices):
        NONE = "", "-"
        OBVIOUS = base.OBVIOUS, "obvious"
        LESS_OBVIOUS = base.LESS_OBVIOUS, "less obvious"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="trials")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="trials")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    batch = models.PositiveIntegerField(help_text="b: which of the unit's t trials this is.")
    difficulty = models.CharField(max_length=20, blank=True, help_text="The protocol's name for where it came from.")
    practice_level = models.CharField(
        max_length=20, choices=PracticeLevel.choices, default=PracticeLevel.NONE, blank=True
    )
    content = models.JSONField(
        default=dict, blank=True, help_text="What the trial holds beside its images (a known concept's label, a name)."
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
    """An image of a trial in a role of its protocol's; rank orders by strength (0 = most extreme)."""

    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="images")
    image = models.ForeignKey(StimulusImage, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=20)
    rank = models.PositiveIntegerField(default=0)
    activation = models.FloatField(null=True, blank=True)
    kept_map = models.ForeignKey(
        KeptMap, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The unit's activation map on this image, kept for scoring where the protocol asks (never sent).",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trial", "role", "rank"], name="unique_image_slot")
        ]
        ordering = ["trial", "role", "rank"]


# CSS pixels per millimetre a size calibration may find: 1.5 is a 940 px window 63 cm wide (a television), 15 a
# browser zoomed out to a third on a fine laptop screen; the nominal CSS pixel (1/96 inch) is 3.78.
MIN_PX_PER_MM = 1.5
MAX_PX_PER_MM = 15.0


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
    # Answers come in index order, so the trials from this index on are the unanswered ones, and the current
    # trial is read by index alone; finding it by the trials without an answer read every trial of the session
    # (on PostgreSQL, 0.7-1.2 ms a query halfway through 50 trials, against 0.06-0.08). Written with each answer.
    next_index = models.PositiveIntegerField(
        default=0, help_text="The index of the first unanswered trial: every trial before it is answered."
    )
    created_at = models.DateTimeField(default=timezone.now)
    consented_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(default=timezone.now, help_text="Any call, events included.")
    last_answer_at = models.DateTimeField(
        null=True, blank=True, help_text="Consent or the last answer: what keeps the session's hold alive."
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    feedback = models.TextField(blank=True)
    passed = models.BooleanField(null=True, blank=True, help_text="All exclusion checks passed.")
    address = models.CharField(
        max_length=64, blank=True, help_text="Keyed hash of the client address the session started from."
    )
    signed_link = models.BooleanField(
        default=False, help_text="Started from a link the platform signed: exempt from per-address limits."
    )
    completion_code = models.CharField(max_length=32, blank=True, help_text="Given to this session at completion.")
    px_per_mm = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(MIN_PX_PER_MM), MaxValueValidator(MAX_PX_PER_MM)],
        help_text="CSS pixels per millimetre of the participant's screen, from the size calibration (blank: none).",
    )

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

    # No index of its own: the unique (session, index) index serves every lookup by session.
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="session_trials", db_index=False)
    index = models.PositiveIntegerField()
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="+")
    phase = models.CharField(max_length=20, choices=Session.Phase.choices)
    attempt = models.PositiveIntegerField(default=1, help_text="Practice round number.")
    # A round (a practice attempt, or the main block) is planned at once, so its trials' places are known
    # then; stored, so that serving a trial needs no count over its round.
    position = models.PositiveIntegerField(default=1, help_text="Its place in its round, from 1.")
    round_length = models.PositiveIntegerField(default=1, help_text="How many trials its round has.")
    layout = models.JSONField(help_text="What the protocol shows where: image ids in display order.")
    key = models.JSONField(
        default=dict, blank=True, help_text="The protocol's answer key; never sent to the browser."
    )
    served_at = models.DateTimeField(
        null=True, blank=True, help_text="When the server last sent it: the answer lock counts from here."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "index"], name="unique_index_per_session")
        ]
        ordering = ["session", "index"]


class ResponseQuerySet(models.QuerySet):
    def about_units(self) -> ResponseQuerySet:
        """Answers to the main block's main trials (neither practice nor catch): what participants said of units."""
        return self.filter(session_trial__phase=Session.Phase.MAIN, session_trial__trial__kind=Trial.Kind.MAIN)

    def counted(self) -> ResponseQuerySet:
        """The answers a study's results rest on: main-block, non-catch trials of completed sessions that
        passed every exclusion check (unit statistics, the units table, derived studies, the hard-units check)."""
        return self.about_units().filter(session__status=Session.Status.COMPLETED, session__passed=True)


class Response(models.Model):
    """A participant's answer to a session trial: the protocol's validated answer and its verdict."""

    # No index of its own: the unique (session, client_id) index serves every lookup by session.
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="responses", db_index=False)
    session_trial = models.OneToOneField(
        SessionTrial, on_delete=models.CASCADE, related_name="response"
    )
    client_id = models.UUIDField()
    answer = models.JSONField(default=dict, help_text="The answer's fields, as the protocol validated them.")
    rt_ms = models.PositiveIntegerField(help_text="As the browser measured it, from onset to the answer.")
    server_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="From the server's sending the trial to its receiving the answer."
    )
    correct = models.BooleanField(null=True)
    score = models.FloatField(null=True, blank=True)
    geometry = models.JSONField(
        default=dict, blank=True,
        help_text="The browser's window, screen, pixel ratio, zoom, user agent and each image's rendered size.",
    )
    details = models.JSONField(
        default=dict, blank=True, help_text="The protocol's own numbers behind the verdict (localizability: p0...)."
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ResponseQuerySet.as_manager()

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
        WINDOW_PAUSE = "window_pause", "trial paused: the window became too small"
        WINDOW_RESUME = "window_resume", "trial resumed: the window is large enough again"

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


class StartRefusal(models.Model):
    """How many arrivals were refused, per study, reason and day: counts, so that a flood of refused
    requests costs one row a day, not one each."""

    class Reason(models.TextChoices):
        RATE = "rate", "too many starts from one address"
        SESSIONS = "sessions", "too many active sessions from one address"
        UNSIGNED = "unsigned", "local link without a valid signature"
        RECRUITER = "recruiter", "refused by the recruiter (unknown HIT, other Prolific study, preview...)"
        FULL = "full", "no places left"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="refusals")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "reason", "day"], name="one_count_per_day")]
        ordering = ["study", "-day", "reason"]


# What starts and main blocks are planned from (experiments.planning, through cached_for_study): a change made
# in this process, a render or a hand-pick in the admin, is seen at once.
for _planned_from in (Trial, TrialImage):
    post_save.connect(forget_cached_studies, sender=_planned_from)
    post_delete.connect(forget_cached_studies, sender=_planned_from)
m2m_changed.connect(forget_cached_studies, sender=Study.practice_trials.through)
m2m_changed.connect(forget_cached_studies, sender=Study.catch_trials.through)
