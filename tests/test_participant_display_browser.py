"""What the shell does around the trials, in headless Chromium against the live server: the device and
window checks before consent, the display geometry each answer carries, the preload and its retries,
the instructions' countdown, the feedback after a wrong answer, and declining."""

from __future__ import annotations

import re
from typing import Any

import pytest

from experiments.export.responses import responses_table
from experiments.models import Event, Response, Session, SessionTrial, Study
from experiments.selectors import image_urls
from tests.builders import build_2afc_study
from tests.test_participant_browser import start_practice, wait_ready

pytestmark = [pytest.mark.chromium, pytest.mark.django_db(transaction=True)]

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
}

# Counts the animation frames in which the trial screen shows neither images, nor the progress bar, nor a
# message: a blank stage.
BLANK_FRAMES = """
window.blankFrames = 0;
(function sample() {
  var app = document.getElementById('app');
  var display = document.getElementById('trial-display');
  if (app && display && app.dataset.screen === 'trial' && display.classList.contains('loading')
      && document.getElementById('trial-preload').hidden && document.getElementById('trial-image-error').hidden) {
    window.blankFrames += 1;
  }
  requestAnimationFrame(sample);
})();
"""


def small_study(**fields: Any) -> Study:
    defaults: dict[str, Any] = {
        "n_units": 4, "n_main_trials": 2, "n_catch_trials": 1, "lock_ms": 100, "feedback_delay_ms": 0,
        "feedback_ms": 10, "min_instruction_s": 0,
    }
    return build_2afc_study(**{**defaults, **fields})


def link(live_server, study: Study, participant: str) -> str:
    return f"{live_server.url}/s/{study.slug}/?participant={participant}"


def consented(chromium, live_server, study: Study, participant: str):
    """A 1280x720 page whose participant has just agreed: the instructions are on screen."""
    page = chromium.new_page(viewport={"width": 1280, "height": 720})
    page.goto(link(live_server, study, participant))
    page.click("#consent-agree")
    page.locator("#screen-instructions").wait_for()
    return page


def current_index(page) -> int:
    return int(page.locator("#screen-trial").get_attribute("data-index"))


def first_trial_urls(study: Study) -> list[str]:
    """The first practice trial's image URLs, as the page requests them (planned at consent)."""
    first = SessionTrial.objects.filter(session__study=study).order_by("index").first()
    protocol = study.protocol_plugin
    return list(image_urls(protocol.image_ids(first.layout)).values())


def test_a_phone_is_refused_before_consent_without_a_session(live_server, chromium):
    from playwright.sync_api import expect

    study = small_study()
    page = chromium.new_context(**PHONE).new_page()
    page.goto(link(live_server, study, "phone-1"))
    expect(page.locator("#screen-device")).to_be_visible()
    expect(page.locator("#screen-device")).to_contain_text("open the same link on a computer")
    expect(page.locator("#screen-consent")).to_be_hidden()
    assert not Session.objects.filter(study=study).exists()


def test_a_small_window_is_asked_to_grow_and_goes_on_once_it_has(live_server, chromium):
    from playwright.sync_api import expect

    study = small_study(min_window_width=940, min_window_height=600)
    page = chromium.new_page(viewport={"width": 800, "height": 560})
    page.goto(link(live_server, study, "small-1"))
    expect(page.locator("#screen-window")).to_be_visible()
    expect(page.locator("#window-size")).to_have_text("800 \u00d7 560 pixels")
    assert not Session.objects.filter(study=study).exists()
    page.set_viewport_size({"width": 1000, "height": 580})
    expect(page.locator("#window-size")).to_have_text("1000 \u00d7 580 pixels")
    page.set_viewport_size({"width": 1000, "height": 650})
    expect(page.locator("#screen-consent")).to_be_visible()
    assert Session.objects.filter(study=study).count() == 1


def test_the_answer_carries_the_geometry_of_a_1440x900_window_at_twice_the_pixels(live_server, chromium):
    from playwright.sync_api import expect

    study = small_study()
    page = chromium.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=2).new_page()
    page.goto(link(live_server, study, "retina-1"))
    page.click("#consent-agree")
    start_practice(page)
    assert wait_ready(page)["screen"] == "trial"
    shown = page.locator("#trial-display img").evaluate_all(
        "els => els.map(e => [Math.round(e.getBoundingClientRect().width * 10) / 10, e.naturalWidth])"
    )
    index = current_index(page)
    page.click(".choice[data-choice='0'][data-confidence='2']")
    expect(page.locator("#trial-continue")).to_be_visible()

    geometry = Response.objects.get(session__study=study, session_trial__index=index).geometry
    assert (geometry["window_width"], geometry["window_height"]) == (1440, 900)
    assert (geometry["screen_width"], geometry["screen_height"]) == (1440, 900)
    assert geometry["device_pixel_ratio"] == 2
    assert "Chrome" in geometry["user_agent"]
    assert geometry["fullscreen"] is False
    assert [[width, natural] for width, _, natural, _ in geometry["images"]] == shown
    sides = [width for width, _ in shown]
    assert geometry["image_css_px_min"] == min(sides) and geometry["image_css_px_max"] == max(sides)
    assert geometry["image_device_px_min"] == pytest.approx(2 * min(sides), abs=0.11)
    assert geometry["image_device_px_max"] == pytest.approx(2 * max(sides), abs=0.11)


def test_the_first_trial_appears_after_the_preload_without_a_blank_stage(live_server, chromium):
    study = small_study()
    context = chromium.new_context(viewport={"width": 1280, "height": 720})
    context.add_init_script(BLANK_FRAMES)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda r: r.resource_type == "image" and requested.append(r.url.split("//", 1)[1].split("/", 1)[1]))
    page.goto(link(live_server, study, "preload-1"))
    page.click("#consent-agree")
    start_practice(page)
    assert wait_ready(page)["screen"] == "trial"
    assert page.evaluate("window.blankFrames") == 0
    assert page.locator("#trial-preload-bar").evaluate("bar => bar.value") == 1
    # The whole practice round was loaded before its first trial appeared.
    session = Session.objects.get(study=study)
    practice = SessionTrial.objects.filter(session=session, phase="practice")
    protocol = study.protocol_plugin
    ids = [image_id for layout in practice.values_list("layout", flat=True) for image_id in protocol.image_ids(layout)]
    round_urls = image_urls(ids)
    assert {url.lstrip("/") for url in round_urls.values()} <= set(requested)


def test_an_image_that_fails_once_is_retried_and_the_trial_goes_on(live_server, chromium):
    study = small_study()
    page = consented(chromium, live_server, study, "retry-1")
    target = first_trial_urls(study)[0]
    attempts: list[str] = []

    def flaky(route):
        attempts.append(route.request.url)
        if len(attempts) == 1:
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(f"**{target}", flaky)
    start_practice(page)
    assert wait_ready(page)["screen"] == "trial"
    assert len(attempts) >= 2
    assert page.locator("#trial-image-error").is_hidden()


def test_an_image_failing_after_the_retries_is_reported_on_the_trial_screen(live_server, chromium):
    from playwright.sync_api import expect

    study = small_study()
    page = consented(chromium, live_server, study, "broken-1")
    target = first_trial_urls(study)[0]
    page.route(f"**{target}", lambda route: route.abort("connectionreset"))
    start_practice(page)
    expect(page.locator("#trial-image-error")).to_be_visible(timeout=15_000)
    expect(page.locator("#trial-image-error")).to_contain_text("could not be loaded")
    assert page.evaluate("window.psyplatform.state().screen") == "trial"
    # The connection is back: trying again shows the trial; the instructions are never shown twice.
    page.unroute(f"**{target}")
    page.click("#trial-image-retry")
    assert wait_ready(page)["screen"] == "trial"
    session = Session.objects.get(study=study)
    assert session.events.filter(type=Event.Type.INSTRUCTIONS_END).count() == 1


def test_the_countdown_holds_the_start_button_for_the_minimum_instruction_time(live_server, chromium):
    from playwright.sync_api import expect

    study = small_study(min_instruction_s=3, enforce_instruction_time=True)
    page = chromium.new_page(viewport={"width": 1280, "height": 720})
    page.goto(link(live_server, study, "reader-1"))
    page.click("#consent-agree")
    page.click("#instructions-next")
    start = page.locator("#instructions-start")
    expect(start).to_be_disabled()
    expect(start).to_have_text(re.compile(r"^Start the practice \([123] s\)$"))
    page.wait_for_timeout(1500)
    expect(start).to_be_disabled()
    expect(start).to_be_enabled(timeout=5000)
    expect(start).to_have_text("Start the practice")
    start.click()
    assert wait_ready(page)["screen"] == "trial"
    events = Session.objects.get(study=study).events
    start_at = events.get(type=Event.Type.INSTRUCTIONS_START).created_at
    end_at = events.get(type=Event.Type.INSTRUCTIONS_END).created_at
    assert (end_at - start_at).total_seconds() >= 3


def test_after_a_wrong_answer_the_chosen_and_the_right_query_are_marked(live_server, chromium):
    from playwright.sync_api import expect

    study = small_study(feedback_ms=50)
    page = consented(chromium, live_server, study, "wrong-1")
    start_practice(page)
    assert wait_ready(page)["screen"] == "trial"
    # The page knows nothing of the answer before it is given.
    assert page.locator("#trial-display .feedback-label").count() == 0
    right = SessionTrial.objects.get(session__study=study, index=current_index(page)).key["choice"]
    page.click(f".choice[data-choice='{1 - right}'][data-confidence='3']")
    expect(page.locator("#trial-continue")).to_be_visible()
    chosen = page.locator(f"#trial-display .query[data-choice='{1 - right}']")
    other = page.locator(f"#trial-display .query[data-choice='{right}']")
    expect(chosen).to_have_class("query feedback-wrong")
    expect(other).to_have_class("query feedback-right-answer")
    expect(chosen.locator(".feedback-label")).to_have_text("\u2717 Wrong: your answer")
    expect(other.locator(".feedback-label")).to_have_text("\u2713 The right answer")
    # Not colour alone: the wrong frame's line is dashed, the right one's solid.
    styles = [q.locator(".query-image").evaluate("e => getComputedStyle(e).outlineStyle") for q in (chosen, other)]
    assert styles == ["dashed", "solid"]


def test_the_practice_message_says_how_many_answers_were_wrong(live_server, chromium):
    from playwright.sync_api import expect

    study = small_study()
    page = consented(chromium, live_server, study, "repeat-1")
    start_practice(page)
    for position in range(study.n_practice_trials):
        assert wait_ready(page)["screen"] == "trial"
        right = SessionTrial.objects.get(session__study=study, index=current_index(page)).key["choice"]
        choice = 1 - right if position < 2 else right
        page.click(f".choice[data-choice='{choice}'][data-confidence='3']")
        page.click("#trial-continue")
    assert wait_ready(page)["screen"] == "message"
    expect(page.locator("#message-text")).to_contain_text(f"2 of the {study.n_practice_trials} answers in this round were wrong")


def test_declining_ends_without_a_session(live_server, chromium):
    from playwright.sync_api import expect

    study = small_study(researcher="Dr. Ada Example", institution="Example University", contact="ada@example.org",
                        ethics_approval="Example IRB 2026-17", pay="$2.50")
    page = chromium.new_page(viewport={"width": 1280, "height": 720})
    page.goto(link(live_server, study, "decliner-1"))
    consent = page.locator("#screen-consent")
    expect(consent).to_be_visible()  # shown once the session has started
    for fact in ("Dr. Ada Example, Example University", "ada@example.org", "Example IRB 2026-17", "$2.50", "minutes"):
        expect(consent).to_contain_text(fact)
    assert Session.objects.filter(study=study).count() == 1
    page.click("#consent-decline")
    expect(page.locator("#screen-declined")).to_be_visible()
    assert not Session.objects.filter(study=study).exists()
    assert not Event.objects.filter(session__study=study).exists()


def calibrated_page(chromium, live_server, study: Study, participant: str, viewport: dict | None = None):
    """A page past consent and a size calibration matched at 317 CSS pixels (the outline starts at 324, the
    nominal CSS pixel's card: seven presses of the left arrow), on the instructions."""
    from playwright.sync_api import expect

    page = chromium.new_page(viewport=viewport or {"width": 1280, "height": 720})
    page.goto(link(live_server, study, participant))
    page.click("#consent-agree")
    card = page.locator("#calibration-card")
    expect(card).to_be_visible()
    assert card.evaluate("e => e.getBoundingClientRect().width") == 324
    for _ in range(7):
        page.keyboard.press("ArrowLeft")
    assert card.evaluate("e => e.getBoundingClientRect().width") == 317
    page.click("#calibration-confirm")
    page.locator("#screen-instructions").wait_for()
    return page


def test_the_card_outline_follows_the_slider_and_the_arrow_keys(live_server, chromium):
    from playwright.sync_api import expect

    study = small_study(calibrate_size=True)
    page = chromium.new_page(viewport={"width": 1280, "height": 720})
    page.goto(link(live_server, study, "card-1"))
    page.click("#consent-agree")
    card = page.locator("#calibration-card")
    expect(card).to_be_visible()
    page.locator("#calibration-slider").fill("300")
    assert card.evaluate("e => [e.getBoundingClientRect().width, e.getBoundingClientRect().height]") == [
        300, pytest.approx(300 * 53.98 / 85.6, abs=1 / 32)  # layout rounds to 1/64 px
    ]
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("ArrowUp")
    assert page.locator("#calibration-slider").input_value() == "311"
    assert card.evaluate("e => e.getBoundingClientRect().width") == 311


def test_a_calibrated_study_shows_its_images_at_the_set_millimetres(live_server, chromium):
    from playwright.sync_api import expect

    study = small_study(calibrate_size=True, image_size_mm=30)
    page = calibrated_page(chromium, live_server, study, "mm-1")
    session = Session.objects.get(study=study)
    assert session.px_per_mm == round(317 / 85.6, 4)
    start_practice(page)
    assert wait_ready(page)["screen"] == "trial"
    widths = page.locator("#trial-display .grid img").evaluate_all("els => els.map(e => e.getBoundingClientRect().width)")
    assert len(widths) == 18
    assert all(width == pytest.approx(30 * session.px_per_mm, abs=1) for width in widths)

    index = current_index(page)
    page.keyboard.press("1")
    expect(page.locator("#trial-continue")).to_be_visible()
    geometry = Response.objects.get(session=session, session_trial__index=index).geometry
    assert geometry["px_per_mm"] == session.px_per_mm
    row = next(responses_table([study]).records())
    assert row["px_per_mm"] == session.px_per_mm


def test_images_too_large_for_the_window_ask_for_a_larger_one(live_server, chromium):
    from playwright.sync_api import expect

    study = small_study(calibrate_size=True, image_size_mm=60)
    page = calibrated_page(chromium, live_server, study, "large-1")
    start_practice(page)
    message = page.locator("#screen-window")
    expect(message).to_be_visible()
    expect(page.locator("#window-images")).to_contain_text("60 mm")
    page.keyboard.press("1")
    page.set_viewport_size({"width": 1920, "height": 1080})
    expect(message).to_be_hidden()
    assert wait_ready(page)["screen"] == "trial"
    assert not Response.objects.filter(session__study=study).exists()
    pause = Event.objects.get(session__study=study, type=Event.Type.WINDOW_PAUSE)
    assert pause.payload["reason"] == "image_size"


def test_a_window_shrunk_mid_trial_pauses_the_trial_until_it_is_restored(live_server, chromium):
    from playwright.sync_api import expect

    study = small_study(lock_ms=1500, min_window_width=940, min_window_height=600)
    page = consented(chromium, live_server, study, "shrink-1")
    start_practice(page)
    assert wait_ready(page)["screen"] == "trial"
    index = current_index(page)
    button = page.locator(".choice[data-choice='0'][data-confidence='2']")

    def click_where_the_button_is() -> None:
        box = button.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    page.set_viewport_size({"width": 900, "height": 560})
    expect(page.locator("#screen-window")).to_be_visible()
    expect(page.locator("#window-paused")).to_be_visible()
    page.keyboard.press("1")
    click_where_the_button_is()
    page.wait_for_timeout(300)
    assert page.evaluate("window.psyplatform.state().mode") == "ready"
    assert not Response.objects.filter(session__study=study).exists()

    page.set_viewport_size({"width": 1280, "height": 720})
    expect(page.locator("#screen-window")).to_be_hidden()
    restored = page.evaluate("performance.now()")
    # The lock starts again: the live buttons and the keys do nothing until it is over.
    assert page.evaluate("window.psyplatform.state().mode") == "locked"
    click_where_the_button_is()
    page.keyboard.press("q")
    wait_ready(page)
    assert page.evaluate("performance.now()") - restored >= 1400
    assert not Response.objects.filter(session__study=study).exists()
    click_where_the_button_is()
    expect(page.locator("#trial-continue")).to_be_visible()
    answer = Response.objects.get(session__study=study)
    assert (answer.session_trial.index, answer.answer["choice"], answer.answer["confidence"]) == (index, 0, 2)
    events = {e.type: e.payload for e in Event.objects.filter(session__study=study, type__startswith="window_")}
    assert events["window_pause"]["index"] == events["window_resume"]["index"] == index
    assert events["window_pause"]["reason"] == "min_window"
    assert (events["window_pause"]["window_width"], events["window_pause"]["window_height"]) == (900, 560)
    assert events["window_resume"]["paused_ms"] >= 300
