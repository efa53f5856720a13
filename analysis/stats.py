"""The tests the published analyses ran, through scipy and scikit-posthocs rather than re-derived:
bootstrap CIs of a mean over units, Kruskal-Wallis with Conover post hoc (Holm), Spearman, and
Borowski-style participant summaries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import scikit_posthocs
from scipy import stats

N_RESAMPLES = 10_000
CONFIDENCE = 0.95
METHODS = ("percentile", "BCa")
# Borowski et al. 2021 report mean +- 1.96 standard errors of the mean over participants.
Z95 = 1.96


@dataclass(frozen=True)
class MeanCI:
    """A mean with its bootstrap confidence intervals (one per method, from the same resamples)."""

    mean: float
    n: int
    intervals: dict[str, tuple[float, float]]
    n_resamples: int
    seed: int
    confidence: float

    def to_json(self) -> dict[str, Any]:
        return {
            "mean": self.mean, "n": self.n, "n_resamples": self.n_resamples, "seed": self.seed,
            "confidence": self.confidence,
            "ci": {method: list(bounds) for method, bounds in self.intervals.items()},
        }


def _mean(sample: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(sample, axis=axis)


def bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    methods: Sequence[str] = METHODS,
    confidence: float = CONFIDENCE,
) -> MeanCI:
    """The mean and its CIs by scipy.stats.bootstrap, resampling the values (e.g. the units' scores).

    Every method reads the same bootstrap distribution: the first call draws it, the others reuse it
    (bootstrap_result, no new resamples), so each interval equals scipy's own call with that method and seed.
    NaNs (units without responses) are left out. Fewer than two values give no interval (NaN bounds).
    """
    sample = np.asarray(values, dtype=float)
    sample = sample[~np.isnan(sample)]
    intervals: dict[str, tuple[float, float]] = {}
    if len(sample) < 2 or np.ptp(sample) == 0:
        # No spread to resample: the interval is the value itself (or undefined without values).
        bound = float(sample[0]) if len(sample) else float("nan")
        intervals = {method: (bound, bound) if len(sample) >= 2 else (np.nan, np.nan) for method in methods}
    else:
        result = None
        for method in methods:
            result = stats.bootstrap(
                (sample,), _mean, n_resamples=0 if result is not None else n_resamples, vectorized=True,
                method=method, confidence_level=confidence, bootstrap_result=result,
                rng=np.random.default_rng(seed),
            )
            intervals[method] = (float(result.confidence_interval.low), float(result.confidence_interval.high))
    return MeanCI(
        mean=float(sample.mean()) if len(sample) else float("nan"), n=len(sample), intervals=intervals,
        n_resamples=n_resamples, seed=seed, confidence=confidence,
    )


@dataclass(frozen=True)
class Comparison:
    """Kruskal-Wallis across groups (models or conditions) and the Conover post hoc, Holm-adjusted."""

    statistic: float
    p: float
    n: dict[str, int]
    posthoc: pd.DataFrame  # Holm-adjusted p-values, groups by groups

    def to_json(self) -> dict[str, Any]:
        return {
            "test": "Kruskal-Wallis", "statistic": self.statistic, "p": self.p, "n": self.n,
            "posthoc": {"test": "Conover", "p_adjust": "holm",
                        "p": {str(row): {str(c): float(v) for c, v in values.items()}
                              for row, values in self.posthoc.iterrows()}},
        }


def compare_groups(groups: Mapping[str, Sequence[float] | np.ndarray]) -> Comparison:
    """Kruskal-Wallis on the groups' values (unit scores), then scikit-posthocs' Conover test with Holm."""
    named = {name: np.asarray(values, dtype=float) for name, values in groups.items()}
    named = {name: values[~np.isnan(values)] for name, values in named.items()}
    if len(named) < 2 or any(len(values) == 0 for values in named.values()):
        raise ValueError("Comparing needs at least two groups, each with a value.")
    # Groups with no spread at all give NaN (scipy's answer), not a warning in every report.
    with np.errstate(invalid="ignore", divide="ignore"):
        statistic, p = stats.kruskal(*named.values())
        matrix = scikit_posthocs.posthoc_conover(list(named.values()), p_adjust="holm")
    names = list(named)
    matrix.index = names
    matrix.columns = names
    return Comparison(float(statistic), float(p), {name: len(v) for name, v in named.items()}, matrix)


@dataclass(frozen=True)
class Correlation:
    rho: float
    p: float
    n: int
    x: str
    y: str

    def to_json(self) -> dict[str, Any]:
        return {"test": "Spearman", **asdict(self)}


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, *, x_name: str = "x",
             y_name: str = "y") -> Correlation:
    """scipy's Spearman rho over the pairs where both values are known; NaN below three pairs."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    known = ~(np.isnan(a) | np.isnan(b))
    a, b = a[known], b[known]
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return Correlation(float("nan"), float("nan"), len(a), x_name, y_name)
    result = stats.spearmanr(a, b)
    return Correlation(float(result.statistic), float(result.pvalue), len(a), x_name, y_name)


@dataclass(frozen=True)
class ParticipantSummary:
    """Borowski et al.'s summary: the mean of the participants' means +- 1.96 SEM (ddof 1)."""

    mean: float
    half_width: float
    n_participants: int
    n_responses: int

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rule": "mean over participants +- 1.96 SEM"}


def participant_summary(rows: pd.DataFrame, value: str = "correct", participant: str = "session") -> ParticipantSummary:
    per_participant = rows.groupby(participant)[value].mean().astype(float)
    n = len(per_participant)
    sem = float(per_participant.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    mean = float(per_participant.mean()) if n else float("nan")
    return ParticipantSummary(mean, Z95 * sem, n, len(rows))
