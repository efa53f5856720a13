"""How often the hard_units check (experiments/plausibility.py) fails honest sessions, and keyed bots.

Simulated studies of IMI's design: 84 units whose true accuracies spread evenly
from 0.55 to 0.95, 63 honest sessions of 40 distinct units each, completing one
after the other, each tested against those before it (as the check does when a
session completes). An honest participant answers a unit right with its
accuracy, shifted on the logit scale by a skill drawn per participant (SD: the
skill spread); a keyed bot answers right with the given accuracy on every unit,
and one arrives after 30, 45 and 60 honest sessions. Prints one line per
setting: the share of honest sessions and of bots failing at each threshold.

    .venv/bin/python benchmarks/answer_key_check.py [--studies 20] [--share 0.5] [--min-answers 10]

No database is touched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.special import expit, logit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.plausibility import hard_units_test  # noqa: E402

UNITS, PER_SESSION, SESSIONS, BOTS_AFTER = 84, 40, 63, (30, 45, 60)
THRESHOLDS = (0.01, 0.005, 0.001)
SKILL_SPREADS = (0.0, 0.3, 0.5)
BOT_ACCURACIES = (1.0, 0.9)


def simulate(
    skill_spread: float, bot_accuracy: float, studies: int, share: float, min_answers: int
) -> tuple[np.ndarray, np.ndarray]:
    """The p-values of the honest sessions and of the bots."""
    honest: list[float] = []
    bots: list[float] = []
    for seed in range(studies):
        rng = np.random.default_rng(seed)
        accuracy = rng.uniform(0.55, 0.95, UNITS)
        before: list[list[tuple[int, bool]]] = []
        for number in range(SESSIONS):
            if number in BOTS_AFTER:
                units = rng.choice(UNITS, PER_SESSION, replace=False)
                keyed = list(zip(units.tolist(), (rng.random(PER_SESSION) < bot_accuracy).tolist(), strict=True))
                bots.append(hard_units_test(keyed, before, share, min_answers).p_value)
            units = rng.choice(UNITS, PER_SESSION, replace=False)
            chance = expit(logit(accuracy[units]) + rng.normal(0, skill_spread))
            answers = list(zip(units.tolist(), (rng.random(PER_SESSION) < chance).tolist(), strict=True))
            honest.append(hard_units_test(answers, before, share, min_answers).p_value)
            before.append(answers)
    return np.array(honest), np.array(bots)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--share", type=float, default=0.5)
    parser.add_argument("--min-answers", type=int, default=10)
    args = parser.parse_args()
    for spread in SKILL_SPREADS:
        for bot_accuracy in BOT_ACCURACIES:
            honest, bots = simulate(spread, bot_accuracy, args.studies, args.share, args.min_answers)
            failing = " ".join(
                f"p<{t:g}: honest {np.mean(honest < t):.2%} ({np.sum(honest < t)}), bots {np.mean(bots < t):.0%}"
                for t in THRESHOLDS
            )
            print(
                f"skill spread {spread}, bot accuracy {bot_accuracy}: {len(honest)} honest sessions "
                f"({np.mean(honest < 1):.0%} tested), {len(bots)} bots; {failing}",
                flush=True,
            )


if __name__ == "__main__":
    main()
