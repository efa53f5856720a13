"""Reads of the participant workflow: where a session stands and what its current screen shows."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.core.files.storage import default_storage
from django.core.signals import setting_changed
from django.db.models import Count, Exists, OuterRef, Subquery, Sum
from django.dispatch import receiver

from experiments.models import Event, Response, Session, SessionTrial, SessionUnit, StartRefusal, Study, Trial
from experiments.planning import shown_images
from experiments.recruiters import recruiter_for
from stimuli.models import StimulusImage


class Stage:
    CONSENT = "consent"
    INSTRUCTIONS = "instructions"
    TRIALS = "trials"
    FEEDBACK = "feedback"
    DONE = "done"


def first_unanswered(session: Session) -> SessionTrial | None:
    return SessionTrial.objects.filter(session=session, response__isnull=True).order_by("index").first()


@dataclass(frozen=True)
class Upcoming:
    """The current trial (the first unanswered) and the one after it.

    Answers come in index order, so every trial after the current one is unanswered; and a round is
    planned only once the one before it is answered, so `following` is of the current trial's round,
    or None when the current trial ends its round.
    """

    current: SessionTrial | None
    following: SessionTrial | None
    position: int = 0  # the current trial's place in its round, from 1 (with positions=True)
    of: int = 0  # its round's length (with positions=True)
    replayed: bool | None = False  # the session has an answer with this client_id (with replay_of; None: not known)


def _round_count(**index: Any) -> Subquery:
    """How many trials of the outer trial's round (session, phase, attempt) match `index` lookups."""
    rows = SessionTrial.objects.filter(
        session=OuterRef("session"), phase=OuterRef("phase"), attempt=OuterRef("attempt"), **index
    )
    return Subquery(rows.order_by().values("session").annotate(n=Count("pk")).values("n"))


def upcoming(session: Session, positions: bool = False, replay_of: uuid.UUID | None = None) -> Upcoming:
    """Both trials in one query; with positions, the current one's place in its round, and with replay_of,
    whether the session has an answer with that client_id, in the same query. With no trial left the
    replay is not known (replayed None)."""
    rows = SessionTrial.objects.filter(session=session, response__isnull=True).order_by("index")
    if positions:
        rows = rows.annotate(
            round_position=_round_count(index__lte=OuterRef("index")), round_length=_round_count()
        )
    if replay_of is not None:
        rows = rows.annotate(replayed=Exists(Response.objects.filter(session=session, client_id=replay_of)))
    pair: list[Any] = list(rows[:2])  # SessionTrial rows, with the annotations asked for
    if not pair:
        return Upcoming(None, None, replayed=None if replay_of is not None else False)
    current, following = pair[0], (pair[1] if len(pair) > 1 else None)
    return Upcoming(
        current,
        following,
        current.round_position if positions else 0,
        current.round_length if positions else 0,
        bool(current.replayed) if replay_of is not None else False,
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


# Stored images' URLs by id, kept by the process: a stored image never changes (its name is the hash of its
# bytes), so once read its URL holds for as long as the storage settings do. Bounded, as a study has a few
# thousand images.
_URLS: dict[int, str] = {}
_URLS_KEPT = 200_000


@receiver(setting_changed)
def _forget_urls(setting: str, **kwargs: Any) -> None:
    if setting in ("STORAGES", "MEDIA_URL"):
        forget_image_urls()


def forget_image_urls() -> None:
    _URLS.clear()


def image_urls(ids: list[int]) -> dict[int, str]:
    missing = [pk for pk in ids if pk not in _URLS]
    if missing:
        if len(_URLS) > _URLS_KEPT:
            _URLS.clear()
        files = StimulusImage.objects.filter(pk__in=missing).values_list("pk", "file")
        _URLS.update({pk: default_storage.url(name) for pk, name in files})
    return {pk: _URLS[pk] for pk in ids if pk in _URLS}


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


def trial_payload(session: Session, trials: Upcoming) -> dict[str, Any]:
    """The session's current trial as the browser sees it: the protocol's payload in a generic envelope.

    Neither the trial's kind nor the right answer is derivable from this.
    """
    study = session.study
    protocol = study.protocol_plugin
    current, following = trials.current, trials.following
    if current is None:
        return {"done": True, "protocol": protocol.name}
    preload_ids = protocol.image_ids(following.layout) if following else []
    urls = image_urls(protocol.image_ids(current.layout) + preload_ids)
    return {
        "done": False,
        "protocol": protocol.name,
        "index": current.index,
        "phase": current.phase,
        "attempt": current.attempt,
        "position": trials.position,
        "of": trials.of,
        **protocol.payload(current.layout, urls, study.protocol_params),
        "preload": [urls[i] for i in dict.fromkeys(preload_ids)],
    }


def sample_screen(study: Study) -> dict[str, Any] | None:
    """An obvious practice trial's payload, for workers who only preview the task (no session,
    so nothing of the main block); None before the study is rendered."""
    trial = (
        Trial.objects.filter(study=study, kind=Trial.Kind.PRACTICE, practice_level=Trial.PracticeLevel.OBVIOUS)
        .prefetch_related("images")
        .order_by("unit_id", "batch")
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
