"""The answer-key statistic (experiments/plausibility.py) on simulated studies.

A simulated study is IMI's design: 84 units whose true accuracies spread
evenly from 0.55 to 0.95, 63 sessions of 40 distinct units each, completing one
after the other; each session is tested against the sessions before it, as the
check does when a session completes. Honest participants answer a unit right
with its own probability (shifted, for a crowd of unequal skill, by a skill
drawn per participant on the logit scale); a keyed bot answers every trial
right. One bot arrives after 45 honest sessions in each study.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from scipy.special import expit, logit

from experiments.plausibility import NODES, WEIGHTS, fitted_spread, hard_units_test, intercepts, shrunk_accuracy

UNITS, PER_SESSION, SESSIONS, BOT_AFTER = 84, 40, 63, 45
SHARE, MIN_ANSWERS, MAX_P = 0.5, 10, 0.01  # the study's defaults


def session_answers(rng: np.random.Generator, accuracy: np.ndarray, skill: float) -> list[tuple[int, bool]]:
    units = rng.choice(len(accuracy), PER_SESSION, replace=False)
    right = rng.random(PER_SESSION) < expit(logit(accuracy[units]) + skill)
    return list(zip(units.tolist(), right.tolist(), strict=True))


@functools.cache
def simulated(skill_spread: float, studies: int = 20) -> tuple[list[float], list[float]]:
    """p-values of the honest sessions and of the bots."""
    honest, bots = [], []
    for seed in range(studies):
        rng = np.random.default_rng(seed)
        accuracy = rng.uniform(0.55, 0.95, UNITS)
        before: list[list[tuple[int, bool]]] = []
        for number in range(SESSIONS):
            if number == BOT_AFTER:
                keyed = [(int(unit), True) for unit in rng.choice(UNITS, PER_SESSION, replace=False)]
                bots.append(hard_units_test(keyed, before, SHARE, MIN_ANSWERS).p_value)
            answers = session_answers(rng, accuracy, rng.normal(0, skill_spread))
            honest.append(hard_units_test(answers, before, SHARE, MIN_ANSWERS).p_value)
            before.append(answers)
    return honest, bots


def flagged(p_values: list[float]) -> float:
    return float(np.mean(np.array(p_values) < MAX_P))


def test_honest_sessions_are_flagged_at_most_once_in_a_hundred():
    honest, _ = simulated(0.0)
    assert len(honest) >= 1000
    assert flagged(honest) <= 0.01, f"{flagged(honest):.4f} of {len(honest)}"


def test_honest_sessions_of_unequal_skill_are_flagged_at_most_once_in_a_hundred():
    honest, _ = simulated(0.5)
    assert flagged(honest) <= 0.01, f"{flagged(honest):.4f} of {len(honest)}"


def test_a_keyed_bot_among_honest_participants_is_flagged():
    _, bots = simulated(0.0)
    assert flagged(bots) >= 0.95, f"{flagged(bots):.2f} of {len(bots)}: {sorted(bots)}"


def test_a_session_is_untested_while_no_unit_has_enough_answers_of_others():
    rng = np.random.default_rng(0)
    accuracy = rng.uniform(0.55, 0.95, UNITS)
    others = [session_answers(rng, accuracy, 0.0) for _ in range(5)]  # about 2.4 answers per unit
    verdict = hard_units_test(session_answers(rng, accuracy, 0.0), others, SHARE, MIN_ANSWERS)
    assert (verdict.tested, verdict.p_value) == (False, 1.0)


def test_the_hardest_units_are_the_share_of_counted_units_the_others_got_right_least():
    # Unit u is answered by 12 others, u + 1 of them right: units 0, 1 and 2 are the hardest quarter of 12.
    others = [[(unit, number <= unit) for unit in range(12)] for number in range(12)]
    session = [(unit, True) for unit in range(12)] + [(99, True)]  # unit 99: no answers of others
    verdict = hard_units_test(session, others, share=0.25, min_answers=MIN_ANSWERS)
    assert (verdict.answered, verdict.right) == (3, 3)


def test_a_perfect_score_on_the_hardest_units_is_as_improbable_as_its_chances_multiplied():
    # Each unit's right answers are spread evenly over the others, so that the fitted spread of skill is 0.
    others = [[(unit, (number + 3 * unit) % 10 < 6 + unit % 2) for unit in range(4)] for number in range(10)]
    verdict = hard_units_test([(unit, True) for unit in range(4)], others, share=1.0, min_answers=MIN_ANSWERS)
    chances = shrunk_accuracy(np.array([6, 7, 6, 7]), np.array([10, 10, 10, 10]))
    assert verdict.spread == 0.0
    assert verdict.p_value == pytest.approx(math.prod(chances))


def test_a_unit_with_fewer_answers_is_pulled_further_toward_the_mean_accuracy():
    right, answers = np.array([2, 20, 40, 80, 160]), np.array([10, 100, 50, 100, 200])
    shrunk = shrunk_accuracy(right, answers)
    mean = right.sum() / answers.sum()
    assert mean - shrunk[0] < mean - shrunk[1] and shrunk[0] > 0.2  # both answered right a fifth of the time
    assert shrunk[2] == pytest.approx(shrunk[3], abs=0.02) == pytest.approx(0.8, abs=0.02)


def test_units_that_differ_no_more_than_by_chance_all_get_the_mean_accuracy():
    right, answers = np.array([6, 7, 6, 7]), np.array([10, 10, 10, 10])
    np.testing.assert_allclose(shrunk_accuracy(right, answers), 0.65, atol=1e-5)


def test_intercepts_make_the_mean_chance_the_others_accuracy():
    accuracy = np.concatenate([np.geomspace(1e-3, 0.5, 20), 1 - np.geomspace(1e-3, 0.5, 20)])
    for spread in (0.0, 0.5, 1.0, 2.0):
        mean = expit(intercepts(accuracy, spread)[:, None] + spread * NODES[None, :]) @ WEIGHTS
        np.testing.assert_allclose(mean, accuracy, atol=1e-6)


def test_the_fitted_spread_is_the_spread_of_the_participants_skill():
    rng = np.random.default_rng(1)
    accuracy = rng.uniform(0.55, 0.95, UNITS)
    others = [session_answers(rng, accuracy, rng.normal(0, 0.8)) for _ in range(300)]
    assert fitted_spread(others, dict(enumerate(accuracy))) == pytest.approx(0.8, abs=0.2)


def test_the_poisson_binomial_tail_equals_scipys():
    from scipy.stats import poisson_binom

    from experiments.plausibility import at_least

    probabilities = np.random.default_rng(3).uniform(0.05, 0.95, size=(7, 23))
    for k in (0, 1, 12, 23):
        np.testing.assert_allclose(at_least(k, probabilities), poisson_binom.sf(k - 1, probabilities), atol=1e-12)
