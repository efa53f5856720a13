"""The analysis's reads of the database: the export's tables as dataframes, and activation sparsity from
a study's recorded activations."""

import numpy as np
import pytest

from experiments.analysis_frames import sparsity, study_tables
from experiments.rendering import activation_path
from tests.builders import build_2afc_study


@pytest.fixture
def study(db, isolated_files):
    return build_2afc_study(n_units=3)


def test_sparsity_comes_from_the_recorded_activations_in_unit_order(study):
    path = activation_path(study)
    path.parent.mkdir(parents=True)
    units = list(study.study_units.select_related("unit").order_by("order"))
    flat, single = np.ones(20), np.r_[np.zeros(19), 4.0]
    columns = [flat if su.unit.channel % 2 else single for su in units]
    np.save(path, np.stack(columns, axis=1).astype(np.float32))
    found = sparsity(study)
    for su in units:
        value = found.loc[(su.unit.model.name, su.unit.kind, su.unit.layer, su.unit.channel), "activation sparsity"]
        assert value == pytest.approx(0.0 if su.unit.channel % 2 else 1.0, abs=1e-6)


def test_without_recorded_activations_there_is_no_sparsity(study):
    assert sparsity(study) is None


def test_a_recording_that_does_not_fit_the_units_gives_no_sparsity(study):
    path = activation_path(study)
    path.parent.mkdir(parents=True)
    np.save(path, np.ones((20, 2), dtype=np.float32))
    assert sparsity(study) is None


def test_the_tables_are_the_exports_columns(study):
    responses, units, sessions = study_tables([study])
    assert responses.empty and "correct" in responses.columns
    assert list(units["study"].unique()) == [study.slug] and "relative_depth" in units.columns
    assert sessions.empty and "exclusion_reasons" in sessions.columns
