"""Cheap ways a bot could tell a catch query from a main one by comparing it with its trial's references.

Each attack gives a query one number, its distance to the nearest reference of
its trial (smaller: more alike), on decoded pixels; a copy of a reference is
the query whose number is small. Every attack but the first also compares with
the references' mirror images, which is what a bot does once it knows that
copies may be mirrored. `separation` says how well one threshold on such
numbers tells catch queries from main ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.fft import dctn

Pixels = np.ndarray  # height x width x 3, uint8


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())


def _thumbnail(size: int) -> Callable[[Pixels], np.ndarray]:
    def thumbnail(pixels: Pixels) -> np.ndarray:
        return np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.BOX), dtype=np.float64)

    return thumbnail


def _grey(pixels: Pixels, width: int, height: int) -> np.ndarray:
    image = Image.fromarray(pixels).convert("L").resize((width, height), Image.Resampling.BOX)
    return np.asarray(image, dtype=np.float64)


def difference_hash(pixels: Pixels) -> np.ndarray:
    """64 bits: whether each of 8 x 8 grey cells is brighter than its left neighbour (dHash)."""
    grey = _grey(pixels, 9, 8)
    return (grey[:, 1:] > grey[:, :-1]).ravel()


def dct_hash(pixels: Pixels) -> np.ndarray:
    """64 bits: the 8 x 8 lowest frequencies of a 32 x 32 grey image against their median (pHash)."""
    low = dctn(_grey(pixels, 32, 32), norm="ortho")[:8, :8].ravel()
    return low > np.median(low[1:])


def _hamming(a: np.ndarray, b: np.ndarray) -> float:
    return float((a != b).sum())


@dataclass(frozen=True)
class Attack:
    name: str
    features: Callable[[Pixels], np.ndarray]
    distance: Callable[[np.ndarray, np.ndarray], float]
    mirrored: bool  # also compare with the references' mirror images

    def nearest(self, query: Pixels, references: list[Pixels]) -> float:
        """The query's distance to the nearest reference."""
        views = references + ([r[:, ::-1] for r in references] if self.mirrored else [])
        features = self.features(query)
        return min(self.distance(features, self.features(view)) for view in views)


ATTACKS = (
    Attack("pixel MSE", np.asarray, _mse, mirrored=False),
    Attack("pixel MSE, mirror-aware", np.asarray, _mse, mirrored=True),
    Attack("16 x 16 thumbnail MSE, mirror-aware", _thumbnail(16), _mse, mirrored=True),
    Attack("8 x 8 thumbnail MSE, mirror-aware", _thumbnail(8), _mse, mirrored=True),
    Attack("difference hash, mirror-aware", difference_hash, _hamming, mirrored=True),
    Attack("DCT hash, mirror-aware", dct_hash, _hamming, mirrored=True),
)


@dataclass(frozen=True)
class Separation:
    """How one threshold on a distance tells catch queries (small distances) from main ones."""

    found_alone: float  # share of catch queries nearer than every main query: found with no false alarm
    auc: float  # P(a catch query is nearer than a main query): 0.5 is no telling, 1 always
    best_accuracy: float  # balanced accuracy at the best threshold: 0.5 is chance


def separation(catch: list[float], main: list[float]) -> Separation:
    c, m = np.asarray(catch), np.asarray(main)
    nearer = (c[:, None] < m[None, :]).mean() + 0.5 * (c[:, None] == m[None, :]).mean()
    accuracy = max(((c <= t).mean() + (m > t).mean()) / 2 for t in np.concatenate([c, m]))
    return Separation(float((c < m.min()).mean()), float(nearer), float(max(accuracy, 0.5)))
