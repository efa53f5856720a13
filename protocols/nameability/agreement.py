"""The agreement score (no second study needed): how much more alike a unit's names are than names of
different units.

Per unit, the mean pairwise cosine similarity of its names' embeddings, chance-anchored by the same mean over
every pair of names of different units: S = (within - across) / (1 - across), 0 when a unit's names are as
alike as names of random units, 1 when they are identical. Computed from sums of unit-length vectors, so the
cost is linear in the number of names (no matrix of all pairs).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def across_units(vectors_by_unit: Mapping[int, np.ndarray]) -> float | None:
    """The mean cosine similarity over pairs of names of different units; None with fewer than two units."""
    sums = [vectors.sum(axis=0) for vectors in vectors_by_unit.values() if len(vectors)]
    counts = [len(vectors) for vectors in vectors_by_unit.values() if len(vectors)]
    if len(sums) < 2:
        return None
    total = np.sum(sums, axis=0)
    same_unit = sum(float(s @ s) for s in sums)
    pairs = sum(counts) ** 2 - sum(n * n for n in counts)
    return (float(total @ total) - same_unit) / pairs


def within_unit(vectors: np.ndarray) -> float | None:
    """The mean cosine similarity over pairs of one unit's (unit-length) names; None with fewer than two."""
    n = len(vectors)
    if n < 2:
        return None
    total = vectors.sum(axis=0)
    return (float(total @ total) - float(np.einsum("ij,ij->", vectors, vectors))) / (n * (n - 1))


def agreement_scores(vectors_by_unit: Mapping[int, np.ndarray]) -> dict[int, float | None]:
    """Each unit's chance-anchored agreement; None for a unit with fewer than two names, or a study with one unit."""
    across = across_units(vectors_by_unit)
    scores: dict[int, float | None] = {}
    for unit, vectors in vectors_by_unit.items():
        within = within_unit(vectors)
        if within is None or across is None or across >= 1:
            scores[unit] = None
        else:
            scores[unit] = (within - across) / (1 - across)
    return scores


def near_duplicates(
    vectors: np.ndarray, units: np.ndarray, authors: np.ndarray, threshold: float
) -> np.ndarray:
    """For each name, whether another participant gave a name at least this similar to another unit."""
    similar = vectors @ vectors.T >= threshold
    other = (units[:, None] != units[None, :]) & (authors[:, None] != authors[None, :])
    return np.asarray((similar & other).any(axis=1))
