"""Reads of the participant workflow: where a session stands and what its current screen shows."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.core.files.storage import default_storage
from django.db.models import Case, Q, QuerySet, Sum, When

from experiments.models import Event, Session, SessionTrial, SessionUnit, StartRefusal, Study, Trial, TrialImage
from experiments.planning import practice_trials, shown_images
from experiments.recruiters import recruiter_for
from stimuli.models import StimulusImage


class Stage:
    CONSENT = "consent"
    INSTRUCTIONS = "instructions"
    TRIALS = "trials"
    FEEDBACK = "feedback"
    DONE = "done"


def first_unanswered(session: Session) -> SessionTrial | None:
    return (
        SessionTrial.objects.filter(session=session, response__isnull=True)
        .select_related("trial")
        .order_by("index")
        .first()
    )


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
        "timing": {
            "lock_ms": study.lock_ms,
            "feedback_delay_ms": study.feedback_delay_ms,
            "feedback_ms": study.feedback_ms,
        },
    }
    if stage == Stage.DONE:
        state["hand_back"] = recruiter_for(session.source).hand_back(session)
    return state


def image_urls(ids: list[int]) -> dict[int, str]:
    files = StimulusImage.objects.in_bulk(ids)
    return {pk: default_storage.url(image.file) for pk, image in files.items()}


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


def trial_payload(session: Session, current: SessionTrial | None) -> dict[str, Any]:
    """The session's current trial as the browser sees it: the protocol's payload in a generic envelope.

    Neither the trial's kind nor the right answer is derivable from this.
    """
    study = session.study
    protocol = study.protocol_plugin
    if current is None:
        return {"done": True, "protocol": protocol.name}
    following = (
        SessionTrial.objects.filter(session=session, index__gt=current.index)
        .order_by("index")
        .first()
    )
    preload_ids = protocol.image_ids(following.layout) if following else []
    urls = image_urls(protocol.image_ids(current.layout) + preload_ids)
    round_indices = list(
        SessionTrial.objects.filter(session=session, phase=current.phase, attempt=current.attempt)
        .order_by("index")
        .values_list("index", flat=True)
    )
    return {
        "done": False,
        "protocol": protocol.name,
        "index": current.index,
        "phase": current.phase,
        "attempt": current.attempt,
        "position": round_indices.index(current.index) + 1,
        "of": len(round_indices),
        **protocol.payload(current.layout, urls, study.protocol_params),
        "preload": [urls[i] for i in dict.fromkeys(preload_ids)],
    }


def sample_screen(study: Study) -> dict[str, Any] | None:
    """A practice trial's payload (an obvious one where levels are known), for workers who only preview the
    task (no session, so nothing of the main block); None before the study is rendered."""
    trial = (
        practice_trials(study)
        .prefetch_related("images")
        .order_by(Case(When(practice_level=Trial.PracticeLevel.OBVIOUS, then=0), default=1), "unit_id", "batch")
        .first()
    )
    if trial is None:
        return None
    protocol, params = study.protocol_plugin, study.protocol_params
    layout = protocol.layout(shown_images(trial), params, random.Random(study.seed))
    return protocol.payload(layout.display, image_urls(protocol.image_ids(layout.display)), params)


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
