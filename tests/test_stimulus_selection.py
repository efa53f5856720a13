"""The §1 selection on synthetic pools whose activations are known.

Activations are a seeded permutation of 0..n-1, so an image's activation is
its position in the ascending order: position checks read activations directly.
"""

import numpy as np
import pytest

from protocols.two_afc.selection import (
    SelectionError,
    catch_trial,
    minimum_pool_size,
    query_windows,
    select_trials,
)
from stimuli.sampling import sample_layer_channels, seeded_rng

DIFFICULTIES = ["easy", "medium", "hard", "very_hard"]


def known_pool(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n).astype(np.float32)


def trials_of(n: int, t: int, difficulty: str = "easy", seed: int = 0, references: int = 9):
    activations = known_pool(n)
    return activations, select_trials(activations, t, difficulty, seeded_rng(seed), references)


def test_rank_k_reference_comes_from_the_kth_strongest_bin():
    n, t = 400, 4
    activations, trials = trials_of(n, t)
    for trial in trials:
        for rank, row in enumerate(trial.reference_max):
            assert n - (rank + 1) * t <= activations[row] < n - rank * t
        for rank, row in enumerate(trial.reference_min):
            assert rank * t <= activations[row] < (rank + 1) * t


def test_every_reference_of_the_pools_is_used_by_exactly_one_trial():
    n, t = 400, 4
    activations, trials = trials_of(n, t)
    used_max = sorted(activations[row] for trial in trials for row in trial.reference_max)
    used_min = sorted(activations[row] for trial in trials for row in trial.reference_min)
    assert used_max == list(range(n - 9 * t, n))
    assert used_min == list(range(9 * t))


def test_bins_are_shuffled_across_trials():
    activations, trials = trials_of(400, 10)
    # Unshuffled, trial 0 would always take the strongest image of every bin.
    top_bin = [activations[trial.reference_max[0]] for trial in trials]
    assert top_bin != sorted(top_bin, reverse=True)


def test_easy_queries_sit_just_inside_the_reference_pools():
    n, t = 400, 4
    activations, trials = trials_of(n, t)
    assert sorted(activations[trial.query_positive] for trial in trials) == list(
        range(n - 10 * t, n - 9 * t)
    )
    assert sorted(activations[trial.query_negative] for trial in trials) == list(
        range(9 * t, 10 * t)
    )


@pytest.mark.parametrize("difficulty,percentile", [("medium", 99), ("hard", 95), ("very_hard", 85)])
def test_percentile_queries_are_centred_on_the_percentile(difficulty, percentile):
    n, t = 20_000, 20
    activations, trials = trials_of(n, t, difficulty)
    positives = [activations[trial.query_positive] for trial in trials]
    negatives = [activations[trial.query_negative] for trial in trials]
    assert abs(np.mean(positives) - percentile / 100 * (n - 1)) <= 1
    assert abs(np.mean(negatives) - (100 - percentile) / 100 * (n - 1)) <= 1
    assert max(positives) - min(positives) == t - 1


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("t", [1, 2, 5, 20])
def test_windows_never_overlap_the_reference_pools(difficulty, t):
    smallest = minimum_pool_size(t, difficulty)
    for n in range(smallest, smallest + 300, 7):
        negative, positive = query_windows(n, t, difficulty)
        assert negative.start >= 9 * t
        assert positive.stop <= n - 9 * t
        assert negative.stop <= positive.start


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_a_pool_too_small_names_the_minimum_size(difficulty):
    smallest = minimum_pool_size(20, difficulty)
    with pytest.raises(SelectionError, match=f"at least {smallest} images"):
        select_trials(known_pool(smallest - 1), 20, difficulty, seeded_rng(0))


def test_each_trial_gets_its_own_queries():
    _, trials = trials_of(400, 10)
    assert len({trial.query_positive for trial in trials}) == 10
    assert len({trial.query_negative for trial in trials}) == 10


def test_the_same_seed_gives_the_same_trials():
    assert trials_of(400, 5, seed=7)[1] == trials_of(400, 5, seed=7)[1]


def test_another_seed_gives_other_trials():
    assert trials_of(400, 5, seed=7)[1] != trials_of(400, 5, seed=8)[1]


def test_references_per_side_sets_the_number_of_bins():
    n, t = 200, 3
    activations, trials = trials_of(n, t, references=5)
    assert all(len(trial.reference_max) == len(trial.reference_min) == 5 for trial in trials)
    assert sorted(activations[trial.query_positive] for trial in trials) == list(
        range(n - 6 * t, n - 5 * t)
    )


def test_catch_queries_are_references_of_the_trials_own_blocks():
    _, trials = trials_of(400, 4)
    catch = catch_trial(trials[2], seeded_rng(3))
    assert (catch.reference_max, catch.reference_min) == (trials[2].reference_max, trials[2].reference_min)
    assert catch.query_positive in catch.reference_max
    assert catch.query_negative in catch.reference_min


def test_catch_queries_come_from_every_place_of_their_blocks():
    """Not only the most extreme reference, which every session shows first in its block."""
    _, trials = trials_of(400, 4)
    catches = [catch_trial(trials[0], seeded_rng(seed)) for seed in range(200)]
    assert {trials[0].reference_max.index(c.query_positive) for c in catches} == set(range(9))
    assert {trials[0].reference_min.index(c.query_negative) for c in catches} == set(range(9))


def test_an_unknown_difficulty_is_refused():
    with pytest.raises(SelectionError, match="Unknown difficulty"):
        select_trials(known_pool(400), 2, "impossible", seeded_rng(0))


def test_unit_sampling_draws_distinct_units_reproducibly():
    channels = {"a": 3, "b": 5}
    units = sample_layer_channels(channels, 8, seeded_rng(3))
    assert sorted(units) == [("a", c) for c in range(3)] + [("b", c) for c in range(5)]
    assert units == sample_layer_channels(channels, 8, seeded_rng(3))


def test_unit_sampling_draws_the_layer_first():
    # Uniform over units would almost never pick the 1-channel layer; layer first picks
    # it about half the time as the first of two units, and often as the second.
    picked = sum(
        ("narrow", 0) in sample_layer_channels({"narrow": 1, "wide": 1000}, 2, seeded_rng(seed))
        for seed in range(200)
    )
    assert picked > 120


def test_unit_sampling_refuses_more_units_than_channels():
    with pytest.raises(ValueError, match="Cannot sample 4 distinct units from 3"):
        sample_layer_channels({"a": 3}, 4, seeded_rng(0))
