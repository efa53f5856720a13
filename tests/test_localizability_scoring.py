"""Localizability's scoring (docs/protocols.md §2) on synthetic maps whose mass is known."""

import numpy as np
import pytest

from protocols.localizability.scoring import (
    BEST,
    FIRST,
    MEAN,
    score_click,
    score_response,
    summarize,
    unit_score,
)


def block_map() -> np.ndarray:
    """A 10 x 10 map: a 2 x 2 block of 10s (mass 40), and 1s everywhere else (mass 96)."""
    values = np.ones((10, 10))
    values[2:4, 5:7] = 10
    return values


def test_the_top_region_is_the_smallest_set_holding_half_the_mass():
    values = np.zeros((10, 10))
    values[0, :4] = [8, 4, 2, 2]  # total 16: 8 alone is half
    summary = summarize(values)
    assert summary.threshold == 8 and summary.p0 == pytest.approx(0.01)


def test_the_region_grows_past_the_block_when_the_block_holds_less_than_half():
    # 40 of 136 is in the block; the rest of the half (28) needs 28 of the 1s, which all tie: the
    # region takes every tied pixel, so it is the whole image.
    summary = summarize(block_map())
    assert summary.threshold == 1 and summary.p0 == 1.0


def test_a_concentrated_map_has_a_small_region():
    values = np.zeros((20, 20))
    values[5:9, 10:14] = 1.0  # 16 equal pixels: half their mass needs 8, ties take all 16
    values[0, 0] = 0.5
    summary = summarize(values)
    assert summary.p0 == pytest.approx(16 / 400)
    assert score_click(summary, 11, 6).hit and not score_click(summary, 0, 0).hit


def test_negative_values_are_clipped_before_scoring():
    values = np.full((4, 4), -5.0)
    values[1, 2] = 3.0
    summary = summarize(values)
    assert summary.p0 == pytest.approx(1 / 16) and summary.mean == pytest.approx(3 / 16)


def test_the_graded_score_is_one_at_the_maximum_and_zero_at_the_mean():
    values = np.arange(16, dtype=float).reshape(4, 4)
    summary = summarize(values)
    assert score_click(summary, 3, 3).graded == pytest.approx(1.0)
    at_mean = score_click(summary, 0, 0).graded
    assert at_mean == pytest.approx((0 - 7.5) / (15 - 7.5))


def test_an_all_zero_map_is_not_scored():
    summary = summarize(np.zeros((8, 8)))
    result = score_response(summary, [[3, 3]], BEST)
    assert not summary.scored and result.hit is None and result.p0 is None and result.graded is None
    assert unit_score([result.hit], [result.chance], [result.graded]).localizability is None


def test_a_constant_map_has_no_graded_score_and_no_anchored_score():
    summary = summarize(np.full((6, 6), 2.0))
    result = score_response(summary, [[1, 1]], FIRST)
    assert result.hit == 1.0 and result.p0 == 1.0 and result.graded is None
    assert unit_score([result.hit], [result.chance], [result.graded]).localizability is None


def test_clicks_outside_the_image_are_refused():
    summary = summarize(np.ones((5, 7)))
    with pytest.raises(ValueError, match="outside"):
        score_click(summary, 7, 0)


def random_maps(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Smooth blobs of random place and width, upsampled from 7 x 7 as a CNN map would be."""
    maps = []
    ys, xs = np.mgrid[0:56, 0:56]
    for _ in range(n):
        cy, cx = rng.uniform(0, 56, size=2)
        width = rng.uniform(4, 16)
        maps.append(np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * width**2)) + rng.normal(0, 0.05, (56, 56)))
    return maps


def test_random_clicks_score_zero_on_the_anchored_scale():
    rng = np.random.default_rng(0)
    summaries = [summarize(m) for m in random_maps(rng, 200)]
    results = [
        score_response(s, [[int(rng.integers(56)), int(rng.integers(56))]], FIRST)
        for s in summaries
        for _ in range(25)
    ]
    score = unit_score([r.hit for r in results], [r.chance for r in results], [r.graded for r in results])
    assert abs(score.localizability) < 0.05


def test_random_best_of_three_clicks_score_zero_against_their_own_chance():
    rng = np.random.default_rng(1)
    summaries = [summarize(m) for m in random_maps(rng, 200)]
    results = [
        score_response(s, rng.integers(56, size=(3, 2)).tolist(), BEST) for s in summaries for _ in range(25)
    ]
    score = unit_score([r.hit for r in results], [r.chance for r in results], [r.graded for r in results])
    assert abs(score.localizability) < 0.05


def test_clicks_at_each_maps_maximum_score_one():
    rng = np.random.default_rng(2)
    results = []
    for values in random_maps(rng, 50):
        y, x = np.unravel_index(np.argmax(values), values.shape)
        results.append(score_response(summarize(values), [[int(x), int(y)]], FIRST))
    score = unit_score([r.hit for r in results], [r.chance for r in results], [r.graded for r in results])
    assert score.localizability == pytest.approx(1.0) and score.graded == pytest.approx(1.0)


def test_several_clicks_follow_the_studys_rule():
    values = np.zeros((10, 10))
    values[0, 0] = 1.0
    summary = summarize(values)
    clicks = [[5, 5], [0, 0], [9, 9]]
    assert score_response(summary, clicks, FIRST).hit == 0.0
    assert score_response(summary, clicks, BEST).hit == 1.0
    assert score_response(summary, clicks, MEAN).hit == pytest.approx(1 / 3)
    assert [c.hit for c in score_response(summary, clicks, MEAN).clicks] == [False, True, False]
    assert score_response(summary, clicks, BEST).chance == pytest.approx(1 - 0.99**3)
