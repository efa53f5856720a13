"""The agreement score (no second study needed): how much more alike a unit's names are than names of
different units.

Per unit, the mean pairwise cosine similarity of its names' embeddings, chance-anchored by the same mean over
every pair of names of different units: S = (within - across) / (1 - across), 0 when a unit's names are as
alike as names of random units, 1 when they are identical. Computed from sums of unit-length vectors, so the
cost is linear in the number of names (no matrix of all pairs).

Per name, also the nearest name given by another participant for another unit (nearest_other): a name nearly
identical to it is a near-duplicate.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

# The most similarities held at once when comparing names with other names (64 MB of float32).
BLOCK_ELEMENTS = 1 << 24


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


def nearest_other(
    vectors: np.ndarray,
    units: np.ndarray,
    authors: np.ndarray,
    other_vectors: np.ndarray,
    other_units: np.ndarray,
    other_authors: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For each (unit-length) name, the row of the most similar of the other names given by another participant
    for another unit, and their cosine similarity; -1 and NaN where there is none. Computed a block of names at a
    time, so that memory stays linear in the number of other names."""
    nearest = np.full(len(vectors), -1)
    similarity = np.full(len(vectors), np.nan)
    if not len(other_vectors):
        return nearest, similarity
    block = max(1, BLOCK_ELEMENTS // len(other_vectors))
    for start in range(0, len(vectors), block):
        rows = slice(start, start + block)
        similar = vectors[rows] @ other_vectors.T
        comparable = (units[rows, None] != other_units[None, :]) & (authors[rows, None] != other_authors[None, :])
        similar = np.where(comparable, similar, -np.inf)
        best = similar.argmax(axis=1)
        found = comparable[np.arange(len(best)), best]
        nearest[rows] = np.where(found, best, -1)
        # Cosine is at most 1; float32 rounding can take identical names a hair above it.
        similarity[rows] = np.where(found, np.clip(similar[np.arange(len(best)), best], -1, 1), np.nan)
    return nearest, similarity
