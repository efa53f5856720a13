"""Which trials a session shows, in which order and layout.

Every random choice comes from a generator seeded by the session's seed and a
purpose string, so a session can be replayed exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from django.db.models import Max, Q, QuerySet

from experiments.models import Session, SessionTrial, SessionUnit, Study, Trial, TrialImage
from protocols.base import ShownImage


def session_rng(session: Session, purpose: str) -> random.Random:
    return random.Random(f"{session.seed}:{purpose}")


def shown_images_of(trials: Iterable[Trial]) -> dict[int, list[ShownImage]]:
    """Each trial's images with the sizes a layout needs, by trial id, in one query for all of them (rows, not
    model instances: a session's main block lays out some 900 images)."""
    rows = (
        TrialImage.objects.filter(trial__in=[trial.pk for trial in trials])
        .order_by("trial", "role", "rank")
        .values_list("trial_id", "image_id", "role", "rank", "kept_map_id", "image__width", "image__height")
    )
    found: dict[int, list[ShownImage]] = {trial.pk: [] for trial in trials}
    for trial_id, image_id, role, rank, map_id, width, height in rows:
        found[trial_id].append(ShownImage(image_id, role, rank, map_id, width, height))
    return found


def _append(session: Session, trials: list[Trial], phase: str, attempt: int, purpose: str) -> None:
    rng = session_rng(session, purpose)
    last = session.session_trials.aggregate(m=Max("index"))["m"]
    start = 0 if last is None else last + 1
    protocol, params = session.study.protocol_plugin, session.study.protocol_params
    images = shown_images_of(trials)
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
    SessionTrial.objects.bulk_create(rows)


def practice_trials(study: Study) -> QuerySet[Trial]:
    """The study's hand-picked practice trials, or else its own."""
    picked = study.practice_trials.all()
    return picked if picked.exists() else Trial.objects.filter(study=study, kind=Trial.Kind.PRACTICE)


def catch_trials(study: Study) -> QuerySet[Trial]:
    """The study's hand-picked catch trials, or else the catch trials of its units."""
    picked = study.catch_trials.all()
    return picked if picked.exists() else Trial.objects.filter(study=study, kind=Trial.Kind.CATCH)


def plan_practice_round(session: Session) -> None:
    """Append one more round of every practice trial, in a fresh seeded order."""
    session.practice_attempts += 1
    session.save(update_fields=["practice_attempts"])
    trials = list(practice_trials(session.study).order_by("study_id", "unit_id", "batch"))
    purpose = f"practice:{session.practice_attempts}"
    session_rng(session, purpose + ":order").shuffle(trials)
    _append(session, trials, Session.Phase.PRACTICE, session.practice_attempts, purpose)


def plan_main_block(session: Session) -> None:
    """Append the main trials of the session's units with the catch trials at random positions."""
    slots = SessionUnit.objects.filter(session=session).select_related("study_unit")
    wanted = {(slot.study_unit.unit_id, slot.batch) for slot in slots}
    # Only the held batches' trials, not every batch of the held units: each trial brings its images.
    held = Q(pk__in=[])
    for unit_id, batch in wanted:
        held |= Q(unit_id=unit_id, batch=batch)
    main_trials = list(Trial.objects.filter(held, study=session.study_id, kind=Trial.Kind.MAIN))
    rng = session_rng(session, "main:order")
    main_trials.sort(key=lambda t: t.unit_id)
    rng.shuffle(main_trials)

    catch_pool = list(catch_trials(session.study).order_by("study_id", "unit_id", "batch"))
    # Prefer catch trials of units the participant does not see in the main block.
    shown = {unit for unit, _ in wanted}
    rng.shuffle(catch_pool)
    catch_pool.sort(key=lambda t: t.unit_id in shown)
    chosen_catch = catch_pool[: session.study.n_catch_trials]

    ordered = list(main_trials)
    for trial in chosen_catch:
        ordered.insert(rng.randint(0, len(ordered)), trial)
    _append(session, ordered, Session.Phase.MAIN, 1, "main:layout")

