"""The model-score bootstrap at IMI's scale: 767 units x 10,000 resamples, ours (analysis.stats.
bootstrap_mean, through scipy.stats.bootstrap) against a plain vectorised numpy bootstrap (one index
matrix, a mean per row, percentiles) in the same run.

    .venv/bin/python benchmarks/analysis.py [--units 767] [--resamples 10000] [--repeats 15]

Ours is timed twice: the percentile interval alone (the same computation as the numpy baseline) and
the model score as the reports compute it (percentile and BCa from the same resamples, BCa adding its
jackknife). Each is timed `repeats` times, alternating, and the fastest run of each counts (the least
disturbed by other work on a shared machine). Prints one JSON line last: `ratio` = numpy_seconds /
percentile_seconds (1: as fast as plain numpy), `ratio_with_bca` = numpy_seconds / seconds, and
`seconds`, the whole model score's time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.stats import bootstrap_mean  # noqa: E402


def plain_numpy(scores: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = scores[rng.integers(0, len(scores), (resamples, len(scores)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def fastest(run: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=767)
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    # Unit scores as IMI's: proportions correct of 30 answers each, mostly well above chance.
    scores = np.random.default_rng(0).binomial(30, np.random.default_rng(1).beta(6, 2, args.units)) / 30
    ours = bootstrap_mean(scores, n_resamples=args.resamples, seed=0)
    baseline = plain_numpy(scores, args.resamples, 0)
    runs: dict[str, Callable[[], object]] = {
        "percentile": lambda: bootstrap_mean(scores, n_resamples=args.resamples, seed=0, methods=["percentile"]),
        "model_score": lambda: bootstrap_mean(scores, n_resamples=args.resamples, seed=0),
        "numpy": lambda: plain_numpy(scores, args.resamples, 0),
    }
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(args.repeats):
        for name, run in runs.items():
            best[name] = min(best[name], fastest(run, 1))
    print(f"ours: percentile {ours.intervals['percentile']}, BCa {ours.intervals['BCa']}; numpy percentile {baseline}")
    print(json.dumps({
        "units": args.units, "resamples": args.resamples, "seconds": round(best["model_score"], 4),
        "percentile_seconds": round(best["percentile"], 4), "numpy_seconds": round(best["numpy"], 4),
        "ratio": round(best["numpy"] / best["percentile"], 3),
        "ratio_with_bca": round(best["numpy"] / best["model_score"], 3),
    }))


if __name__ == "__main__":
    main()
