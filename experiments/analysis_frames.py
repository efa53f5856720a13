"""Reads for the analysis: the studies' tables as dataframes, exactly the rows and columns the dataset
export writes (so that the admin, `manage.py analyze` and a notebook on the bundle agree), and each
unit's activation sparsity where the study's recorded activations are still on disk."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.rows import RowFilter
from analysis.scores import UNIT, activation_sparsity
from analysis.stats import N_RESAMPLES
from analysis.study import analyze_studies
from experiments.export.responses import responses_table
from experiments.export.table import Table
from experiments.export.tables import sessions_table, units_table
from experiments.models import Study
from experiments.rendering import activation_path


def frame(table: Table) -> pd.DataFrame:
    return pd.DataFrame.from_records(list(table.rows), columns=table.names)


def sparsity(study: Study) -> pd.DataFrame | None:
    """Per main unit, Hoyer's sparsity of its activations over the pool (the render's recording, one column
    per unit in sampling order); None when the recording is gone or does not fit the units."""
    path = activation_path(study)
    if not path.is_file():
        return None
    study_units = list(study.study_units.select_related("unit", "unit__model").order_by("order"))
    activations = np.load(path, mmap_mode="r")
    if activations.ndim != 2 or activations.shape[1] != len(study_units):
        return None
    values = activation_sparsity(np.asarray(activations))
    index = pd.MultiIndex.from_tuples(
        [(su.unit.model.name, su.unit.kind, su.unit.layer, su.unit.channel) for su in study_units], names=UNIT
    )
    return pd.DataFrame({"activation sparsity": values}, index=index)


def study_tables(studies: Sequence[Study]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(responses, units, sessions) of the studies, as the export writes them."""
    return frame(responses_table(studies)), frame(units_table(studies)), frame(sessions_table(studies))


def analyze_database(
    studies: Sequence[Study], *, row_filter: RowFilter | None = None, seed: int = 0, n_resamples: int = N_RESAMPLES
) -> dict[str, Any]:
    """analysis.study.analyze_studies over the studies' rows; studies without responses are left out."""
    responses, units, sessions = study_tables(studies)
    if responses.empty:
        return {"studies": {}, "across": None, "skipped": {}}
    metrics = {study.slug: found for study in studies if (found := sparsity(study)) is not None}
    return analyze_studies(
        responses, units, sessions, metrics=metrics, row_filter=row_filter, seed=seed, n_resamples=n_resamples
    )
