"""Which trials a session shows, in which order and layout.

Every random choice comes from a generator seeded by the session's seed and a
purpose string, so a session can be replayed exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, QuerySet

from experiments.kept import KeptById
from experiments.models import Session, SessionTrial, SessionUnit, Study, Trial, TrialImage, cached_for_study
from experiments.prepared import PreparedInsert, PreparedSelect
from protocols.base import ShownImage


def session_rng(session: Session, purpose: str) -> random.Random:
    return random.Random(f"{session.seed}:{purpose}")


def _read_shown_images(trial_ids: list[int]) -> dict[int, tuple[ShownImage, ...]]:
    """Rows, not model instances: a session's main block lays out some 900 images."""
    rows = (
        TrialImage.objects.filter(trial__in=trial_ids)
        .order_by("trial_id", "role", "rank")
        .values_list("trial_id", "image_id", "role", "rank", "kept_map_id", "image__width", "image__height")
    )
    found: dict[int, list[ShownImage]] = {pk: [] for pk in trial_ids}
    for trial_id, image_id, role, rank, map_id, width, height in rows:
        found[trial_id].append(ShownImage(image_id, role, rank, map_id, width, height))
    return {pk: tuple(images) for pk, images in found.items()}


# A trial's images, kept by the process: the next sessions of the same units lay them out without reading
# them again (reading and making them was half of planning a main block).
_SHOWN_IMAGES = KeptById(_read_shown_images, limit=50_000)


def forget_shown_images() -> None:
    _SHOWN_IMAGES.forget()


def shown_images_of(trials: Iterable[Trial]) -> dict[int, tuple[ShownImage, ...]]:
    """Each trial's images with the sizes a layout needs, by trial id, in one query for those not kept."""
    return _SHOWN_IMAGES.of(trial.pk for trial in trials)


@dataclass(frozen=True)
class TrialPool:
    """Trials a round is drawn from, in a fixed order, with the images their layouts need (by trial id)."""

    trials: tuple[Trial, ...]
    images: dict[int, tuple[ShownImage, ...]]


def _pool(trials: QuerySet[Trial]) -> TrialPool:
    found = tuple(trials.order_by("study_id", "unit_id", "batch"))
    return TrialPool(found, shown_images_of(found))


# A session's rounds are written with one statement each, prepared once (experiments.prepared).
_SESSION_TRIALS = PreparedInsert(SessionTrial)


def _append(
    session: Session,
    trials: list[Trial],
    images: Mapping[int, Sequence[ShownImage]],
    *,
    phase: str,
    attempt: int,
    purpose: str,
    start: int,
) -> None:
    """Lay out the trials as the session's next round, from index start (after every trial it has)."""
    rng = session_rng(session, purpose)
    protocol, params = session.study.protocol_plugin, session.study.protocol_params
    rows = []
    for offset, trial in enumerate(trials):
        layout = protocol.layout(images[trial.pk], trial.content, params, rng)
        rows.append(
            SessionTrial(
                session=session,
                index=start + offset,
                trial=trial,
                phase=phase,
                attempt=attempt,
                position=offset + 1,
                round_length=len(trials),
                layout=layout.display,
                key=layout.key,
            )
        )
    _SESSION_TRIALS.create_many(rows)


def practice_trials(study: Study) -> QuerySet[Trial]:
    """The study's hand-picked practice trials, or else its own."""
    picked = study.practice_trials.all()
    return picked if picked.exists() else Trial.objects.filter(study=study, kind=Trial.Kind.PRACTICE)


def catch_trials(study: Study) -> QuerySet[Trial]:
    """The study's hand-picked catch trials, or else the catch trials of its units."""
    picked = study.catch_trials.all()
    return picked if picked.exists() else Trial.objects.filter(study=study, kind=Trial.Kind.CATCH)


# Every session of a study plans from the same practice and catch trials: read once per process and study
# for a short while (Study's cache), not at every start and every main block.
def practice_pool(study: Study) -> TrialPool:
    return cached_for_study("practice pool", study.pk, lambda: _pool(practice_trials(study)))


def catch_pool(study: Study) -> TrialPool:
    return cached_for_study("catch pool", study.pk, lambda: _pool(catch_trials(study)))


def plan_practice_round(session: Session, start: int) -> None:
    """Append practice round number session.practice_attempts (counted, and saved, by the caller) of every
    practice trial from index start, in a fresh seeded order."""
    pool = practice_pool(session.study)
    trials = list(pool.trials)
    purpose = f"practice:{session.practice_attempts}"
    session_rng(session, purpose + ":order").shuffle(trials)
    _append(
        session, trials, pool.images,
        phase=Session.Phase.PRACTICE, attempt=session.practice_attempts, purpose=purpose, start=start,
    )


def _held_main_trials(session: int, study: int) -> QuerySet[Trial]:
    # Only the held batches' trials, not every batch of the held units: each trial brings its images.
    held = SessionUnit.objects.filter(
        session_id=session, study_unit__unit_id=OuterRef("unit_id"), batch=OuterRef("batch")
    )
    return Trial.objects.filter(Exists(held), study_id=study, kind=Trial.Kind.MAIN).order_by()


# Every session's main block reads its trials with this statement, compiled once (experiments.prepared).
_HELD_MAIN_TRIALS = PreparedSelect(
    _held_main_trials, session=SessionUnit._meta.get_field("session"), study=Trial._meta.get_field("study")
)


def plan_main_block(session: Session, start: int) -> None:
    """Append, from index start, the main trials of the session's units with the catch trials at random
    positions."""
    main_trials = _HELD_MAIN_TRIALS.all(session=session.pk, study=session.study_id)
    rng = session_rng(session, "main:order")
    main_trials.sort(key=lambda t: t.unit_id)
    rng.shuffle(main_trials)

    catch = catch_pool(session.study)
    catch_pool_trials = list(catch.trials)
    # Prefer catch trials of units the participant does not see in the main block.
    shown = {trial.unit_id for trial in main_trials}
    rng.shuffle(catch_pool_trials)
    catch_pool_trials.sort(key=lambda t: t.unit_id in shown)
    chosen_catch = catch_pool_trials[: session.study.n_catch_trials]

    ordered = list(main_trials)
    for trial in chosen_catch:
        ordered.insert(rng.randint(0, len(ordered)), trial)
    images = {**shown_images_of(main_trials), **catch.images}
    _append(session, ordered, images, phase=Session.Phase.MAIN, attempt=1, purpose="main:layout", start=start)
