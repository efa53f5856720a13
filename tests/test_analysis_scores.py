"""Unit scores per protocol, which rows count, and one study's analysis, on synthetic dataframes."""

import numpy as np
import pandas as pd
import pytest

from analysis.rows import RowFilter, select
from analysis.scores import activation_sparsity, agreement_scores, localizability, proportion_correct, verification
from analysis.study import analyze, analyze_studies, to_json

UNIT = {"model": "m", "unit_kind": "channel", "layer": "blocks.1"}


def responses(**columns):
    n = len(next(iter(columns.values())))
    base = {"phase": ["main"] * n, "trial_kind": ["main"] * n, "session_passed": [True] * n,
            "session": [f"s{i}" for i in range(n)], **{k: [v] * n for k, v in UNIT.items()}}
    return pd.DataFrame({**base, **columns})


def test_2afc_unit_score_is_the_proportion_correct():
    rows = responses(channel=[0, 0, 0, 0, 1, 1], correct=[True, True, True, False, False, True])
    scores = proportion_correct(rows)
    assert scores["score"].tolist() == [0.75, 0.5]
    assert scores["n"].tolist() == [4, 2]


def test_localizability_is_anchored_at_the_chance_of_a_random_click():
    # A hit rate of 0.5 on queries whose top regions cover a fifth of the image: (0.5 - 0.2) / 0.8.
    rows = responses(channel=[0, 0, 0, 0], hit=[True, False, True, False], p0=[0.2] * 4, graded=[1, 0, 0.5, 0.5])
    scores = localizability(rows)
    assert scores["score"].iloc[0] == pytest.approx(0.375)
    assert scores["graded"].iloc[0] == pytest.approx(0.5)


def test_localizability_of_random_clicks_is_zero():
    rows = responses(channel=[0] * 4, hit=[True, False, False, False], p0=[0.25] * 4)
    assert localizability(rows)["score"].iloc[0] == pytest.approx(0.0)


def test_verification_is_anchored_at_one_in_m():
    # 3 of 4 right among m = 4 candidates: (0.75 - 0.25) / 0.75.
    rows = responses(channel=[0] * 4, correct=[True, True, True, False], n_candidates=[4] * 4)
    assert verification(rows)["score"].iloc[0] == pytest.approx(2 / 3)


def test_agreement_is_within_unit_similarity_anchored_by_between_unit_similarity():
    embeddings = np.array([[1, 0], [1, 0], [0, 1], [0, 1]])
    units = pd.DataFrame({**{k: [v] * 4 for k, v in UNIT.items()}, "channel": [0, 0, 1, 1]})
    scores = agreement_scores(embeddings, units)
    # Same-unit names are identical (cosine 1), other units' orthogonal (cosine 0): a perfect score.
    assert scores["score"].tolist() == pytest.approx([1.0, 1.0])
    assert scores["between"].iloc[0] == pytest.approx(0.0)


def test_sparsity_is_zero_for_a_flat_unit_and_one_for_a_single_image():
    flat_and_single = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 5.0]])
    assert activation_sparsity(flat_and_single).tolist() == pytest.approx([0.0, 1.0])


def test_only_main_non_catch_responses_of_passing_sessions_count():
    rows = responses(channel=[0] * 5, correct=[True] * 5)
    rows["phase"] = ["practice", "main", "main", "main", "main"]
    rows["trial_kind"] = ["practice", "catch", "main", "main", "main"]
    rows["session_passed"] = [True, True, True, False, None]
    rows["exclusion_reasons"] = ["", "", "", "catch_trials;position_bias", ""]
    chosen = select(rows)
    assert chosen.n_responses == 1
    assert chosen.excluded == {
        "not main phase": 1, "catch trials": 1, "session: catch_trials": 1, "session: position_bias": 1,
        "session: no verdict (session not completed)": 1,
    }
    assert chosen.excluded_sessions == {"catch_trials": 1, "position_bias": 1, "no verdict (session not completed)": 1}


def test_all_sessions_can_count():
    rows = responses(channel=[0, 0], correct=[True, False])
    rows["session_passed"] = [True, False]
    assert select(rows, RowFilter(sessions="all")).n_responses == 2


def test_an_unknown_session_filter_is_refused():
    with pytest.raises(ValueError, match="passing, all"):
        RowFilter(sessions="some")


def test_a_result_states_its_filter_and_its_n():
    rows = responses(channel=[0, 0, 1, 1], correct=[True, False, True, True], confidence=[1, 3, 3, 1])
    result = analyze(rows, protocol="2afc", name="s", n_resamples=200).to_json()
    assert result["rows"]["n_responses"] == 4 and result["rows"]["n_sessions"] == 4
    assert result["rows"]["filter"]["description"] == "main phase, main trials (no catch trials), passing sessions"
    assert result["model_score"]["mean"] == pytest.approx(0.75) and result["model_score"]["n"] == 2


def test_confidence_split_scores_units_from_each_confidence_alone():
    rows = responses(channel=[0, 0, 1, 1], correct=[True, False, False, True], confidence=[1, 3, 1, 3])
    split = analyze(rows, protocol="2afc", name="s", n_resamples=200).confidence
    assert split[1].mean == pytest.approx(0.5) and split[3].mean == pytest.approx(0.5)
    assert split[1].n == 2


def test_layer_scores_correlate_with_relative_depth():
    rows = responses(channel=[0, 1, 2, 3], correct=[False, True, True, True])
    rows["layer"] = ["a", "b", "c", "d"]
    rows = pd.concat([rows, rows.assign(correct=[False, False, True, True])])
    units = pd.DataFrame({"study": "s", "model": "m", "kind": "channel", "layer": list("abcd"), "channel": [0, 1, 2, 3],
                          "relative_depth": [0, 1 / 3, 2 / 3, 1]})
    result = analyze(rows, protocol="2afc", name="s", units=units, n_resamples=200)
    assert result.layers["score"].tolist() == [0.0, 0.5, 1.0, 1.0]
    assert result.depth.rho > 0.9 and result.depth.n == 4


def test_studies_are_compared_across_and_matched_by_unit():
    rng = np.random.default_rng(0)
    frames = []
    for study, p in (("natural", 0.9), ("synthetic", 0.7)):
        n = 400
        frame = responses(channel=np.repeat(np.arange(20), 20), correct=rng.random(n) < p)
        frames.append(frame.assign(study=study, protocol="2afc", condition=study))
    result = to_json(analyze_studies(pd.concat(frames), n_resamples=200))
    assert [s["condition"] for s in result["studies"]] == ["natural", "synthetic"]
    assert result["across"]["comparison"]["p"] < 0.01
    assert result["across"]["matched_units"]["natural vs synthetic"]["n"] == 20


def test_an_unknown_protocol_has_no_unit_score():
    with pytest.raises(ValueError, match="No unit score for the protocol 'rating'"):
        analyze(responses(channel=[0], correct=[True]), protocol="rating", name="s")


def test_studies_of_a_protocol_without_a_unit_score_are_listed_as_skipped():
    rows = responses(channel=[0, 1], correct=[True, False]).assign(study="rated", protocol="rating", condition="natural")
    result = to_json(analyze_studies(rows, n_resamples=200))
    assert result["studies"] == []
    assert result["skipped"] == {"rated": "no unit score for the protocol 'rating' (known: 2afc, localizability, nameability_verify)"}


def test_studies_whose_unit_scores_are_all_equal_have_an_undefined_comparison():
    frames = [
        responses(channel=[0, 1, 2], correct=[True] * 3).assign(study=study, protocol="2afc", condition=study)
        for study in ("natural", "synthetic")
    ]
    result = to_json(analyze_studies(pd.concat(frames), n_resamples=200))
    # Nothing to rank: scipy's statistic is NaN (null in the command's JSON), and the report still comes.
    assert np.isnan(result["across"]["comparison"]["statistic"]) and len(result["studies"]) == 2
