"""Borowski et al.'s Experiment II designs in headless Chromium: Max-1 (one maximally activating
reference, no minimally activating block) and Min-Max-9 (both blocks of nine, as IMI).

The page lays out the blocks the study shows and nothing else, fits a 1280x720 window, and the
participant's answer is judged by the server as in any 2-AFC trial.
"""

from __future__ import annotations

import pytest

from experiments.models import Response, SessionTrial
from tests.test_participant_browser import consented_page, small_study, start_practice, wait_ready


def boxes(page, selector: str) -> list[list[float]]:
    return page.locator(selector).evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })"
    )


@pytest.mark.chromium
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "design, references, show_min", [("Max-1", 1, False), ("Min-Max-9", 9, True)], ids=["Max-1", "Min-Max-9"]
)
def test_an_experiment_two_design_shows_its_blocks(live_server, chromium, design, references, show_min):
    from playwright.sync_api import expect

    study = small_study(references_per_side=references, show_min_references=show_min)
    with consented_page(chromium, live_server, study, design) as page:
        instructions = page.locator("#screen-instructions").inner_text()
        assert ("minimally activating" in instructions) is show_min
        start_practice(page)
        assert wait_ready(page)["screen"] == "trial"

        assert page.locator("#screen-trial .block-min").count() == (1 if show_min else 0)
        assert len(boxes(page, "#screen-trial .block-min img")) == (references if show_min else 0)
        maxima, queries = boxes(page, "#screen-trial .block-max img"), boxes(page, "#screen-trial .query-image")
        assert len(maxima) == references and len(queries) == 2
        for _, _, width, height in maxima + queries + boxes(page, "#screen-trial .block-min img"):
            assert width > 60 and abs(width - height) < 1
        # The queries sit between the blocks, or left of the only one.
        assert max(left + width for left, _, width, _ in queries) < min(left for left, *_ in maxima)
        if show_min:
            assert max(left + width for left, _, width, _ in boxes(page, "#screen-trial .block-min img")) < queries[0][0]
        size = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        assert size[0] <= 1280 and size[1] <= 720, size

        index = int(page.locator("#screen-trial").get_attribute("data-index"))
        planned = SessionTrial.objects.get(session__study=study, index=index)
        assert len(planned.layout["min"]) == (references if show_min else 0)
        page.click(f".choice[data-choice='{planned.key['choice']}'][data-confidence='3']")
        expect(page.locator("#trial-continue")).to_be_visible()
    assert Response.objects.get(session__study=study).correct is True
