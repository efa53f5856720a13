"""Budget arithmetic: sessions needed, MTurk fees by HIT size, the estimate and the cap."""

from decimal import Decimal

import pytest

from recruitment import budget
from tests.factories import StudyFactory


@pytest.mark.django_db
def test_sessions_needed_is_units_times_target_over_main_trials_rounded_up():
    assert StudyFactory(n_units=84, target_per_unit=30, n_main_trials=40).sessions_needed == 63
    assert StudyFactory(n_units=10, target_per_unit=3, n_main_trials=4).sessions_needed == 8


def test_fee_is_20_percent_up_to_nine_assignments_and_40_from_ten():
    assert budget.mturk_fee_rate(1) == Decimal("0.20")
    assert budget.mturk_fee_rate(9) == Decimal("0.20")
    assert budget.mturk_fee_rate(10) == Decimal("0.40")


def test_fee_is_at_least_one_cent():
    assert budget.mturk_fee(Decimal("0.02")) == Decimal("0.01")
    assert budget.assignment_cost(Decimal("0.02"), 1) == Decimal("0.03")


def test_estimate_is_reward_times_assignments_with_allowance_times_one_plus_fee():
    estimate = budget.estimate_mturk_cost(
        sessions=63, reward=Decimal("2.79"), assignments_per_hit=9, over_recruitment=Decimal("0.20")
    )
    # 63 x 1.2 = 75.6 -> 76 assignments of 2.79 + 0.56 fee.
    assert estimate.assignments == 76
    assert estimate.cost_per_assignment == Decimal("3.35")
    assert estimate.total == Decimal("254.60")


def test_estimate_for_hits_of_ten_or_more_pays_the_higher_fee():
    small = budget.estimate_mturk_cost(sessions=10, reward=Decimal("2.79"), assignments_per_hit=9, over_recruitment=Decimal("0"))
    large = budget.estimate_mturk_cost(sessions=10, reward=Decimal("2.79"), assignments_per_hit=10, over_recruitment=Decimal("0"))
    assert small.total == Decimal("33.50")
    assert large.total == Decimal("39.10")


def test_estimate_adds_bonuses_with_their_fee_for_passing_sessions_only():
    estimate = budget.estimate_mturk_cost(
        sessions=10, reward=Decimal("1.00"), assignments_per_hit=9, over_recruitment=Decimal("0.5"), bonus=Decimal("0.50")
    )
    assert estimate.total == 15 * Decimal("1.20") + 10 * Decimal("0.60")


def test_affordable_assignments_never_goes_negative():
    assert budget.affordable_assignments(Decimal("10.00"), Decimal("3.30"), Decimal("3.35")) == 2
    assert budget.affordable_assignments(Decimal("10.00"), Decimal("12.00"), Decimal("3.35")) == 0
