"""Copying a study with its stimuli: the same design run again (another recruiter, a pilot, a rerun)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from experiments.models import Study, StudyUnit, Trial, TrialImage

M = TypeVar("M", bound=Model)

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
    fields = {
        "slug": slug,
        "completion_code": "",
        "created_at": timezone.now(),
        "status": Study.Status.READY if study.status in RENDERED else Study.Status.DRAFT,
        **changes,
    }
    [copy] = _as_new([Study.objects.get(pk=study.pk)], **fields)
    copy.full_clean()
    copy.save()

    StudyUnit.objects.bulk_create(_as_new(study.study_units.all(), study=copy))
    trials = list(study.trials.prefetch_related("images"))
    images = [list(trial.images.all()) for trial in trials]
    originals = [trial.pk for trial in trials]
    Trial.objects.bulk_create(_as_new(trials, study=copy))
    TrialImage.objects.bulk_create(
        image for trial, its_images in zip(trials, images, strict=True) for image in _as_new(its_images, trial=trial)
    )
    # Hand-picked trials: the original's own become the copy's; those of other studies are shared.
    copied = dict(zip(originals, trials, strict=True))
    for picks in ("practice_trials", "catch_trials"):
        getattr(copy, picks).set([copied.get(trial.pk, trial) for trial in getattr(study, picks).all()])
    return copy


def _as_new(rows: Iterable[M], **fields: Any) -> list[M]:
    """The rows, unsaved again (no primary key) and with fields changed, ready to be inserted as copies."""
    copies = list(rows)
    for row in copies:
        row.pk = None
        for name, value in fields.items():
            setattr(row, name, value)
    return copies


def free_slug(base: str) -> str:
    """base, or base-2, base-3... whichever no study has yet."""
    taken = set(Study.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    slug, number = base, 1
    while slug in taken:
        number += 1
        slug = f"{base}-{number}"
    return slug
