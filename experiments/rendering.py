"""Rendering a study: sample its units, record their activations, and store every trial its protocol builds.

The stimuli engine records activations and stores images; the study's protocol
decides which images make which trials; this module connects the two and
writes the rows. Idempotent and resumable: every step keeps what an earlier
(possibly crashed) run finished, so a retried task only does the rest.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from experiments.models import Study, StudyUnit, Trial, TrialImage
from experiments.unit_sources import unit_source
from protocols.base import (
    MAIN,
    PRACTICE,
    Design,
    ImageSlot,
    Protocol,
    Recording,
    TrialPlan,
    UnitActivations,
    Variant,
    overlay_role,
)
from stimuli.kept_maps import keep_map
from stimuli.models import KeptMap, StimulusImage, Unit
from stimuli.networks import Network, default_layers, load_network
from stimuli.pools import ImageSource, open_pool
from stimuli.recording import Progress, no_progress, record_activations
from stimuli.sampling import seeded_rng
from stimuli.storage import StimulusWriter, png_bytes, store_stimulus
from stimuli.stored_maps import maps_on_stimuli
from stimuli.tokens import token_layout

# Separate random streams of one study seed, so that changing how trials are
# drawn never changes which units were drawn.
UNIT_STREAM = 0
TRIAL_STREAM = 1
WRITING = "writing stimuli"
CHOOSING = "choosing practice units"

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
    """The study's units: n_units main ones, then n_practice_trials practice ones, or, where the protocol
    chooses its practice units among several candidates each (PracticeChoice), that many times as many
    practice candidates, among which the render keeps the most obvious (_choose_practice).

    Drawn by the source of the study's unit kind (experiments.unit_sources:
    channels as IMI does, a random layer of interest then a random channel;
    or latents of the study's SAE), no unit twice, seeded by study.seed; the
    study's practice_rule says how the practice units are chosen. A study that
    already has units keeps them.
    """
    existing = list(study.study_units.select_related("unit__sae").order_by("order"))
    if existing:
        return existing
    network = network or ranking_network(study)
    choice = study.protocol_plugin.practice_choice(study.design.params)
    drawn = unit_source(study.unit_kind).draw(
        study,
        network,
        layers_of_interest(study, network),
        study.n_units + choice.candidates * study.n_practice_trials,
        seeded_rng(study.seed, UNIT_STREAM),
    )
    practice = StudyUnit.Role.PRACTICE if choice.candidates == 1 else StudyUnit.Role.PRACTICE_CANDIDATE
    with transaction.atomic():
        for order, sampled in enumerate(drawn):
            unit, _ = Unit.objects.get_or_create(
                model=study.model, kind=study.unit_kind, layer=sampled.layer, channel=sampled.index, sae=sampled.sae
            )
            role = StudyUnit.Role.MAIN if order < study.n_units else practice
            StudyUnit.objects.get_or_create(
                study=study,
                unit=unit,
                defaults={"role": role, "order": order, "relative_depth": sampled.relative_depth},
            )
        Study.objects.filter(pk=study.pk).update(practice_rule=choice.rule)
    study.practice_rule = choice.rule
    return list(study.study_units.select_related("unit__sae").order_by("order"))


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
    if study.protocol_plugin.derived_from is not None:
        raise RenderRefused(
            f"Study {study.slug} is not rendered: its protocol's studies are built from a "
            f"{study.protocol_plugin.derived_from} study's responses (manage.py build_derived_study)."
        )
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
    identity = f"{spec.timm_name}|{spec.weights}|{spec.checkpoint_path}|{json.dumps(ranking_input, sort_keys=True)}"
    activations = RECORDERS[protocol.recording](
        network,
        source,
        [su.unit.ref() for su in study_units],
        path,
        identity=identity,
        pooling=study.pooling,
        progress=progress,
    )
    Study.objects.filter(pk=study.pk).update(ranking_input=ranking_input)
    study.ranking_input = ranking_input
    writer = StimulusWriter(source, study.resize_to, study.image_size)
    render = _Render(network, source, writer, protocol, design, path.with_suffix(""), identity, source.keys())
    _choose_practice(study, study_units, activations, render, progress)
    practice = [su for su in study_units if su.role == StudyUnit.Role.PRACTICE]
    for index, study_unit in enumerate(study_units):
        progress(WRITING, index, len(study_units))
        if study_unit.role == StudyUnit.Role.PRACTICE_CANDIDATE:
            continue  # drawn, and not kept
        if Trial.objects.filter(study=study, unit=study_unit.unit).exists():
            continue  # written whole by an earlier run (one transaction per unit)
        column = np.array(activations[:, index])
        practice_index = practice.index(study_unit) if study_unit.role == PRACTICE else 0
        plans = protocol.build_trials(design, render.unit(study, study_unit, column, practice_index))
        _write_trials(study, study_unit.unit, plans, column, writer, _Mapper(render, study_unit))
    progress(WRITING, len(study_units), len(study_units))


def _choose_practice(
    study: Study, study_units: list[StudyUnit], activations: np.ndarray, render: _Render, progress: Progress
) -> None:
    """Keep the n_practice_trials practice candidates whose practice trials the protocol finds most obvious
    (the lowest practice_value; the earlier drawn on a tie), storing every candidate's value. Once in one
    transaction, so a resumed render keeps what an earlier one chose."""
    candidates = [(index, su) for index, su in enumerate(study_units) if su.role == StudyUnit.Role.PRACTICE_CANDIDATE]
    if not candidates or any(su.role == StudyUnit.Role.PRACTICE for su in study_units):
        return
    protocol, design = render.protocol, render.design
    for done, (index, study_unit) in enumerate(candidates):
        progress(CHOOSING, done, len(candidates))
        # Judged on the trials it would have as the first practice unit; the maps stay on disk for its trials.
        plans = protocol.build_trials(design, render.unit(study, study_unit, np.array(activations[:, index]), 0))
        maps = _Mapper(render, study_unit).maps(plans)
        study_unit.practice_value = protocol.practice_value(plans, maps, design.params)
    kept = sorted((su for _, su in candidates), key=lambda su: (su.practice_value, su.order))[: study.n_practice_trials]
    for study_unit in kept:
        study_unit.role = StudyUnit.Role.PRACTICE
    StudyUnit.objects.bulk_update([su for _, su in candidates], ["practice_value", "role"])
    progress(CHOOSING, len(candidates), len(candidates))


class _Mapper:
    """The unit's maps on the stored images its slots ask for: overlays stored as PNG images, maps kept."""

    def __init__(self, render: _Render, study_unit: StudyUnit) -> None:
        self.render, self.unit = render, study_unit.unit
        self.directory = render.work / "maps" / f"unit-{study_unit.order}"

    def maps(self, plans: Sequence[TrialPlan]) -> dict[tuple[int, int], np.ndarray]:
        """The unit's map on the stored image of each slot that asks for an overlay or a kept map, by place."""
        wanted = [(place, slot) for place, slot in _slots(plans) if slot.overlay or slot.keep_map]
        if not wanted:
            return {}
        stimuli = list(dict.fromkeys((slot.row, slot.variant is Variant.DISGUISED_COPY) for _, slot in wanted))
        render = self.render
        arrays = maps_on_stimuli(
            render.network, render.source, render.writer, self.unit.ref(), stimuli, self.directory, render.identity
        )
        maps = dict(zip(stimuli, arrays, strict=True))
        return {place: maps[(slot.row, slot.variant is Variant.DISGUISED_COPY)] for place, slot in wanted}

    def derived(
        self, plans: list[TrialPlan], images: dict[tuple[int, int], StimulusImage]
    ) -> dict[tuple[int, int], tuple[StimulusImage | None, KeptMap | None]]:
        maps = self.maps(plans)
        render = self.render
        result: dict[tuple[int, int], tuple[StimulusImage | None, KeptMap | None]] = {}
        for place, slot in _slots(plans):
            if place not in maps:
                continue
            image, values = images[place], maps[place]
            overlay = None
            if slot.overlay:
                content = png_bytes(render.protocol.overlay(values, render.design.params))
                overlay = store_stimulus(content, f"{image.source_key}#overlay", suffix="png")
            kept = keep_map(self.unit, image, values) if slot.keep_map else None
            result[place] = (overlay, kept)
        return result


@dataclass(frozen=True)
class _Render:
    """What writing a study's trials needs beyond its rows."""

    network: Network
    source: ImageSource
    writer: StimulusWriter
    protocol: Protocol[Any]
    design: Design[Any]
    work: Path
    identity: str
    keys: Sequence[str]  # the pool's, in pool order

    def unit(self, study: Study, study_unit: StudyUnit, column: np.ndarray, practice_index: int) -> UnitActivations:
        """What the protocol builds a unit's trials from; its random stream is the unit's own, so the same
        unit gets the same trials however often they are built."""
        return UnitActivations(
            activations=column,
            role=MAIN if study_unit.role == StudyUnit.Role.MAIN else PRACTICE,
            practice_index=practice_index,
            rng=seeded_rng(study.seed, TRIAL_STREAM, study_unit.order),
            keys=self.keys,
        )


def _slots(plans: Sequence[TrialPlan]) -> Iterator[tuple[tuple[int, int], ImageSlot]]:
    for number, plan in enumerate(plans):
        for position, slot in enumerate(plan.images):
            yield (number, position), slot


def _write_trials(
    study: Study, unit: Unit, plans: list[TrialPlan], column: np.ndarray, writer: StimulusWriter, mapper: _Mapper
) -> None:
    # Files first (each is idempotent on its own), then all of the unit's rows
    # in one transaction, so a unit has either all its trials or none.
    images: dict[tuple[int, int], StimulusImage] = {
        place: writer.stimulus(slot.row, disguised=slot.variant is Variant.DISGUISED_COPY)
        for place, slot in _slots(plans)
    }
    derived = mapper.derived(plans, images)
    with transaction.atomic():
        for number, plan in enumerate(plans):
            trial, created = Trial.objects.get_or_create(
                study=study,
                unit=unit,
                kind=plan.kind,
                batch=plan.batch,
                defaults={
                    "difficulty": plan.difficulty, "practice_level": plan.practice_level, "content": plan.content,
                },
            )
            if created:
                rows = []
                for position, slot in enumerate(plan.images):
                    activation = float(column[slot.row])
                    overlay, kept = derived.get((number, position), (None, None))
                    rows.append(
                        TrialImage(
                            trial=trial, image=images[(number, position)], role=slot.role, rank=slot.rank,
                            activation=activation, kept_map=kept,
                        )
                    )
                    if overlay is not None:
                        rows.append(
                            TrialImage(
                                trial=trial, image=overlay, role=overlay_role(slot.role), rank=slot.rank,
                                activation=activation,
                            )
                        )
                TrialImage.objects.bulk_create(rows)


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
