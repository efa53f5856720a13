"""Localizability's stimulus selection on synthetic pools: activation = position in the order."""

import numpy as np
import pytest

from protocols.localizability.selection import catch_trial, minimum_pool_size, query_window, select_trials
from protocols.selection import SelectionError


def pool(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n).astype(float)


def test_exemplars_are_the_top_of_the_pool_stratified_over_trials():
    activations = pool(400)
    trials = select_trials(activations, 5, "easy", 6, np.random.default_rng(1))
    exemplars = [activations[row] for trial in trials for row in trial.exemplars]
    assert sorted(exemplars) == list(range(400 - 30, 400))
    for trial in trials:
        # Bin k holds positions 399-5k down to 395-5k: every trial has one exemplar of each bin.
        bins = [int((399 - activations[row]) // 5) for row in trial.exemplars]
        assert bins == list(range(6))


def test_easy_queries_sit_just_below_the_exemplars():
    activations = pool(400)
    trials = select_trials(activations, 5, "easy", 6, np.random.default_rng(1))
    assert sorted(activations[t.query] for t in trials) == list(range(365, 370))


@pytest.mark.parametrize("difficulty,centre", [("medium", 99), ("hard", 95), ("very_hard", 85)])
def test_harder_queries_sit_around_their_percentile(difficulty, centre):
    window = query_window(8000, 10, difficulty, 6)
    assert window.start <= round(centre / 100 * 7999) < window.stop


def test_a_query_is_never_an_exemplar_of_its_unit():
    activations = pool(400, seed=3)
    trials = select_trials(activations, 4, "very_hard", 6, np.random.default_rng(2))
    exemplars = {row for trial in trials for row in trial.exemplars}
    assert not exemplars & {trial.query for trial in trials}


def test_a_small_pool_is_refused_with_the_size_it_needs():
    needed = minimum_pool_size(20, "medium", 6)
    query_window(needed, 20, "medium", 6)
    with pytest.raises(SelectionError, match=f"at least {needed} images"):
        query_window(needed - 1, 20, "medium", 6)


def test_a_catch_query_is_one_of_the_trials_own_exemplars():
    [trial] = select_trials(pool(100), 1, "easy", 6, np.random.default_rng(0))
    drawn = {catch_trial(trial, np.random.default_rng(seed)).query for seed in range(40)}
    assert drawn <= set(trial.exemplars) and len(drawn) > 1
