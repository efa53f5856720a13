"""Rendering a study: sample its units, record their activations, and store every trial its protocol builds.

The stimuli engine records activations and stores images; the study's protocol
decides which images make which trials; this module connects the two and
writes the rows. Idempotent and resumable: every step keeps what an earlier
(possibly crashed) run finished, so a retried task only does the rest.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from experiments.models import Study, StudyUnit, Trial, TrialImage
from protocols.base import PRACTICE, Recording, TrialPlan, UnitActivations, Variant
from stimuli.models import StimulusImage, Unit
from stimuli.networks import Network, channel_counts, default_layers, load_network
from stimuli.pools import open_pool
from stimuli.recording import Progress, no_progress, record_activations
from stimuli.sampling import sample_layer_channels, seeded_rng
from stimuli.storage import StimulusWriter
from stimuli.tokens import token_layout

# Separate random streams of one study seed, so that changing how trials are
# drawn never changes which units were drawn.
UNIT_STREAM = 0
TRIAL_STREAM = 1
WRITING = "writing stimuli"

# How each kind of recording a protocol asks for is made.
RECORDERS = {Recording.CHANNEL_MEANS: record_activations}


class RenderRefused(ValueError):
    """The study cannot be rendered as configured; the message says why."""


def layers_of_interest(study: Study, network: Network) -> list[str]:
    """Study.layers, else VisionModel.layers, else IMI's layers of interest for the network's family."""
    return list(study.layers or study.model.layers or default_layers(network))


def ranking_network(study: Study) -> Network:
    """The study's network, given the pixels participants see unless the study ranks by the model's own
    preprocessing (Study.ranking_crop)."""
    network = load_network(study.model)
    if study.ranking_crop == Study.RankingCrop.SHOWN:
        return network.with_shown_crop(study.resize_to, study.image_size)
    return network


def sample_units(study: Study, network: Network | None = None) -> list[StudyUnit]:
    """The study's units: n_units main ones, then n_practice_trials practice ones.

    Drawn as IMI does (random layer of interest, then random channel, no unit
    twice), seeded by study.seed. A study that already has units keeps them.
    """
    existing = list(study.study_units.select_related("unit").order_by("order"))
    if existing:
        return existing
    network = network or ranking_network(study)
    layers = layers_of_interest(study, network)
    counts = channel_counts(network, layers)
    drawn = sample_layer_channels(
        counts, study.n_units + study.n_practice_trials, seeded_rng(study.seed, UNIT_STREAM)
    )
    with transaction.atomic():
        for order, (layer, channel) in enumerate(drawn):
            unit, _ = Unit.objects.get_or_create(
                model=study.model, kind=Unit.Kind.CHANNEL, layer=layer, channel=channel
            )
            role = StudyUnit.Role.MAIN if order < study.n_units else StudyUnit.Role.PRACTICE
            depth = layers.index(layer) / (len(layers) - 1) if len(layers) > 1 else 0.0
            StudyUnit.objects.get_or_create(
                study=study, unit=unit, defaults={"role": role, "order": order, "relative_depth": depth}
            )
    return list(study.study_units.select_related("unit").order_by("order"))


def activation_path(study: Study) -> Path:
    return Path(settings.WORK_DIR) / "activations" / f"study-{study.pk}.npy"


def render_study(study: Study, progress: Progress = no_progress) -> None:
    """Sample units, record activations, and store every trial of the study's protocol.

    progress(stage, done, total) is called as work advances (Job.report fits).
    The study is `rendering` meanwhile and `ready` after; an open or closed
    study keeps its status. A failed run puts a rendering study back to draft.
    A study whose protocol, condition, unit kinds or parameters are not
    implemented or not valid is refused before anything is done.
    """
    try:
        study.full_clean()
    except ValidationError as exc:
        raise RenderRefused(f"Study {study.slug} cannot be rendered: {' '.join(exc.messages)}") from exc
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
    protocol, design = study.protocol_plugin, study.design
    progress("sampling units", 0, 1)
    network = ranking_network(study)
    study_units = sample_units(study, network)
    study.check_implemented()  # units sampled by an earlier run may be of another kind
    source = open_pool(study.image_pool)
    # Fail before recording, not after, when the pool cannot give the trials.
    protocol.check_pool(design, len(source.keys()))
    spec = study.model
    # A transformer unit's mean leaves its prefix tokens out (stimuli.tokens); recorded with the crop.
    ranking_input = {
        **network.preprocessing, "prefix_tokens_left_out": token_layout(network.module).num_prefix_tokens,
    }
    activations = RECORDERS[protocol.recording](
        network,
        source,
        [su.unit.ref() for su in study_units],
        path,
        identity=f"{spec.timm_name}|{spec.weights}|{spec.checkpoint_path}|{json.dumps(ranking_input, sort_keys=True)}",
        progress=progress,
    )
    Study.objects.filter(pk=study.pk).update(ranking_input=ranking_input)
    study.ranking_input = ranking_input
    writer = StimulusWriter(source, study.resize_to, study.image_size)
    practice = [su for su in study_units if su.role == StudyUnit.Role.PRACTICE]
    for index, study_unit in enumerate(study_units):
        progress(WRITING, index, len(study_units))
        if Trial.objects.filter(study=study, unit=study_unit.unit).exists():
            continue  # written whole by an earlier run (one transaction per unit)
        column = np.array(activations[:, index])
        unit = UnitActivations(
            activations=column,
            role=study_unit.role,
            practice_index=practice.index(study_unit) if study_unit.role == PRACTICE else 0,
            rng=seeded_rng(study.seed, TRIAL_STREAM, study_unit.order),
        )
        _write_trials(study, study_unit.unit, protocol.build_trials(design, unit), column, writer)
    progress(WRITING, len(study_units), len(study_units))


def _write_trials(
    study: Study, unit: Unit, plans: list[TrialPlan], column: np.ndarray, writer: StimulusWriter
) -> None:
    # Files first (each is idempotent on its own), then all of the unit's rows
    # in one transaction, so a unit has either all its trials or none.
    images: dict[tuple[int, int], StimulusImage] = {
        (number, position): writer.stimulus(slot.row, disguised=slot.variant is Variant.DISGUISED_COPY)
        for number, plan in enumerate(plans)
        for position, slot in enumerate(plan.images)
    }
    with transaction.atomic():
        for number, plan in enumerate(plans):
            trial, created = Trial.objects.get_or_create(
                study=study,
                unit=unit,
                kind=plan.kind,
                batch=plan.batch,
                defaults={"difficulty": plan.difficulty, "practice_level": plan.practice_level},
            )
            if created:
                TrialImage.objects.bulk_create(
                    TrialImage(
                        trial=trial,
                        image=images[(number, position)],
                        role=slot.role,
                        rank=slot.rank,
                        activation=float(column[slot.row]),
                    )
                    for position, slot in enumerate(plan.images)
                )


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
