"""Scoring clicks against a unit's own activation map (docs/protocols.md §2), in plain numpy.

A map A is the unit's activation upsampled to the query image's pixels and
clipped at 0. Its *top region* is the smallest set of pixels holding half of
A's mass: the pixels taken from the strongest down until their sum reaches
half the total. Ties at the boundary are taken whole (the region is the set
{A >= v} for the weakest value v it needs), so the region never depends on
how equal pixels happen to be ordered; it is then slightly larger than the
smallest set, and p0 counts it as it is. A map without mass (all zero after
clipping) has no region: its responses are not scored (hit, p0 and graded
score are None) and count toward no unit's score. A constant map has no
graded score (max A = mean A).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MASS = 0.5
# How one response with several clicks is judged: every click is kept and exported either way.
BEST, FIRST, MEAN = "best", "first", "mean"
RULES = (BEST, FIRST, MEAN)


@dataclass(frozen=True)
class MapSummary:
    """What scoring needs of one clipped map."""

    values: np.ndarray  # (height, width), clipped at 0
    threshold: float  # a pixel is in the top region when its value is >= threshold
    p0: float  # the top region's share of the image
    mean: float
    maximum: float

    @property
    def scored(self) -> bool:
        return self.maximum > 0


def summarize(activation_map: np.ndarray, mass: float = MASS) -> MapSummary:
    """The clipped map, its top region's threshold and area share, its mean and maximum."""
    values = np.clip(np.asarray(activation_map, dtype=np.float64), 0, None)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"An activation map is two-dimensional and not empty (got shape {values.shape}).")
    total = float(values.sum())
    maximum = float(values.max())
    if total <= 0:
        return MapSummary(values, np.inf, 0.0, 0.0, 0.0)
    strongest = np.sort(values, axis=None)[::-1]
    needed = int(np.searchsorted(np.cumsum(strongest), mass * total))
    threshold = float(strongest[min(needed, strongest.size - 1)])
    p0 = float(np.count_nonzero(values >= threshold)) / values.size
    return MapSummary(values, threshold, p0, float(values.mean()), maximum)


@dataclass(frozen=True)
class ClickScore:
    hit: bool
    graded: float | None


def score_click(summary: MapSummary, x: int, y: int) -> ClickScore:
    """One click at image pixel (x, y): inside the top region, and (A(click) - mean) / (max - mean)."""
    height, width = summary.values.shape
    if not (0 <= x < width and 0 <= y < height):
        raise ValueError(f"The click ({x}, {y}) lies outside the {width} x {height} image.")
    value = float(summary.values[y, x])
    spread = summary.maximum - summary.mean
    graded = (value - summary.mean) / spread if spread > 0 else None
    return ClickScore(hit=value >= summary.threshold, graded=graded)


@dataclass(frozen=True)
class ResponseScore:
    """One response: its clicks' scores, and the response's hit and graded score under the study's rule.

    hit is a share in [0, 1] (0 or 1 under `best` and `first`); chance is what random clicks would
    score under the same rule: p0 for `first` and `mean`, 1 - (1 - p0)^n for the best of n clicks.
    """

    clicks: tuple[ClickScore, ...]
    hit: float | None
    graded: float | None
    p0: float | None
    chance: float | None


def score_response(summary: MapSummary, clicks: Sequence[Sequence[int]], rule: str) -> ResponseScore:
    if rule not in RULES:
        raise ValueError(f"Unknown click rule {rule!r} (rules: {', '.join(RULES)}).")
    if not clicks:
        raise ValueError("A response has at least one click.")
    scored = tuple(score_click(summary, int(x), int(y)) for x, y in clicks)
    if not summary.scored:
        return ResponseScore(scored, None, None, None, None)
    hits = [float(click.hit) for click in scored]
    graded = [click.graded for click in scored]
    if rule == FIRST:
        hit, chance = hits[0], summary.p0
        grade = graded[0]
    elif rule == BEST:
        hit, chance = max(hits), 1 - (1 - summary.p0) ** len(hits)
        grade = None if graded[0] is None else max(g for g in graded if g is not None)
    else:
        hit, chance = float(np.mean(hits)), summary.p0
        grade = None if graded[0] is None else float(np.mean([g for g in graded if g is not None]))
    return ResponseScore(scored, hit, grade, summary.p0, chance)


@dataclass(frozen=True)
class UnitScore:
    n_responses: int
    hit_rate: float | None
    chance: float | None  # mean chance (mean p0 for one click per response)
    localizability: float | None  # S = (hit rate - chance) / (1 - chance)
    graded: float | None


def unit_score(
    hits: Sequence[float | None], chances: Sequence[float | None], graded: Sequence[float | None]
) -> UnitScore:
    """The chance-anchored score S of a unit over its scored responses: 0 for random clicks, 1 for
    perfect ones. None where no response is scored, or where chance is 1 (a region covering the
    whole image, as a constant map gives), since then no click can do better than chance."""
    pairs = [(h, c) for h, c in zip(hits, chances, strict=True) if h is not None and c is not None]
    grades = [g for g in graded if g is not None]
    mean_grade = float(np.mean(grades)) if grades else None
    if not pairs:
        return UnitScore(0, None, None, None, mean_grade)
    hit_rate = float(np.mean([h for h, _ in pairs]))
    chance = float(np.mean([c for _, c in pairs]))
    score = (hit_rate - chance) / (1 - chance) if chance < 1 else None
    return UnitScore(len(pairs), hit_rate, chance, score, mean_grade)


def mean_p0(activation_maps: Sequence[np.ndarray], mass: float = MASS) -> float:
    """The maps' mean p0: how little of an image their top regions cover (practice units default to the
    units whose exemplar maps have the smallest). A map without mass counts as 1: it shows nothing to find."""
    if not activation_maps:
        raise ValueError("The mean p0 of no maps is not defined.")
    shares = [summary.p0 if (summary := summarize(values, mass)).scored else 1.0 for values in activation_maps]
    return float(np.mean(shares))
