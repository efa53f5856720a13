"""Is a session's accuracy on the study's hardest units plausible for a participant like the others?

A bot that has learnt the answer key over earlier sessions (from the feedback
on main trials) answers every trial right, the hardest units' too, where people
are least often right. This module gives the probability that another
participant of the study would answer at least as many of the session's
hardest units right: the one-sided p-value the `hard_units` check compares with
its threshold (experiments/checks.py).

The others are the study's other passing sessions, through their main, non-catch
answers. A unit counts once they have answered it at least `min_answers` times;
the hardest units are the `share` of those units they answered right least often.
Participants differ in skill, so that a careful one is right more often
everywhere: each participant's chance on unit u is expit(alpha_u + skill), with
skill normal around 0 and its spread fitted to the others' answers (maximum
likelihood on a grid), and alpha_u set so that the others' mean chance on u is
their accuracy on it, pulled toward the mean of all units as far as its answers
are few (shrunk_accuracy). The session's count of right answers on its hardest
units is then Poisson-binomial given skill, mixed over skill by Gauss-Hermite
quadrature. tests/test_plausibility.py measures how often honest simulated
sessions fail, and how often a keyed bot does.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Answers = Sequence[tuple[int, bool]]  # one session's main, non-catch answers: (unit id, right)

# Standard normal quadrature over skill, and the spreads (SD of skill, in logits) the fit chooses from.
NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(31)
WEIGHTS = _WEIGHTS / _WEIGHTS.sum()
SPREADS = np.linspace(0.0, 2.0, 21)
NEWTON_STEPS = 8
# The most answers the fitted beta distribution of the units' accuracies may weigh as (all units alike).
MAX_PRIOR_ANSWERS = 1e6


@dataclass(frozen=True)
class HardUnits:
    """The verdict's evidence. p_value is 1 when there is nothing to test (tested is False)."""

    p_value: float
    right: int  # the session's right answers on its hardest units
    answered: int  # its answers on them
    tested: bool
    spread: float = 0.0  # the fitted SD of skill


def hard_units_test(session: Answers, others: Sequence[Answers], share: float, min_answers: int) -> HardUnits:
    """P(another participant answers at least as many of the session's hardest units right)."""
    right: dict[int, int] = defaultdict(int)
    answers: dict[int, int] = defaultdict(int)
    for answered in others:
        for unit, correct in answered:
            answers[unit] += 1
            right[unit] += correct
    counted = sorted(unit for unit, n in answers.items() if n >= min_answers)
    shrunk = shrunk_accuracy(np.array([right[u] for u in counted]), np.array([answers[u] for u in counted]))
    accuracy = dict(zip(counted, shrunk.tolist(), strict=True))
    hardest = set(sorted(counted, key=lambda unit: (accuracy[unit], unit))[: math.ceil(share * len(counted))])
    mine = [(unit, correct) for unit, correct in session if unit in hardest]
    if not mine:
        return HardUnits(1.0, 0, 0, tested=False)
    spread = fitted_spread(others, accuracy)
    units = [unit for unit, _ in mine]
    alpha = intercepts(np.array([accuracy[unit] for unit in units]), spread)
    n_right = sum(correct for _, correct in mine)
    # One Poisson-binomial tail per quadrature node (rows: nodes, columns: the units).
    tails = at_least(n_right, expit(alpha[None, :] + spread * NODES[:, None]))
    return HardUnits(min(1.0, float(tails @ WEIGHTS)), n_right, len(mine), tested=True, spread=spread)


def expit(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def at_least(k: int, probabilities: np.ndarray) -> np.ndarray:
    """P(at least k of the independent events happen) per row of their probabilities: the Poisson-binomial
    tail (scipy.stats.poisson_binom.sf(k - 1, ...); computed here so that completing a session, in every
    web process, does not load scipy's 90 MB)."""
    counts = np.zeros((probabilities.shape[0], probabilities.shape[1] + 1))
    counts[:, 0] = 1.0
    for column in range(probabilities.shape[1]):
        p = probabilities[:, column : column + 1]
        counts[:, 1:] = counts[:, 1:] * (1 - p) + counts[:, :-1] * p
        counts[:, 0] *= 1 - p[:, 0]
    return counts[:, k:].sum(axis=1)


def shrunk_accuracy(right: np.ndarray, answers: np.ndarray) -> np.ndarray:
    """Each unit's accuracy, pulled toward the mean of all units as far as their answers are few.

    The posterior mean under a beta distribution of the units' accuracies, fitted
    to them by moments (empirical Bayes). Picking the units the others got right
    least often picks those whose few answers underrate them most; pulling them
    toward the mean undoes that, and keeps an honest session on them from looking
    better than it is.
    """
    if right.size == 0:
        return np.zeros(0)
    mean = right.sum() / answers.sum()
    # The spread of the units' true accuracies: the observed one less what binomial noise adds.
    between = np.var(right / answers) - np.mean(mean * (1 - mean) / answers)
    strength = mean * (1 - mean) / between - 1 if between > 0 else MAX_PRIOR_ANSWERS
    strength = min(max(strength, 0.0), MAX_PRIOR_ANSWERS)
    shrunk = (right + strength * mean) / (answers + strength)
    # Never certain either way: no closer to 0 or 1 than one more right and one more wrong answer allow.
    return np.clip(shrunk, 1 / (answers + 2), (answers + 1) / (answers + 2))


def intercepts(accuracy: np.ndarray, spread: float) -> np.ndarray:
    """alpha with E[expit(alpha + spread * z)] = accuracy over standard normal z.

    Newton's method from the probit approximation, which starts it close enough
    that a few steps do (tests/test_plausibility.py: accuracies from 0.001 to
    0.999, spreads up to 2, mean chances within 1e-6).
    """
    alpha = logit(accuracy) * math.sqrt(1 + math.pi * spread**2 / 8)
    for _ in range(NEWTON_STEPS):
        chance = expit(alpha[:, None] + spread * NODES[None, :])
        alpha = alpha - (chance @ WEIGHTS - accuracy) / ((chance * (1 - chance)) @ WEIGHTS)
    return alpha


def fitted_spread(others: Sequence[Answers], accuracy: dict[int, float]) -> float:
    """The SD of skill under which the others' answers (on the units of `accuracy`) are likeliest."""
    column = {unit: i for i, unit in enumerate(sorted(accuracy))}
    mean = np.array([accuracy[unit] for unit in sorted(accuracy)])
    # One row per session: its right and its wrong answers, by unit.
    right, wrong = np.zeros((len(others), len(column))), np.zeros((len(others), len(column)))
    for row, answered in enumerate(others):
        for unit, correct in answered:
            if unit in column:
                (right if correct else wrong)[row, column[unit]] += 1

    def log_likelihood(spread: float) -> float:
        # Clipped, so that a node far out in the tails never takes the log of 0.
        chance = np.clip(expit(intercepts(mean, spread)[:, None] + spread * NODES[None, :]), 1e-12, 1 - 1e-12)
        per_node = right @ np.log(chance) + wrong @ np.log(1 - chance)  # sessions x nodes
        top = per_node.max(axis=1, keepdims=True)
        return float((top[:, 0] + np.log(np.exp(per_node - top) @ WEIGHTS)).sum())

    return float(max(SPREADS, key=log_likelihood))
