"""Reads of the participant workflow: where a session stands and what its current screen shows."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from django.core.files.storage import default_storage
from django.core.signals import setting_changed
from django.db.models import Case, F, OuterRef, Q, QuerySet, Subquery, Sum, When
from django.dispatch import receiver

from experiments.kept import KeptById
from experiments.models import (
    MAX_PX_PER_MM,
    MIN_PX_PER_MM,
    Event,
    Session,
    SessionTrial,
    SessionUnit,
    StartRefusal,
    Study,
    StudyUnit,
    Trial,
    TrialImage,
)
from experiments.planning import practice_trials, shown_images_of
from experiments.prepared import PreparedSelect, PreparedSelectMarkingFirst
from experiments.recruiters import recruiter_for
from protocols.base import DesignError, ShownImage
from stimuli.models import StimulusImage
from stimuli.pools import PoolError, open_pool


class Stage:
    CONSENT = "consent"
    INSTRUCTIONS = "instructions"
    TRIALS = "trials"
    FEEDBACK = "feedback"
    DONE = "done"


def first_unanswered(session: Session) -> SessionTrial | None:
    return upcoming(session, ahead=0).current


@dataclass(frozen=True)
class Upcoming:
    """The current trial (the first unanswered) and those after it (as many as asked for).

    Answers come in index order, so every trial after the current one is unanswered; and a round is
    planned only once the one before it is answered, so `ahead` holds trials of the current trial's round,
    and `following` is None when the current trial ends its round.
    """

    current: SessionTrial | None
    ahead: list[SessionTrial]

    @property
    def following(self) -> SessionTrial | None:
        return self.ahead[0] if self.ahead else None


def _unanswered(limit: int, session: int, start: int) -> QuerySet[SessionTrial]:
    # The session's trials from its next_index on are its unanswered ones: read off the (session, index) index,
    # with no join to the answers (which made PostgreSQL read every trial of the session and sort them).
    return SessionTrial.objects.filter(session_id=session, index__gte=start).order_by("index")[:limit]


def _by_token(lock: bool, token: str) -> QuerySet[Session]:
    found = Session.objects.filter(token=token)
    return (found.select_for_update() if lock else found)[:1]


def _unanswered_by_token(limit: int, lock: bool, token: str) -> QuerySet[SessionTrial]:
    found = (
        SessionTrial.objects.select_related("session")
        .filter(session__token=token, index__gte=F("session__next_index"))
        .order_by("index")
    )
    if not lock:
        return found[:limit]  # one snapshot for the session and its trials
    # next_index as the statement's snapshot saw it: PostgreSQL hands a row locked after waiting for another
    # transaction in its newest version, but the trials read with it are the snapshot's. Only the session's
    # row is locked: locking the trials too would lock many rows for one answer.
    snapshot = Subquery(Session.objects.filter(pk=OuterRef("session_id")).values("next_index"))
    return found.annotate(read_next_index=snapshot).select_for_update(of=("session",))[:limit]


# Every trial fetch and answer reads these (experiments.prepared); the limit and the lock pick the compiled statement.
_UNANSWERED = PreparedSelect(
    _unanswered, session=SessionTrial._meta.get_field("session"), start=SessionTrial._meta.get_field("index")
)
_UNANSWERED_BY_TOKEN = PreparedSelect(_unanswered_by_token, token=Session._meta.get_field("token"))
# A trial fetch's: the current trial marked served (once the session is consented) in the same statement.
_SERVED_BY_TOKEN = PreparedSelectMarkingFirst(
    lambda limit, token: _unanswered_by_token(limit, False, token),
    mark=SessionTrial._meta.get_field("served_at"),
    first_by=SessionTrial._meta.get_field("index"),
    only_if=Session._meta.get_field("consented_at"),
    token=Session._meta.get_field("token"),
)
_BY_TOKEN = PreparedSelect(_by_token, token=Session._meta.get_field("token"))

# Where session_by_token leaves the trials it read with the session, for upcoming() to take (once).
_READ_AHEAD = "_unanswered_read_with_it"


@dataclass(frozen=True)
class _ReadAhead:
    trials: list[SessionTrial]  # from the session's next_index on, in order
    complete: bool  # fewer than the limit: every unanswered trial


def session_by_token(
    token: str, *, lock: bool = False, ahead: int | None = None, serve_at: datetime | None = None
) -> Session | None:
    """The session whose token this is, its row locked (in the caller's transaction) with lock; with ahead, read
    in the same statement as its current trial and up to `ahead` after it, which the next upcoming() call on it
    takes instead of querying (a trial fetch or an answer is then one statement fewer). With serve_at (and no
    lock), where the session is consented, the current trial is marked served then, in the same statement where
    the database writes in a WITH (a trial fetch is one statement)."""
    if ahead is not None:
        if serve_at is not None and not lock:
            found = _SERVED_BY_TOKEN.all(1 + ahead, token=token, served_at=serve_at)
            if found and found[0].session.consented_at is not None:
                found[0].served_at = serve_at
        else:
            found = _UNANSWERED_BY_TOKEN.all(1 + ahead, lock, token=token)
        if found:
            first: Any = found[0]  # a SessionTrial, with read_next_index where locked
            session = first.session
            # Another transaction answered while this one waited for the lock: its trials are not this row's.
            # (The trials read with it share it: experiments.prepared makes a related row's instance once.)
            if not lock or first.read_next_index == session.next_index:
                session.__dict__[_READ_AHEAD] = _ReadAhead(found, complete=len(found) < 1 + ahead)
            return session
    # No trial left (or none asked for): the session alone.
    return _BY_TOKEN.first(lock, token=token)


def upcoming(session: Session, ahead: int = 1) -> Upcoming:
    """The current trial and up to `ahead` after it in one query (each knows its place in its round), or none
    where session_by_token read them with the session."""
    read: _ReadAhead | None = session.__dict__.pop(_READ_AHEAD, None)
    if read is not None and (read.complete or len(read.trials) > ahead):
        found = read.trials[: 1 + ahead]
    else:
        found = _UNANSWERED.all(1 + ahead, session=session.pk, start=session.next_index)
    if not found:
        return Upcoming(None, [])
    return Upcoming(found[0], found[1:])


def has_completed_instructions(session: Session) -> bool:
    return session.events.filter(type=Event.Type.INSTRUCTIONS_END).exists()


def session_stage(session: Session) -> str:
    if session.status == Session.Status.COMPLETED:
        return Stage.DONE
    if session.consented_at is None:
        return Stage.CONSENT
    if not has_completed_instructions(session):
        return Stage.INSTRUCTIONS
    if session.phase == Session.Phase.PRACTICE or first_unanswered(session) is not None:
        return Stage.TRIALS
    return Stage.FEEDBACK


def calibration_state(session: Session) -> dict[str, Any] | None:
    """The size the page shows the images at, and the screen's scale once the participant calibrated it."""
    if not session.study.calibrate_size:
        return None
    return {
        "image_size_mm": session.study.image_size_mm,
        "px_per_mm": session.px_per_mm,
        "min_px_per_mm": MIN_PX_PER_MM,
        "max_px_per_mm": MAX_PX_PER_MM,
    }


def session_state(session: Session) -> dict[str, Any]:
    """What the participant page needs to pick its screen after a (re)load."""
    study = session.study
    stage = session_stage(session)
    state = {
        "id": session.pk,
        "study": study.slug,
        "protocol": study.protocol,
        "stage": stage,
        "phase": session.phase,
        "practice_attempts": session.practice_attempts,
        "trials_per_session": study.trials_per_session,
        "n_practice_trials": study.n_practice_trials,
        "prompt": study.protocol_plugin.prompt(study.protocol_params),
        "min_instruction_s": study.min_instruction_s,
        "main_feedback": study.main_feedback,
        "enforce_instruction_time": study.enforce_instruction_time,
        "timing": {
            "lock_ms": study.lock_ms,
            "feedback_delay_ms": study.feedback_delay_ms,
            "feedback_ms": study.feedback_ms,
        },
        "calibration": calibration_state(session),
    }
    if stage == Stage.DONE:
        state["hand_back"] = recruiter_for(session.source).hand_back(session)
    return state


def _read_urls(ids: list[int]) -> dict[int, str]:
    files = StimulusImage.objects.filter(pk__in=ids).values_list("pk", "file")
    return {pk: default_storage.url(name) for pk, name in files}


# Stored images' URLs, kept as long as the storage settings hold; a study has a few thousand images.
_URLS = KeptById(_read_urls, limit=200_000)


@receiver(setting_changed)
def _forget_urls(setting: str, **kwargs: Any) -> None:
    if setting in ("STORAGES", "MEDIA_URL"):
        forget_image_urls()


def forget_image_urls() -> None:
    _URLS.forget()


def image_urls(ids: list[int]) -> dict[int, str]:
    return _URLS.of(ids)


class StoredImageURLs(Mapping[int, str]):
    """The URLs of these images, looked up only if somebody reads one."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids

    @cached_property
    def _urls(self) -> dict[int, str]:
        return image_urls(self.ids)

    def __getitem__(self, image_id: int) -> str:
        return self._urls[image_id]

    def __iter__(self) -> Iterator[int]:
        return iter(self._urls)

    def __len__(self) -> int:
        return len(self._urls)


def trials_ahead(session: Session) -> int:
    """How many trials after the current one its payload may preload (trial_payload): the study's number, or
    while practising a whole round, which the round's first trial brings. The main block (planned once practice
    is passed) never reads more than the study's number."""
    study = session.study
    if session.phase == Session.Phase.PRACTICE:
        return max(study.preload_trials, study.n_practice_trials)
    return study.preload_trials


def trial_payload(session: Session, trials: Upcoming) -> dict[str, Any]:
    """The session's current trial as the browser sees it: the protocol's payload in a generic envelope.

    Neither the trial's kind nor the right answer is derivable from this.
    """
    study = session.study
    protocol = study.protocol_plugin
    current = trials.current
    if current is None:
        return {"done": True, "protocol": protocol.name}
    # A round's first trial brings the whole practice round (or the study's number of main trials) ahead,
    # for the page to load behind its progress bar; later trials keep that many ahead.
    first_of_practice_round = current.position == 1 and current.phase == Session.Phase.PRACTICE
    ahead = current.round_length - 1 if first_of_practice_round else 0
    preload_ids = [
        image_id
        for following in trials.ahead[: max(ahead, study.preload_trials)]
        for image_id in protocol.image_ids(following.layout)
    ]
    urls = image_urls(protocol.image_ids(current.layout) + preload_ids)
    return {
        "done": False,
        "protocol": protocol.name,
        "index": current.index,
        "phase": current.phase,
        "attempt": current.attempt,
        "position": current.position,
        "of": current.round_length,
        **protocol.payload(current.layout, urls, study.protocol_params),
        "preload": [urls[i] for i in dict.fromkeys(preload_ids)],
    }


def sample_screen(study: Study) -> dict[str, Any] | None:
    """A practice trial's payload (an obvious one where levels are known), for workers who only preview the
    task (no session, so nothing of the main block); None before the study is rendered."""
    trial = (
        practice_trials(study)
        .order_by(Case(When(practice_level=Trial.PracticeLevel.OBVIOUS, then=0), default=1), "unit_id", "batch")
        .first()
    )
    if trial is None:
        return None
    return trial_screen(study, trial).payload


@dataclass(frozen=True)
class TrialScreen:
    """A stored trial laid out as a session would show it: the browser's payload, and its answer key."""

    trial: Trial
    payload: dict[str, Any]
    key: dict[str, Any]


def trial_screen(study: Study, trial: Trial, images: Sequence[ShownImage] | None = None) -> TrialScreen:
    """Laid out with the study's seed, so that the same trial always looks the same here; images are the
    trial's (shown_images_of), read here if not given."""
    protocol, params = study.protocol_plugin, study.protocol_params
    shown = shown_images_of([trial])[trial.pk] if images is None else images
    layout = protocol.layout(shown, trial.content, params, random.Random(study.seed))
    payload = protocol.payload(layout.display, image_urls(protocol.image_ids(layout.display)), params)
    return TrialScreen(trial, payload, layout.key)


def unit_gallery(study_unit: StudyUnit) -> list[TrialScreen]:
    """Every rendered trial of a study's unit (practice, main and catch), in kind and batch order."""
    trials = list(Trial.objects.filter(study=study_unit.study, unit=study_unit.unit).order_by("kind", "batch"))
    images = shown_images_of(trials)
    return [trial_screen(study_unit.study, trial, images[trial.pk]) for trial in trials]


@dataclass(frozen=True)
class UnitProgress:
    study_unit_id: int
    label: str
    completed: int  # passing participants' answers so far
    held: int


@dataclass(frozen=True)
class StudyProgress:
    """Where a study stands: units at their target, passing sessions, and each main unit's answers."""

    target: int  # answers each unit needs
    units: list[UnitProgress]
    passing: int
    needed: int  # passing sessions for every unit to reach its target

    @property
    def units_complete(self) -> int:
        return sum(1 for unit in self.units if unit.completed >= self.target)

    @property
    def bars(self) -> list[tuple[UnitProgress, float, float]]:
        """Each unit with its share of the target (at most 1) and 1 - share, the top of its bar in the chart."""
        shares = [min(1.0, unit.completed / self.target) if self.target else 1.0 for unit in self.units]
        return [(unit, share, 1.0 - share) for unit, share in zip(self.units, shares, strict=True)]


def study_progress(study: Study) -> StudyProgress:
    rows = (
        StudyUnit.objects.filter(study=study, role=StudyUnit.Role.MAIN)
        .select_related("unit")
        .with_progress()
        .order_by("order")
    )
    units = [UnitProgress(row.pk, str(row.unit), row.completed, row.held) for row in rows]
    passing = Session.objects.filter(study=study, status=Session.Status.COMPLETED, passed=True).count()
    needed = study.sessions_needed if study.n_main_trials else 0
    return StudyProgress(target=study.target_per_unit, units=units, passing=passing, needed=needed)


@dataclass(frozen=True)
class PoolFit:
    images: int | None  # None: the pool cannot be opened (error says why)
    needed: int | None  # the fewest images the design's trials can be drawn from; None: no pool size is enough
    error: str = ""


def smallest_pool(study: Study, largest: int = 10_000_000) -> int | None:
    """The fewest pool images from which the protocol can draw the study's trials (check_pool passes from
    there on), by bisection."""
    protocol, design = study.protocol_plugin, study.design

    def fits(n: int) -> bool:
        try:
            protocol.check_pool(design, n)
        except DesignError:
            return False
        return True

    if not fits(largest):
        return None
    low, high = 1, largest
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if fits(middle) else (middle + 1, high)
    return low


def pool_fit(study: Study) -> PoolFit:
    """The study's pool's image count beside what its design needs, before anything is rendered."""
    needed = smallest_pool(study)
    try:
        images = len(open_pool(study.image_pool).keys())
    except (PoolError, OSError, ValueError) as exc:
        return PoolFit(None, needed, str(exc))
    return PoolFit(images, needed)


@dataclass(frozen=True)
class StudyTerms:
    """What a participant is told before they start: pay, time, trials, who may take part, the rules."""

    pay: str
    payment: str
    minutes: int
    n_trials: int  # practice and main
    requirements: list[str]
    rules: list[str]


def study_terms(study: Study) -> StudyTerms:
    recruiter_terms = recruiter_for(study.recruiter).terms(study)
    requirements = [
        f"A browser window of at least {study.min_window_width} x {study.min_window_height} pixels.",
        "Normal colour vision and normal or corrected-to-normal sight.",
    ]
    if study.devices == Study.Devices.DESKTOP:
        requirements.insert(0, "A desktop or laptop computer with a keyboard: phones and tablets are not supported.")
    if study.calibrate_size:
        requirements.append("A card of bank-card size (a credit, debit or ID card) to measure the screen with.")
    rules = [
        f"The instructions read for at least {study.min_instruction_s:g} seconds.",
        f"The practice passed within {study.max_practice_attempts} rounds.",
        f"The whole task taking between {study.min_total_s / 60:.0f} and {study.max_total_s / 60:.0f} minutes.",
        *study.protocol_plugin.rules(study.protocol_params, study.n_catch_trials),
    ]
    return StudyTerms(
        pay=study.pay or recruiter_terms.pay,
        payment=recruiter_terms.payment,
        minutes=study.expected_minutes,
        n_trials=study.n_practice_trials + study.trials_per_session,
        requirements=requirements,
        rules=rules,
    )


@dataclass(frozen=True)
class Participation:
    """Where a study's places stand: who holds units now, whose hold lapsed, which starts were refused."""

    holding: int  # sessions holding units now
    slots_held: int
    unconsented: int  # started, not consented yet: they hold nothing
    lapsed: int  # sessions whose hold lapsed (abandoned)
    refused: dict[str, int]  # refused starts by reason label, all days


def participation(study: Study) -> Participation:
    active = Session.objects.filter(study=study, status=Session.Status.ACTIVE)
    refused = (
        StartRefusal.objects.filter(study=study).values("reason").annotate(total=Sum("count")).order_by("reason")
    )
    labels = dict(StartRefusal.Reason.choices)
    return Participation(
        holding=active.filter(consented_at__isnull=False).count(),
        slots_held=SessionUnit.objects.filter(session__in=active, released_at__isnull=True).count(),
        unconsented=active.filter(consented_at__isnull=True).count(),
        lapsed=Session.objects.filter(study=study, status=Session.Status.ABANDONED).count(),
        refused={labels.get(row["reason"], row["reason"]): row["total"] for row in refused},
    )


@dataclass(frozen=True)
class TrialPicture:
    """A trial as the admin shows it for picking: its images' URLs by role, in rank order."""

    trial: Trial
    images: dict[str, list[str]]


def trial_pictures(trials: Iterable[Trial]) -> list[TrialPicture]:
    chosen = list(trials)
    rows = TrialImage.objects.filter(trial__in=chosen).order_by("trial_id", "role", "rank")
    urls = image_urls([row.image_id for row in rows])
    by_trial: dict[int, dict[str, list[str]]] = {}
    for row in rows:
        by_trial.setdefault(row.trial_id, {}).setdefault(row.role, []).append(urls[row.image_id])
    return [TrialPicture(trial, by_trial.get(trial.pk, {})) for trial in chosen]


def pickable_trials(source: Study, purpose: str) -> QuerySet[Trial]:
    """The trials of `source` a study may pick as practice (its practice trials, and the first batch
    of each main unit) or as catch trials (its catch trials)."""
    trials = Trial.objects.filter(study=source).select_related("unit").order_by("kind", "unit_id", "batch")
    if purpose == "catch":
        return trials.filter(kind=Trial.Kind.CATCH)
    return trials.filter(Q(kind=Trial.Kind.PRACTICE) | Q(kind=Trial.Kind.MAIN, batch=0))
