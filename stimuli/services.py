"""Writes of the stimuli app: sampling a study's units and rendering its 2-AFC trials.

Both are idempotent and resumable: every step keeps what an earlier (possibly
crashed) run finished, so a retried task only does the rest.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction

from experiments.models import Difficulty, Study, StudyUnit, Trial, TrialImage
from stimuli.models import StimulusImage, Unit
from stimuli.networks import Network, channel_counts, layers_of_interest, load_network
from stimuli.pools import ImageSource, open_pool
from stimuli.recording import Progress, no_progress, record_activations
from stimuli.sampling import sample_layer_channels, seeded_rng
from stimuli.selection import TrialStimuli, catch_trial, query_windows, select_trials
from stimuli.storage import disguised_copy, jpeg_bytes, resized_and_cropped, store_stimulus

# Separate random streams of one study seed, so that changing how trials are
# drawn never changes which units were drawn.
UNIT_STREAM = 0
TRIAL_STREAM = 1
WRITING = "writing stimuli"
QUERY_ROLES = (TrialImage.Role.QUERY_POSITIVE, TrialImage.Role.QUERY_NEGATIVE)


def sample_units(study: Study, network: Network | None = None) -> list[StudyUnit]:
    """The study's units: n_units main ones, then n_practice_trials practice ones.

    Drawn as IMI does (random layer of interest, then random channel, no unit
    twice), seeded by study.seed. A study that already has units keeps them.
    """
    existing = list(study.study_units.select_related("unit").order_by("order"))
    if existing:
        return existing
    network = network or load_network(study.model)
    counts = channel_counts(network, layers_of_interest(study, network))
    drawn = sample_layer_channels(
        counts, study.n_units + study.n_practice_trials, seeded_rng(study.seed, UNIT_STREAM)
    )
    with transaction.atomic():
        for order, (layer, channel) in enumerate(drawn):
            unit, _ = Unit.objects.get_or_create(
                model=study.model, kind=Unit.Kind.CHANNEL, layer=layer, channel=channel
            )
            role = StudyUnit.Role.MAIN if order < study.n_units else StudyUnit.Role.PRACTICE
            StudyUnit.objects.get_or_create(
                study=study, unit=unit, defaults={"role": role, "order": order}
            )
    return list(study.study_units.select_related("unit").order_by("order"))


def activation_path(study: Study) -> Path:
    return Path(settings.WORK_DIR) / "activations" / f"study-{study.pk}.npy"


def render_study(study: Study, progress: Progress = no_progress) -> None:
    """Sample units, record activations, select and store every trial of a 2-AFC study.

    progress(stage, done, total) is called as work advances (Job.report fits).
    The study is `rendering` meanwhile and `ready` after; an open or closed
    study keeps its status. A failed run puts a rendering study back to draft.
    """
    path = activation_path(study)
    with _exclusive(path.with_suffix(".lock")):
        _move_status(study, [Study.Status.DRAFT, Study.Status.READY], Study.Status.RENDERING)
        try:
            _render(study, path, progress)
        except BaseException:
            _move_status(study, [Study.Status.RENDERING], Study.Status.DRAFT)
            raise
        _move_status(study, [Study.Status.RENDERING], Study.Status.READY)


def _render(study: Study, path: Path, progress: Progress) -> None:
    progress("sampling units", 0, 1)
    network = load_network(study.model)
    study_units = sample_units(study, network)
    source = open_pool(study.image_pool)
    _check_pool_size(study, len(source.keys()))
    spec = study.model
    activations = record_activations(
        network,
        source,
        [(su.unit.layer, su.unit.channel) for su in study_units],
        path,
        identity=f"{spec.timm_name}|{spec.weights}|{spec.checkpoint_path}",
        progress=progress,
    )
    writer = _StimulusWriter(source, study.resize_to, study.image_size)
    practice = [su for su in study_units if su.role == StudyUnit.Role.PRACTICE]
    for index, study_unit in enumerate(study_units):
        progress(WRITING, index, len(study_units))
        if Trial.objects.filter(study=study, unit=study_unit.unit).exists():
            continue  # written whole by an earlier run (one transaction per unit)
        column = np.array(activations[:, index])
        if study_unit.role == StudyUnit.Role.PRACTICE:
            plans = _practice_plans(study, study_unit, column, practice.index(study_unit))
        else:
            plans = _main_plans(study, study_unit, column)
        _write_trials(study, study_unit.unit, plans, column, writer)
    progress(WRITING, len(study_units), len(study_units))


def _check_pool_size(study: Study, n_images: int) -> None:
    """Fail before recording, not after, when the pool cannot give the trials."""
    query_windows(n_images, study.trials_per_unit, study.difficulty, study.references_per_side)
    if study.n_practice_trials > study.n_practice_obvious:
        query_windows(n_images, 1, study.practice_less_obvious_difficulty, study.references_per_side)


@dataclass(frozen=True)
class _TrialPlan:
    kind: str
    difficulty: str
    stimuli: TrialStimuli
    practice_level: str = Trial.PracticeLevel.NONE


def _main_plans(study: Study, study_unit: StudyUnit, column: np.ndarray) -> list[_TrialPlan]:
    """t main trials, and one catch trial on batch 0's references."""
    trials = select_trials(
        column,
        study.trials_per_unit,
        study.difficulty,
        seeded_rng(study.seed, TRIAL_STREAM, study_unit.order),
        study.references_per_side,
    )
    plans = [_TrialPlan(Trial.Kind.MAIN, study.difficulty, trial) for trial in trials]
    return plans + [_TrialPlan(Trial.Kind.CATCH, study.difficulty, catch_trial(trials[0]))]


def _practice_plans(
    study: Study, study_unit: StudyUnit, column: np.ndarray, index: int
) -> list[_TrialPlan]:
    """One practice trial: the first n_practice_obvious units obvious (easy), the rest less so.

    Drawn with t = 1, since only one trial per practice unit is shown: the
    references are the unit's 9 most extreme images, which suits a warm-up and
    lets less obvious windows fit in smaller pools.
    """
    if index < study.n_practice_obvious:
        level, difficulty = Trial.PracticeLevel.OBVIOUS, Difficulty.EASY
    else:
        level, difficulty = Trial.PracticeLevel.LESS_OBVIOUS, study.practice_less_obvious_difficulty
    [trial] = select_trials(
        column,
        1,
        difficulty,
        seeded_rng(study.seed, TRIAL_STREAM, study_unit.order),
        study.references_per_side,
    )
    return [_TrialPlan(Trial.Kind.PRACTICE, difficulty, trial, level)]


def _slots(stimuli: TrialStimuli) -> list[tuple[str, int, int]]:
    """(role, rank, pool row) of every image of a trial; rank 0 is the most extreme."""
    return (
        [(TrialImage.Role.REFERENCE_MIN, rank, row) for rank, row in enumerate(stimuli.reference_min)]
        + [(TrialImage.Role.REFERENCE_MAX, rank, row) for rank, row in enumerate(stimuli.reference_max)]
        + [
            (TrialImage.Role.QUERY_POSITIVE, 0, stimuli.query_positive),
            (TrialImage.Role.QUERY_NEGATIVE, 0, stimuli.query_negative),
        ]
    )


def _write_trials(
    study: Study, unit: Unit, plans: list[_TrialPlan], column: np.ndarray, writer: _StimulusWriter
) -> None:
    # Files first (each is idempotent on its own), then all of the unit's rows
    # in one transaction, so a unit has either all its trials or none.
    images = {
        (plan.kind, plan.stimuli.batch, role, rank): writer.stimulus(
            row, copy=plan.kind == Trial.Kind.CATCH and role in QUERY_ROLES
        )
        for plan in plans
        for role, rank, row in _slots(plan.stimuli)
    }
    with transaction.atomic():
        for plan in plans:
            trial, created = Trial.objects.get_or_create(
                study=study,
                unit=unit,
                kind=plan.kind,
                batch=plan.stimuli.batch,
                defaults={"difficulty": plan.difficulty, "practice_level": plan.practice_level},
            )
            if created:
                TrialImage.objects.bulk_create(
                    TrialImage(
                        trial=trial,
                        image=images[(plan.kind, plan.stimuli.batch, role, rank)],
                        role=role,
                        rank=rank,
                        activation=float(column[row]),
                    )
                    for role, rank, row in _slots(plan.stimuli)
                )


class _StimulusWriter:
    """Stores pool images as stimuli, once per image and variant within a run."""

    def __init__(self, source: ImageSource, resize_to: int, size: int) -> None:
        self.source, self.resize_to, self.size = source, resize_to, size
        self.keys = source.keys()
        self.stored: dict[tuple[int, bool], StimulusImage] = {}

    def stimulus(self, row: int, copy: bool = False) -> StimulusImage:
        """The stored image of pool row `row`, or its byte-different copy for catch queries."""
        if (row, copy) not in self.stored:
            key = self.keys[row]
            image = resized_and_cropped(self.source.load(key), self.resize_to, self.size)
            content = disguised_copy(image) if copy else jpeg_bytes(image)
            self.stored[(row, copy)] = store_stimulus(content, key)
        return self.stored[(row, copy)]


def _move_status(study: Study, sources: list[str], target: str) -> None:
    # A queryset update, so that admin edits of other fields made meanwhile survive.
    if Study.objects.filter(pk=study.pk, status__in=sources).update(status=target):
        study.status = target


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold a file lock, so that two renders of one study on a host run one after the other."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
