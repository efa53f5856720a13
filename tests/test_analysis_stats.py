"""The analysis core against scipy and scikit-posthocs on the same synthetic data."""

import numpy as np
import pandas as pd
import pytest
import scikit_posthocs
from scipy import stats

from analysis.stats import bootstrap_mean, compare_groups, participant_summary, spearman


@pytest.fixture
def unit_scores():
    return np.random.default_rng(7).beta(8, 2, size=84)


@pytest.mark.parametrize("method", ["percentile", "BCa"])
def test_bootstrap_ci_equals_scipy_with_the_same_seed_and_method(unit_scores, method):
    ours = bootstrap_mean(unit_scores, seed=3, n_resamples=10_000)
    theirs = stats.bootstrap(
        (unit_scores,), np.mean, n_resamples=10_000, method=method, rng=np.random.default_rng(3)
    ).confidence_interval
    assert ours.intervals[method] == pytest.approx((theirs.low, theirs.high), rel=1e-12)


def test_bootstrap_is_seeded(unit_scores):
    assert bootstrap_mean(unit_scores, seed=1).intervals == bootstrap_mean(unit_scores, seed=1).intervals
    assert bootstrap_mean(unit_scores, seed=1).intervals != bootstrap_mean(unit_scores, seed=2).intervals


def test_bootstrap_mean_is_the_mean_of_the_units(unit_scores):
    assert bootstrap_mean(unit_scores).mean == pytest.approx(unit_scores.mean())


def test_bootstrap_leaves_units_without_a_score_out(unit_scores):
    with_gaps = np.append(unit_scores, [np.nan, np.nan])
    assert bootstrap_mean(with_gaps, seed=0).intervals == bootstrap_mean(unit_scores, seed=0).intervals
    assert bootstrap_mean(with_gaps).n == 84


def test_kruskal_wallis_and_conover_holm_equal_scipy_and_scikit_posthocs():
    rng = np.random.default_rng(11)
    groups = {"resnet": rng.beta(8, 2, 84), "vit": rng.beta(6, 3, 84), "googlenet": rng.beta(9, 2, 84)}
    ours = compare_groups(groups)
    statistic, p = stats.kruskal(*groups.values())
    assert (ours.statistic, ours.p) == pytest.approx((statistic, p))
    theirs = scikit_posthocs.posthoc_conover(list(groups.values()), p_adjust="holm")
    np.testing.assert_allclose(ours.posthoc.to_numpy(), theirs.to_numpy())
    assert list(ours.posthoc.index) == ["resnet", "vit", "googlenet"]


def test_comparing_needs_two_groups():
    with pytest.raises(ValueError, match="at least two groups"):
        compare_groups({"only": [0.5, 0.6]})


def test_spearman_equals_scipy():
    rng = np.random.default_rng(5)
    depth = rng.random(40)
    score = depth + rng.normal(0, 0.3, 40)
    ours = spearman(depth, score)
    theirs = stats.spearmanr(depth, score)
    assert (ours.rho, ours.p, ours.n) == pytest.approx((theirs.statistic, theirs.pvalue, 40))


def test_spearman_uses_the_pairs_where_both_are_known():
    ours = spearman([0.0, 0.5, np.nan, 1.0, 0.2], [0.1, 0.4, 0.9, 0.8, np.nan])
    assert ours.n == 3 and ours.rho == pytest.approx(1.0)


def test_participant_summary_is_the_mean_over_participants_plus_minus_1_96_sem():
    rows = pd.DataFrame({"session": list("aaabbbccc"), "correct": [1, 1, 0, 1, 1, 1, 0, 0, 1]})
    means = np.array([2 / 3, 1, 1 / 3])
    summary = participant_summary(rows)
    assert summary.mean == pytest.approx(means.mean())
    assert summary.half_width == pytest.approx(1.96 * stats.sem(means))
    assert (summary.n_participants, summary.n_responses) == (3, 9)
