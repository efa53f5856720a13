"""The 2-AFC stimulus selection (docs/protocols.md, 2-AFC "Stimuli"), on one unit's activations.

Pure numpy: every function takes the unit's activation for each pool image
(indexed by pool row) and returns pool rows. Positions below count in the
ascending activation order; the 9*t lowest images form the negative reference
pool, the 9*t highest the positive one, and query windows sit between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from protocols.selection import SelectionError, shuffled_bins, upper_window_start


@dataclass(frozen=True)
class TrialStimuli:
    """Pool rows of one trial. References are ordered by strength: index 0 is the most
    extreme (lowest for reference_min, highest for reference_max)."""

    batch: int
    reference_min: tuple[int, ...]
    reference_max: tuple[int, ...]
    query_negative: int
    query_positive: int


def query_windows(
    n_images: int, t: int, difficulty: str, references_per_side: int = 9
) -> tuple[range, range]:
    """Positions of the negative and positive query windows, t images each.

    Easy: the t images just inside each reference pool. Otherwise the positive
    window is centred on the difficulty's percentile and the negative one is its
    mirror image. Raises SelectionError when a window would overlap a reference
    pool or the other window.
    """
    negative_start, positive_start = _window_starts(n_images, t, difficulty, references_per_side)
    if not _windows_fit(n_images, t, references_per_side, negative_start, positive_start):
        minimum = minimum_pool_size(t, difficulty, references_per_side)
        raise SelectionError(
            f"A pool of {n_images} images is too small for t={t} trials per unit with "
            f"{references_per_side} references per side at difficulty '{difficulty}': "
            f"it needs at least {minimum} images."
        )
    return range(negative_start, negative_start + t), range(positive_start, positive_start + t)


def minimum_pool_size(t: int, difficulty: str, references_per_side: int = 9) -> int:
    """The smallest pool in which the query windows fit."""
    # Two reference pools and two windows is the least any difficulty needs.
    n_images = 2 * (references_per_side + 1) * t
    while not _windows_fit(
        n_images, t, references_per_side, *_window_starts(n_images, t, difficulty, references_per_side)
    ):
        n_images += 1
    return n_images


def _window_starts(
    n_images: int, t: int, difficulty: str, references_per_side: int
) -> tuple[int, int]:
    positive_start = upper_window_start(n_images, t, difficulty, references_per_side)
    return n_images - positive_start - t, positive_start


def _windows_fit(
    n_images: int, t: int, references_per_side: int, negative_start: int, positive_start: int
) -> bool:
    reference_pool = references_per_side * t
    return (
        negative_start >= reference_pool
        and positive_start + t <= n_images - reference_pool
        and negative_start + t <= positive_start
    )


def select_trials(
    activations: np.ndarray,
    t: int,
    difficulty: str,
    rng: np.random.Generator,
    references_per_side: int = 9,
) -> list[TrialStimuli]:
    """The unit's t trials (batches 0..t-1): stratified references and one query per side each."""
    order = np.argsort(activations, kind="stable")
    negative_window, positive_window = query_windows(len(order), t, difficulty, references_per_side)
    reference_pool = references_per_side * t
    # Strongest first, so that bin 0 (and a trial's rank 0) holds the most extreme images.
    min_bins = shuffled_bins(order[:reference_pool], references_per_side, rng)
    max_bins = shuffled_bins(order[::-1][:reference_pool], references_per_side, rng)
    negative_queries = rng.permutation(order[negative_window.start : negative_window.stop])
    positive_queries = rng.permutation(order[positive_window.start : positive_window.stop])
    return [
        TrialStimuli(
            batch=batch,
            reference_min=tuple(int(row) for row in min_bins[:, batch]),
            reference_max=tuple(int(row) for row in max_bins[:, batch]),
            query_negative=int(negative_queries[batch]),
            query_positive=int(positive_queries[batch]),
        )
        for batch in range(t)
    ]


def catch_trial(trial: TrialStimuli, rng: np.random.Generator) -> TrialStimuli:
    """The trial with its queries replaced by two of its own references, one of each block, so the
    answer is visible. Each is drawn from any place of its block, not always the most extreme one,
    which every session shows first; they are stored as disguised copies (see stimuli.disguise)."""
    return TrialStimuli(
        batch=trial.batch,
        reference_min=trial.reference_min,
        reference_max=trial.reference_max,
        query_negative=trial.reference_min[rng.integers(len(trial.reference_min))],
        query_positive=trial.reference_max[rng.integers(len(trial.reference_max))],
    )
