"""Headless Chromium on localizability's screen: a click on a known image pixel is stored as that pixel
whatever the device pixel ratio, the page zoom, the query's scaling, the scrolling or an enclosing
frame; and a whole session (consent, practice with a miss then all hits, trials, catch trials,
completion) with the export it leaves. Which pixel hits comes from the kept map in the database: the
page never knows it."""

from __future__ import annotations

import re

import numpy as np
import pytest

from experiments.export.responses import columns, responses_table
from experiments.models import Response, Session, SessionTrial
from stimuli.kept_maps import kept_maps
from tests.builders import render_localizability_study
from tests.test_participant_browser import start_practice, wait_ready

# Image pixels to click, near the corners and inside: a wrong scale or offset moves at least one.
TARGETS = [(3, 5), (200, 17), (111, 190), (220, 221)]


def click_pixel(page, frame, x: int, y: int, width: int, height: int) -> None:
    """Click the middle of image pixel (x, y) of the query, at the position Chromium renders it, scrolling
    the page first where that point is out of view."""
    image = frame.locator(".loc-query-image")
    for _ in range(5):
        box = image.bounding_box()  # main-viewport CSS pixels, frames included
        point = (box["x"] + (x + 0.5) / width * box["width"], box["y"] + (y + 0.5) / height * box["height"])
        below = point[1] - (page.viewport_size["height"] - 20)
        if below <= 0:
            break
        image.evaluate("(img, by) => img.ownerDocument.defaultView.scrollBy(0, by)", below + 100)
    page.mouse.click(*point)


def through_to_first_trial(frame) -> None:
    frame.locator("#consent-agree").click()
    start_practice(frame)
    frame.wait_for_function("() => window.psyplatform.state().mode === 'ready'", timeout=15_000)


# (name, context options, what to do to the page before clicking)
CONFIGURATIONS = [
    ("dpr 1", {"viewport": {"width": 1280, "height": 900}, "device_scale_factor": 1}, None),
    ("dpr 2", {"viewport": {"width": 1280, "height": 900}, "device_scale_factor": 2}, None),
    # Browser zoom at 150% is a device pixel ratio 1.5 times larger and a CSS viewport 1.5 times smaller.
    ("browser zoom 150%", {"viewport": {"width": 853, "height": 600}, "device_scale_factor": 1.5}, None),
    # CSS zoom on the whole page (the query then takes 960 CSS px: the viewport is tall enough to show it).
    ("css zoom 150%", {"viewport": {"width": 1800, "height": 1900}}, "document.documentElement.style.zoom = '1.5'"),
    # The query (224 px) drawn at 160 CSS px, and the page scrolled.
    ("scaled down and scrolled", {"viewport": {"width": 480, "height": 380}}, "window.scrollBy(0, 120)"),
    ("in a frame", {"viewport": {"width": 1280, "height": 900}, "device_scale_factor": 2}, None),
]


@pytest.mark.chromium
@pytest.mark.django_db(transaction=True)
def test_a_click_is_stored_as_the_image_pixel_under_it(live_server, chromium, tiny_model):
    # Stimuli go to the run's own media folder (tests/services.py), which the live server serves.
    # Windows down to 480 x 380 are part of what is tested, so the study's minimum window lets them in.
    study = render_localizability_study(
        tiny_model, image_size=224, resize_to=256, lock_ms=50, feedback_delay_ms=10, feedback_ms=10,
        min_window_width=400, min_window_height=300,
    )
    stored: dict[str, list[tuple[int, int]]] = {}
    for number, (name, options, prepare) in enumerate(CONFIGURATIONS):
        stored[name] = []
        for target_number, (x, y) in enumerate(TARGETS):
            context = chromium.new_context(**options)
            page = context.new_page()
            participant = f"pixel-{number}-{target_number}"
            url = f"{live_server.url}/s/{study.slug}/?participant={participant}"
            if name == "in a frame":
                host = f"{live_server.url}/host-frame"
                # Served from the platform's own origin, as MTurk's frame is an allowed ancestor.
                page.route(host, lambda route, _request, u=url: route.fulfill(
                    content_type="text/html",
                    body=f'<body style="margin:37px 0 0 61px"><iframe src="{u}" width="1100" height="820"></iframe>',
                ))
                page.goto(host)
                frame = page.frame_locator("iframe")
                through_to_first_trial(page.frames[1])
            else:
                page.goto(url)
                frame = page
                through_to_first_trial(page)
            if prepare:
                page.evaluate(prepare)
            css = page.frames[-1].locator(".loc-query-image").bounding_box()
            if name == "scaled down and scrolled":
                assert css["width"] < 224 and page.evaluate("window.scrollY") > 0
            click_pixel(page, frame, x, y, 224, 224)
            page.frames[-1].wait_for_function("() => window.psyplatform.state().mode !== 'ready'")
            session = Session.objects.get(study=study, participant_id=participant)
            response = None
            for _ in range(100):
                response = Response.objects.filter(session=session).first()
                if response:
                    break
                page.wait_for_timeout(50)
            [[got_x, got_y]] = response.answer["clicks"]
            stored[name].append((got_x, got_y))
            context.close()
    for name, clicks in stored.items():
        for (x, y), (got_x, got_y) in zip(TARGETS, clicks, strict=True):
            assert abs(got_x - x) <= 1 and abs(got_y - y) <= 1, (name, (x, y), (got_x, got_y))


def peak(values: np.ndarray) -> tuple[int, int]:
    y, x = np.unravel_index(np.argmax(values), values.shape)
    return int(x), int(y)


def trough(values: np.ndarray) -> tuple[int, int]:
    y, x = np.unravel_index(np.argmin(values), values.shape)
    return int(x), int(y)


@pytest.mark.chromium
@pytest.mark.django_db(transaction=True)
def test_whole_localizability_session_in_browser(live_server, chromium, tiny_model):
    from playwright.sync_api import expect

    study = render_localizability_study(
        tiny_model, lock_ms=100, feedback_delay_ms=10, feedback_ms=30, min_instruction_s=0, min_total_s=0,
        params={"min_catch_correct": 2},
    )
    page_errors: list[str] = []
    context = chromium.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    revealed: list[int] = []

    def session() -> Session:
        return Session.objects.get(study=study)

    def answer(hit: bool, by_key: bool) -> None:
        index = int(page.locator("#screen-trial").get_attribute("data-index"))
        key = SessionTrial.objects.get(session=session(), index=index).key
        values = kept_maps([key["map"]])[key["map"]]
        x, y = peak(values) if hit else trough(values)
        # Nothing on the page before the answer shows the query's heat map or the trial's kind.
        html = page.content().lower()
        assert "catch" not in html and page.locator(".loc-query .loc-overlay").count() == 0
        if by_key:
            page.focus(".loc-query")
            page.keyboard.press("ArrowLeft")  # shows the cross-hair at the centre, one step left
            aim = [32 - 3, 32]
            for axis, target, keys in ((0, x, ("ArrowLeft", "ArrowRight")), (1, y, ("ArrowUp", "ArrowDown"))):
                while aim[axis] != target:
                    page.keyboard.press(("Shift+" + keys[1]) if target > aim[axis] else ("Shift+" + keys[0]))
                    aim[axis] += 1 if target > aim[axis] else -1
            page.keyboard.press("Enter")
        else:
            click_pixel(page, page, x, y, 64, 64)
        expect(page.locator("#trial-continue")).to_be_visible()
        if page.locator(".loc-query.revealed .loc-overlay").count():
            revealed.append(index)
        page.click("#trial-continue")
        expect(page.locator("#trial-continue")).to_be_hidden()

    page.goto(f"{live_server.url}/s/{study.slug}/?participant=whole-1")
    page.click("#consent-agree")
    expect(page.locator("#screen-instructions")).to_contain_text("click where you expect the highlighted feature")
    start_practice(page)

    for position in range(study.n_practice_trials):
        assert wait_ready(page)["screen"] == "trial"
        answer(hit=position != 0, by_key=False)
    assert wait_ready(page)["screen"] == "message"
    expect(page.locator("#message-title")).to_have_text("The practice round repeats")
    page.click("#message-continue")
    expect(page.locator("#screen-message")).to_be_hidden()
    for position in range(study.n_practice_trials):
        assert wait_ready(page)["screen"] == "trial"
        answer(hit=True, by_key=position == 1)
    assert wait_ready(page)["screen"] == "message"
    expect(page.locator("#message-title")).to_have_text("Practice complete, the main block starts")
    page.click("#message-continue")
    expect(page.locator("#screen-message")).to_be_hidden()
    for position in range(study.trials_per_session):
        assert wait_ready(page)["screen"] == "trial"
        answer(hit=True, by_key=position == 2)
    assert wait_ready(page)["screen"] == "feedback"
    page.click("#feedback-submit")
    expect(page.locator("#completion-code")).to_have_text(re.compile(r"^[0-9A-F]{8}$"))
    context.close()

    assert not page_errors, page_errors
    s = session()
    assert s.status == Session.Status.COMPLETED and s.practice_attempts == 2 and s.passed is True
    responses = list(Response.objects.filter(session=s).select_related("session_trial__trial"))
    assert len(responses) == 2 * study.n_practice_trials + study.trials_per_session
    assert sum(r.correct is False for r in responses) == 1
    assert sum(r.session_trial.trial.kind == "catch" and r.correct for r in responses) == 2
    # Every answer's feedback showed the query's own heat map.
    assert sorted(revealed) == sorted(r.session_trial.index for r in responses)
    names = [name for name, _ in columns([study])]
    rows = [dict(zip(names, row, strict=True)) for row in responses_table([study]).rows]
    assert {row["trial_kind"] for row in rows} == {"practice", "main", "catch"}
    assert all(row["image_width"] == 64 and row["query_box"] and row["window_width"] for row in rows)
