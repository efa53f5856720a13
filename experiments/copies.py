"""Copying a study with its stimuli: the same design run again (another recruiter, a pilot, a rerun)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from experiments.models import Study, StudyUnit, Trial, TrialImage

# Statuses whose trials are complete; a copy of such a study is ready to open.
RENDERED = (Study.Status.READY, Study.Status.OPEN, Study.Status.CLOSED)


@transaction.atomic
def copy_study(study: Study, slug: str, **changes: Any) -> Study:
    """A new study with the original's parameters, units and trials, plus `changes`.

    Stored images are shared (they are named by their content); sessions,
    responses and recruitment stay with the original. The copy gets its own
    completion code, and is ready to open when the original was rendered.
    """
    if study.status == Study.Status.RENDERING:
        raise ValidationError(f"Study {study.slug} is still rendering: copy it once its stimuli are ready.")
    copy = Study.objects.get(pk=study.pk)
    copy.pk = None
    copy.slug = slug
    copy.completion_code = ""
    copy.created_at = timezone.now()
    copy.status = Study.Status.READY if study.status in RENDERED else Study.Status.DRAFT
    for field, value in changes.items():
        setattr(copy, field, value)
    copy.full_clean()
    copy.save()

    StudyUnit.objects.bulk_create(
        StudyUnit(study=copy, unit_id=su.unit_id, role=su.role, order=su.order)
        for su in study.study_units.all()
    )
    trials = list(study.trials.prefetch_related("images"))
    copies = Trial.objects.bulk_create(
        Trial(
            study=copy,
            unit_id=trial.unit_id,
            kind=trial.kind,
            batch=trial.batch,
            difficulty=trial.difficulty,
            practice_level=trial.practice_level,
        )
        for trial in trials
    )
    TrialImage.objects.bulk_create(
        TrialImage(
            trial=new,
            image_id=image.image_id,
            role=image.role,
            rank=image.rank,
            activation=image.activation,
        )
        for old, new in zip(trials, copies)
        for image in old.images.all()
    )
    return copy


def free_slug(base: str) -> str:
    """base, or base-2, base-3... whichever no study has yet."""
    taken = set(Study.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    slug, number = base, 1
    while slug in taken:
        number += 1
        slug = f"{base}-{number}"
    return slug
