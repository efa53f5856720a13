"""Reads of the participant workflow: where a session stands and what its current screen shows."""

from __future__ import annotations

import random
from typing import Any

from django.core.files.storage import default_storage

from experiments.models import Event, Session, SessionTrial, Study, Trial
from experiments.planning import two_afc_layout
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
        "stage": stage,
        "phase": session.phase,
        "practice_attempts": session.practice_attempts,
        "trials_per_session": study.trials_per_session,
        "n_practice_trials": study.n_practice_trials,
        "prompt": study.prompt,
        "min_instruction_s": study.min_instruction_s,
        "timing": {
            "lock_ms": study.lock_ms,
            "feedback_delay_ms": study.feedback_delay_ms,
            "feedback_ms": study.feedback_ms,
        },
    }
    if stage == Stage.DONE:
        state["hand_back"] = recruiter_for(session.source).hand_back(session)
    return state


def _urls(ids: list[int]) -> dict[int, str]:
    files = StimulusImage.objects.in_bulk(ids)
    return {pk: default_storage.url(image.file) for pk, image in files.items()}


def _layout_ids(session_trial: SessionTrial) -> list[int]:
    layout = session_trial.layout
    return layout["min"] + layout["max"] + layout["queries"]


def current_trial(session: Session) -> dict[str, Any]:
    """The first unanswered trial as the browser sees it: images in display order, nothing else.

    Neither the trial's kind nor the right answer is derivable from this.
    """
    current = first_unanswered(session)
    if current is None:
        return {"done": True}
    following = (
        SessionTrial.objects.filter(session=session, index__gt=current.index)
        .order_by("index")
        .first()
    )
    preload_ids = _layout_ids(following) if following else []
    urls = _urls(_layout_ids(current) + preload_ids)
    round_indices = SessionTrial.objects.filter(
        session=session, phase=current.phase, attempt=current.attempt
    ).order_by("index").values_list("index", flat=True)
    round_indices = list(round_indices)
    layout = current.layout
    return {
        "done": False,
        "index": current.index,
        "phase": current.phase,
        "attempt": current.attempt,
        "position": round_indices.index(current.index) + 1,
        "of": len(round_indices),
        "references": {
            "min": [urls[i] for i in layout["min"]],
            "max": [urls[i] for i in layout["max"]],
        },
        "queries": [urls[i] for i in layout["queries"]],
        "preload": [urls[i] for i in dict.fromkeys(preload_ids)],
    }


def sample_screen(study: Study) -> dict[str, list[str]] | None:
    """An obvious practice trial laid out as a trial screen, for workers who only preview the
    task (no session, so nothing of the main block); None before the study is rendered."""
    trial = (
        Trial.objects.filter(study=study, kind=Trial.Kind.PRACTICE, practice_level=Trial.PracticeLevel.OBVIOUS)
        .prefetch_related("images")
        .order_by("unit_id", "batch")
        .first()
    )
    if trial is None:
        return None
    layout, _ = two_afc_layout(trial, random.Random(study.seed))
    urls = _urls(layout["min"] + layout["max"] + layout["queries"])
    return {part: [urls[i] for i in layout[part]] for part in ("min", "max", "queries")}
