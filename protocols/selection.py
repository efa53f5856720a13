"""Stimulus selection that protocols share: difficulty windows above a pool of exemplars, and
stratified bins (docs/protocols.md §1, steps 3 and 4). Pure numpy, on positions in the ascending
activation order of a unit's pool."""

from __future__ import annotations

import numpy as np

from protocols.base import DesignError

EASY = "easy"
# Where an upper query window is centred (2-AFC's lower window mirrors it).
QUERY_PERCENTILES = {"medium": 99.0, "hard": 95.0, "very_hard": 85.0}
DIFFICULTIES = [
    ("easy", "easy (queries just inside the reference pools)"),
    ("medium", "medium (99th / 1st percentile)"),
    ("hard", "hard (95th / 5th percentile)"),
    ("very_hard", "very hard (85th / 15th percentile)"),
]


class SelectionError(DesignError):
    """The pool cannot give the requested trials."""


def upper_window_start(n_images: int, t: int, difficulty: str, per_trial: int) -> int:
    """Where the upper window of t queries starts: just below the top per_trial * t images (easy),
    or centred on the difficulty's percentile."""
    if difficulty == EASY:
        return n_images - per_trial * t - t
    if difficulty in QUERY_PERCENTILES:
        centre = round(QUERY_PERCENTILES[difficulty] / 100 * (n_images - 1))
        return centre - t // 2
    raise SelectionError(f"Unknown difficulty {difficulty!r}.")


def shuffled_bins(by_strength: np.ndarray, n_bins: int, rng: np.random.Generator) -> np.ndarray:
    """Cut images ordered by strength into n_bins consecutive bins (rows), shuffled within each:
    column b then holds images stratified over the whole pool."""
    return rng.permuted(by_strength.reshape(n_bins, -1), axis=1)
