"""Localizability's stimuli for one unit (docs/protocols.md §2), on its activations over the pool.

The K * t most activating images are the exemplar pool; cut by strength into K
bins of t and shuffled within each (protocols.selection), trial b takes the
b-th image of every bin, so each trial's exemplars are stratified over the
pool. Queries come from a window of t images below the exemplar pool (easy:
just below it; otherwise around the difficulty's percentile), so a query is
never an exemplar of its unit. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from protocols.selection import SelectionError, shuffled_bins, upper_window_start


@dataclass(frozen=True)
class LocalizationStimuli:
    """Pool rows of one trial; exemplars are ordered by strength (index 0 the strongest)."""

    batch: int
    exemplars: tuple[int, ...]
    query: int


def _window_fits(n_images: int, t: int, difficulty: str, n_exemplars: int) -> bool:
    start = upper_window_start(n_images, t, difficulty, n_exemplars)
    return start >= 0 and start + t <= n_images - n_exemplars * t


def query_window(n_images: int, t: int, difficulty: str, n_exemplars: int) -> range:
    """Positions (ascending order) of the t queries; refused when they would reach the exemplars."""
    if not _window_fits(n_images, t, difficulty, n_exemplars):
        raise SelectionError(
            f"A pool of {n_images} images is too small for t={t} trials per unit with {n_exemplars} "
            f"exemplars at difficulty '{difficulty}': it needs at least "
            f"{minimum_pool_size(t, difficulty, n_exemplars)} images."
        )
    start = upper_window_start(n_images, t, difficulty, n_exemplars)
    return range(start, start + t)


def minimum_pool_size(t: int, difficulty: str, n_exemplars: int) -> int:
    """The smallest pool in which the query window fits below the exemplars."""
    n_images = (n_exemplars + 1) * t  # the exemplars and the window are the least any difficulty needs
    while not _window_fits(n_images, t, difficulty, n_exemplars):
        n_images += 1
    return n_images


def select_trials(
    activations: np.ndarray, t: int, difficulty: str, n_exemplars: int, rng: np.random.Generator
) -> list[LocalizationStimuli]:
    """The unit's t trials (batches 0..t-1): stratified exemplars and a query of its own each."""
    order = np.argsort(activations, kind="stable")
    window = query_window(len(order), t, difficulty, n_exemplars)
    bins = shuffled_bins(order[::-1][: n_exemplars * t], n_exemplars, rng)
    queries = rng.permutation(order[window.start : window.stop])
    return [
        LocalizationStimuli(batch, tuple(int(row) for row in bins[:, batch]), int(queries[batch]))
        for batch in range(t)
    ]


def catch_trial(trial: LocalizationStimuli, rng: np.random.Generator) -> LocalizationStimuli:
    """The trial with its query replaced by one of its own exemplars, whose heat map is shown, drawn
    from any place (not only the strongest, which every session shows first)."""
    return LocalizationStimuli(trial.batch, trial.exemplars, trial.exemplars[rng.integers(len(trial.exemplars))])
