"""What a study costs: sessions needed, MTurk fees, the estimate shown before launch, the cap.

Pure arithmetic on Decimals; what has been spent so far is a read of the
database and lives in recruitment.selectors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
# MTurk: 20% on rewards and bonuses, 40% on rewards of HITs with 10 or more
# assignments, and at least one cent per assignment or bonus.
FEE_RATE = Decimal("0.20")
LARGE_HIT_FEE_RATE = Decimal("0.40")
LARGE_HIT = 10


def mturk_fee_rate(assignments_per_hit: int) -> Decimal:
    return LARGE_HIT_FEE_RATE if assignments_per_hit >= LARGE_HIT else FEE_RATE


def mturk_fee(amount: Decimal, rate: Decimal = FEE_RATE) -> Decimal:
    return max(CENT, (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP))


def assignment_cost(reward: Decimal, assignments_per_hit: int) -> Decimal:
    """What one assignment costs the requester, fee included."""
    return reward + mturk_fee(reward, mturk_fee_rate(assignments_per_hit))


def bonus_cost(amount: Decimal) -> Decimal:
    return amount + mturk_fee(amount) if amount > 0 else Decimal("0.00")


@dataclass(frozen=True)
class CostEstimate:
    sessions_needed: int
    assignments: int  # sessions needed plus the over-recruitment allowance
    reward: Decimal
    fee_rate: Decimal
    cost_per_assignment: Decimal
    bonus_per_passing_session: Decimal
    total: Decimal


def estimate_mturk_cost(
    *,
    sessions: int,
    reward: Decimal,
    assignments_per_hit: int,
    over_recruitment: Decimal,
    bonus: Decimal = Decimal("0.00"),
) -> CostEstimate:
    """reward x assignments needed x (1 + fee), plus bonuses for the passing sessions."""
    assignments = math.ceil(sessions * (1 + over_recruitment))
    per_assignment = assignment_cost(reward, assignments_per_hit)
    per_bonus = bonus_cost(bonus)
    return CostEstimate(
        sessions_needed=sessions,
        assignments=assignments,
        reward=reward,
        fee_rate=mturk_fee_rate(assignments_per_hit),
        cost_per_assignment=per_assignment,
        bonus_per_passing_session=per_bonus,
        total=assignments * per_assignment + sessions * per_bonus,
    )


def affordable_assignments(cap: Decimal, committed: Decimal, per_assignment: Decimal) -> int:
    """How many more assignments fit under the cap."""
    return max(0, int((cap - committed) // per_assignment))


def estimate_cost_without_fee(
    *, sessions: int, reward: Decimal, over_recruitment: Decimal, bonus: Decimal = Decimal("0.00")
) -> CostEstimate:
    """The same estimate with no recruiter's fee: Prolific shows (and locks) its own at publish."""
    assignments = math.ceil(sessions * (1 + over_recruitment))
    return CostEstimate(
        sessions_needed=sessions,
        assignments=assignments,
        reward=reward,
        fee_rate=Decimal(0),
        cost_per_assignment=reward,
        bonus_per_passing_session=bonus,
        total=assignments * reward + sessions * bonus,
    )
