"""Studies built from another study's responses: a verify stage fed by a describe stage (nameability).

The source study's protocol leaves its trials and the answers of its passing sessions; the derived
study's protocol (Protocol.derive) decides which of the source's stored images make which trials. This
module gathers that plain data and writes the new study's rows, sharing the source's stored images (no
file is written). The derived study keeps the source's generic settings and model, and is linked to it
(Study.derived_from): nobody who took one may take the other.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import transaction
from django.utils import timezone

from experiments.copies import _as_new, free_slug
from experiments.models import Response, Session, Study, StudyUnit, Trial, TrialImage
from protocols import derived_protocols, get_protocol
from protocols.base import MAIN, PRACTICE, DerivedTrial, DesignError, ShownImage, SourceAnswer, SourceTrial
from stimuli.sampling import seeded_rng

# The study seed's random stream for building a derived study (rendering uses 0 and 1).
DERIVE_STREAM = 2


class DerivationRefused(ValueError):
    """The study cannot be built now; the message says why."""


def _answers(source: Study) -> dict[int, list[SourceAnswer]]:
    """Per source trial, its counted answers (main, non-catch trials of passing sessions), with what each
    session saw; catch and practice trials get none."""
    protocol = source.protocol_plugin
    rows = (
        Response.objects.counted()
        .filter(session__study=source)
        .order_by("session_id", "session_trial__index")
        .values_list("session_trial__trial_id", "session__pseudonym", "answer", "session_trial__layout")
    )
    answers: dict[int, list[SourceAnswer]] = defaultdict(list)
    for trial_id, author, answer, layout in rows.iterator():
        answers[trial_id].append(SourceAnswer(author, answer, tuple(protocol.image_ids(layout))))
    return answers


def source_trials(source: Study) -> list[SourceTrial]:
    answers = _answers(source)
    return [
        SourceTrial(
            unit=trial.unit_id,
            kind=trial.kind,
            images=tuple(ShownImage(image.image_id, image.role, image.rank) for image in trial.images.all()),
            content=trial.content,
            answers=tuple(answers.get(trial.pk, ())),
        )
        for trial in source.trials.prefetch_related("images").order_by("kind", "unit_id", "batch")
    ]


def derived_protocol_for(source: Study) -> Any:
    protocols = derived_protocols(source.protocol)
    if not protocols:
        raise DerivationRefused(f"No protocol builds studies from {source.protocol_plugin.title} studies.")
    return protocols[0]


def build_derived_study(source: Study, slug: str = "", protocol: str = "") -> Study:
    """The study the source's responses feed (its verify stage), ready to open; refused, saying why, while the
    source has no passing session or its names cannot make the trials."""
    plugin = get_protocol(protocol) if protocol else derived_protocol_for(source)
    if plugin.derived_from != source.protocol:
        raise DerivationRefused(f"{plugin.title} studies are not built from {source.protocol_plugin.title} studies.")
    if not source.sessions.filter(status=Session.Status.COMPLETED, passed=True).exists():
        raise DerivationRefused(f"Study {source.slug} has no passing session yet: nothing to build from.")
    params = plugin.params(None)
    try:
        plans = plugin.derive(params, source_trials(source), seeded_rng(source.seed, DERIVE_STREAM))
    except DesignError as exc:
        raise DerivationRefused(f"Study {source.slug}'s responses cannot make the trials: {exc}") from exc
    return _write(source, plugin.name, slug or free_slug(f"{source.slug}-verify"), plans)


def _count(plans: list[DerivedTrial], kind: str) -> int:
    return sum(1 for plan in plans if plan.kind == kind)


@transaction.atomic
def _write(source: Study, protocol: str, slug: str, plans: list[DerivedTrial]) -> Study:
    main_units = sorted({plan.unit for plan in plans if plan.kind == MAIN})
    practice_units = sorted({plan.unit for plan in plans if plan.kind == PRACTICE})
    [study] = _as_new(
        [Study.objects.get(pk=source.pk)],
        slug=slug,
        name=f"{source.name} (verify)",
        protocol=protocol,
        params={},
        derived_from=source,
        status=Study.Status.READY,
        completion_code="",
        created_at=timezone.now(),
        n_units=len(main_units),
        trials_per_unit=1 + max(plan.batch for plan in plans if plan.kind == MAIN),
        batches_used=0,
        n_main_trials=min(source.n_main_trials, len(main_units)),
        n_catch_trials=min(source.n_catch_trials, _count(plans, Trial.Kind.CATCH)),
        n_practice_trials=_count(plans, PRACTICE),
    )
    study.full_clean()
    study.save()
    source_units = {su.unit_id: su for su in source.study_units.all()}
    StudyUnit.objects.bulk_create(
        StudyUnit(
            study=study,
            unit_id=unit,
            role=role,
            order=source_units[unit].order,
            relative_depth=source_units[unit].relative_depth,
        )
        for units, role in ((main_units, StudyUnit.Role.MAIN), (practice_units, StudyUnit.Role.PRACTICE))
        for unit in units
    )
    # Each image's activation for the trial's unit, where the source recorded it (other units' images have none).
    activation = {
        (unit, image): value
        for unit, image, value in TrialImage.objects.filter(trial__study=source).values_list(
            "trial__unit_id", "image_id", "activation"
        )
    }
    trials = Trial.objects.bulk_create(
        Trial(
            study=study, unit_id=plan.unit, kind=plan.kind, batch=plan.batch, difficulty="named",
            practice_level=plan.practice_level, content=plan.content,
        )
        for plan in plans
    )
    TrialImage.objects.bulk_create(
        TrialImage(
            trial=trial,
            image_id=image.image_id,
            role=image.role,
            rank=image.rank,
            activation=activation.get((plan.unit, image.image_id)),
        )
        for trial, plan in zip(trials, plans, strict=True)
        for image in plan.images
    )
    return study
