"""Localizability's practice units (docs/protocols.md §2): by default, of `practice_candidates` units drawn
per practice unit, the ones whose exemplar maps are most concentrated (smallest mean p0); hand-picked practice
trials win over them. Each unit's value and the rule are kept, shown in the admin and in the datasheet."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from django.utils import formats
from django.utils.html import escape

from experiments import rendering
from experiments.export.bundle import datasheet
from experiments.export.tables import units_table
from experiments.models import Session, SessionTrial, StudyUnit, Trial
from experiments.services import pick_trials
from protocols import get_protocol
from protocols.base import ImageSlot, TrialPlan
from protocols.localizability.scoring import mean_p0
from protocols.params import ParamsError
from stimuli.units import UnitRef
from tests.builders import render_localizability_study
from tests.conftest import Participant

SIZE = 64  # the test studies' stimuli


def side(unit: UnitRef) -> int:
    """The side of the square every map of this unit lights up: its top region covers side² pixels."""
    return 2 + zlib.crc32(f"{unit.layer}/{unit.index}".encode()) % 60


def known_maps(network, source, writer, unit, stimuli, directory, identity=""):
    """Each unit's maps: a uniform square of side(unit) in a corner, zero elsewhere (p0 = side² / SIZE²)."""
    values = np.zeros((SIZE, SIZE), dtype=np.float32)
    values[: side(unit), : side(unit)] = 1.0
    return [values.copy() for _ in stimuli]


@pytest.fixture
def study(isolated_files, tiny_model, monkeypatch):
    """Rendered with 2 practice units, each of 3 candidates (the default), on maps of known concentration."""
    monkeypatch.setattr(rendering, "maps_on_stimuli", known_maps)
    return render_localizability_study(tiny_model, min_instruction_s=0, min_total_s=0)


def practice_units(study) -> list[StudyUnit]:
    return list(study.study_units.exclude(role=StudyUnit.Role.MAIN).select_related("unit").order_by("order"))


@pytest.mark.django_db
def test_the_default_keeps_the_candidates_whose_exemplar_maps_are_most_concentrated(study):
    candidates = practice_units(study)
    assert len(candidates) == 3 * study.n_practice_trials
    concentrated = sorted(candidates, key=lambda su: (side(su.unit.ref()), su.order))[: study.n_practice_trials]
    kept = [su for su in candidates if su.role == StudyUnit.Role.PRACTICE]
    assert {su.pk for su in kept} == {su.pk for su in concentrated}
    practised = set(Trial.objects.filter(study=study, kind=Trial.Kind.PRACTICE).values_list("unit_id", flat=True))
    assert practised == {su.unit_id for su in kept}


@pytest.mark.django_db
def test_each_candidate_keeps_its_mean_p0_and_the_study_the_rule(study):
    for candidate in practice_units(study):
        assert candidate.practice_value == pytest.approx(side(candidate.unit.ref()) ** 2 / SIZE**2)
    assert "most concentrated of 3 units drawn per practice unit" in study.practice_rule
    assert all(su.practice_value is None for su in study.study_units.filter(role=StudyUnit.Role.MAIN))


@pytest.mark.django_db
def test_hand_picked_practice_trials_win_over_the_concentrated_units(study):
    picked = Trial.objects.filter(study=study, kind=Trial.Kind.MAIN).first()
    pick_trials(study, "practice", [picked.pk])
    participant = Participant(study)
    participant.start()
    participant.through_instructions()
    practice = SessionTrial.objects.filter(session_id=participant.id, phase=Session.Phase.PRACTICE)
    assert list(practice.values_list("trial_id", flat=True)) == [picked.pk]


@pytest.mark.django_db
def test_the_admin_shows_the_rule_each_units_value_and_a_hand_pick_winning(study, admin_client):
    page = admin_client.get(f"/admin/experiments/study/{study.pk}/change/").content.decode()
    assert escape(study.practice_rule) in page
    for candidate in practice_units(study):
        assert formats.number_format(candidate.practice_value) in page
    pick_trials(study, "practice", [Trial.objects.filter(study=study, kind=Trial.Kind.MAIN).first().pk])
    page = admin_client.get(f"/admin/experiments/study/{study.pk}/change/").content.decode()
    assert "not in use: 1 hand-picked practice trials are shown instead" in page


@pytest.mark.django_db
def test_the_datasheet_and_the_units_table_carry_the_rule_and_the_values(study):
    [sheet] = datasheet([study])["studies"]
    assert sheet["practice_rule"] == study.practice_rule
    assert [(u["role"], u["channel"], u["practice_value"]) for u in sheet["practice_units"]] == [
        (su.role, su.unit.channel, su.practice_value) for su in practice_units(study)
    ]
    values = {(row["role"], row["order"]): row["practice_value"] for row in units_table([study]).records()}
    assert {key: value for key, value in values.items() if value is not None} == {
        (su.role, su.order): su.practice_value for su in practice_units(study)
    }


@pytest.mark.django_db
def test_one_candidate_per_practice_unit_draws_them_at_random(isolated_files, tiny_model):
    study = render_localizability_study(tiny_model, params={"practice_candidates": 1})
    assert [su.role for su in practice_units(study)] == [StudyUnit.Role.PRACTICE] * study.n_practice_trials
    assert study.practice_rule == "drawn at random, as the main units are"


def test_the_practice_value_is_the_exemplar_maps_mean_p0_a_map_without_mass_counting_as_one():
    protocol = get_protocol("localizability")
    params = protocol.params({})
    plan = TrialPlan("practice", 0, "easy", (ImageSlot("exemplar", 0, 0), ImageSlot("exemplar", 1, 1),
                                              ImageSlot("query", 0, 2)))
    quarter, empty, query = np.zeros((4, 4)), np.zeros((4, 4)), np.ones((4, 4))
    quarter[:2, :2] = 1
    value = protocol.practice_value([plan], {(0, 0): quarter, (0, 1): empty, (0, 2): query}, params)
    assert value == pytest.approx((0.25 + 1.0) / 2) == mean_p0([quarter, empty])


@pytest.mark.parametrize("candidates", [0, 11, "three"])
def test_practice_candidates_out_of_range_are_refused(candidates):
    with pytest.raises(ParamsError, match="practice_candidates"):
        get_protocol("localizability").params({"practice_candidates": candidates})
