"""Storing a published dataset's trials as studies, units, sessions, trials and responses.

A reader hands over one dataframe, a row per answered trial, with the columns:

    study, study_name, condition      the study the trial belongs to (one per published condition)
    model                             the network's name, as a VisionModel slug
    layer, channel, relative_depth    the unit (channel an int; relative_depth 0..1 or NaN)
    participant, passed               the session (one per participant and study) and its verdict
    trial_index, phase, trial_kind    the screen's position in the session, main/practice, main/catch/practice
    batch                             which of the unit's trials it is
    choice, key_choice                the chosen and the right query position (0 upper, 1 lower; NaN unknown)
    confidence, correct, rt_ms        the answer's confidence (1-3 or NaN), its verdict, its time

Everything is written in one transaction: a file that fails half-way leaves nothing behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from django.db import transaction

from experiments.copies import free_slug
from experiments.export.reimport import store_answered
from experiments.models import Response, Session, SessionTrial, Study, StudyUnit, Trial
from stimuli.models import ImagePool, Unit, VisionModel

COLUMNS = [
    "study", "study_name", "condition", "model", "layer", "channel", "relative_depth", "participant", "passed",
    "trial_index", "phase", "trial_kind", "batch", "choice", "key_choice", "confidence", "correct", "rt_ms",
]
BATCH = 2000
# Published studies ran outside the platform: no pool of ours made their stimuli.
POOL = {"name": "published-dataset", "source": ImagePool.Source.FOLDER, "location": "", "size": 0}


class PublishedDataError(ValueError):
    """The file is not in the layout its reader expects; the message says what is missing."""


def require_columns(frame: pd.DataFrame, needed: list[str], what: str) -> None:
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        raise PublishedDataError(f"{what} lacks the columns {', '.join(missing)}.")


def read_table(path: str | Path, needed: list[str], what: str) -> pd.DataFrame:
    """A CSV file (gzipped or not) that must have these columns."""
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise PublishedDataError(f"{path}: cannot read it as CSV ({exc}).") from exc
    require_columns(frame, needed, what)
    return frame


def _known(value: Any) -> Any:
    return None if pd.isna(value) else value


def write_trials(trials: pd.DataFrame, *, models: Mapping[str, str], source: str) -> list[Study]:
    """Store the trials; models maps each model name to its description (stored as the timm name), and
    source names the dataset on every session (Session.external)."""
    require_columns(trials, COLUMNS, "The trials table")
    unnamed = trials[trials[["study", "layer", "channel", "participant", "trial_index"]].isna().any(axis=1)]
    if len(unnamed):
        raise PublishedDataError(f"{len(unnamed)} trials lack their study, unit, participant or position.")
    with transaction.atomic():
        pool, _ = ImagePool.objects.get_or_create(name=POOL["name"], defaults=POOL)
        networks = {
            name: VisionModel.objects.get_or_create(name=name, defaults={"timm_name": description})[0]
            for name, description in models.items()
        }
        return [
            _write_study(rows, networks[str(rows["model"].iloc[0])], pool, source)
            for _, rows in trials.groupby("study", sort=False)
        ]


def _write_study(rows: pd.DataFrame, model: VisionModel, pool: ImagePool, source: str) -> Study:
    first = rows.iloc[0]
    study = Study.objects.create(
        slug=free_slug(str(first["study"])), name=str(first["study_name"])[:200], protocol="2afc",
        condition=str(first["condition"]), model=model, image_pool=pool, status=Study.Status.CLOSED,
        n_units=int(rows.loc[rows["trial_kind"] == Trial.Kind.MAIN, ["layer", "channel"]].drop_duplicates().shape[0]),
        trials_per_unit=int(rows["batch"].max()) + 1, batches_used=0,
    )
    units = {}
    for order, ((layer, channel), unit_rows) in enumerate(rows.groupby(["layer", "channel"], sort=True)):
        unit, _ = Unit.objects.get_or_create(model=model, layer=str(layer), channel=int(channel))
        practice_only = set(unit_rows["trial_kind"]) == {Trial.Kind.PRACTICE}
        StudyUnit.objects.create(
            study=study, unit=unit, order=order, relative_depth=_known(unit_rows["relative_depth"].iloc[0]),
            role=StudyUnit.Role.PRACTICE if practice_only else StudyUnit.Role.MAIN,
        )
        units[(layer, channel)] = unit
    # Every trial of the study at once: one shared row per unit, kind and batch, as sessions share trials.
    shown = rows[["layer", "channel", "trial_kind", "batch"]].drop_duplicates()
    made = Trial.objects.bulk_create(
        Trial(study=study, unit=units[(layer, channel)], kind=kind, batch=int(batch), difficulty="published")
        for layer, channel, kind, batch in shown.itertuples(index=False)
    )
    trials = {
        (layer, channel, kind, int(batch)): trial
        for (layer, channel, kind, batch), trial in zip(shown.itertuples(index=False), made, strict=True)
    }
    pending: list[tuple[SessionTrial, Response]] = []
    for participant, answered in rows.groupby("participant", sort=False):
        session = Session.objects.create(
            study=study, source="local", pseudonym=str(participant), participant_id=f"published:{participant}",
            seed=0, status=Session.Status.COMPLETED, phase=Session.Phase.MAIN, passed=bool(answered["passed"].iloc[0]),
            practice_attempts=1, external={"published": source},
        )
        for row in answered.sort_values("trial_index").itertuples(index=False):
            trial = trials[(row.layer, row.channel, row.trial_kind, int(row.batch))]
            planned = SessionTrial(
                session=session, index=int(row.trial_index), trial=trial, phase=row.phase, layout={},
                key={} if pd.isna(row.key_choice) else {"choice": int(row.key_choice)},
            )
            answer = {
                name: int(value) for name, value in (("choice", row.choice), ("confidence", row.confidence))
                if not pd.isna(value)
            }
            pending.append((planned, Response(
                session=session, session_trial=planned, client_id=uuid.uuid4(), answer=answer,
                rt_ms=max(int(round(row.rt_ms)), 0) if not pd.isna(row.rt_ms) else 0,
                correct=bool(row.correct), score=float(bool(row.correct)),
            )))
            if len(pending) >= BATCH:
                store_answered(pending)
    store_answered(pending)
    return study

