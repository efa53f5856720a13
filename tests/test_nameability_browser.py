"""Headless Chromium through both nameability stages: typing names (the word limit, a paste flagged, practice
feedback), then picking the named image in the verify study built from them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from experiments.derivation import build_derived_study
from experiments.models import Response, Session, SessionTrial, Study
from tests.nameability import answered_describe_study, rendered_describe_study
from tests.test_participant_browser import start_practice, wait_ready

pytestmark = [pytest.mark.chromium, pytest.mark.django_db(transaction=True)]
TIMING = {"lock_ms": 50, "feedback_delay_ms": 0, "feedback_ms": 0}


@contextmanager
def browse(chromium, errors: list[str]) -> Iterator[Any]:
    """A 1280x720 page that lists its errors in `errors`."""
    with chromium.new_context(viewport={"width": 1280, "height": 720}) as context:
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        yield page


def planned(study: Study, page) -> SessionTrial:
    index = int(page.locator("#screen-trial").get_attribute("data-index"))
    return SessionTrial.objects.select_related("trial").get(session__study=study, index=index)


def next_screen(page) -> None:
    page.click("#trial-continue")
    if wait_ready(page)["screen"] == "message":
        page.click("#message-continue")
        page.wait_for_function("() => window.psyplatform.state().screen !== 'message'")


def test_names_are_typed_limited_judged_and_a_paste_flagged(tiny_model, live_server, chromium):
    from playwright.sync_api import expect

    study = rendered_describe_study(tiny_model, **TIMING)
    errors: list[str] = []
    with browse(chromium, errors) as page:
        page.goto(f"{live_server.url}/s/{study.slug}/?participant=browser-namer")
        expect(page.locator("#screen-consent")).to_contain_text("name, in a few words")
        page.click("#consent-agree")
        expect(page.locator("#screen-instructions")).to_contain_text("1 to 6 words")
        start_practice(page)

        # Practice: the word limit holds Submit back, saying why; a name close to the label passes.
        for _ in range(study.n_practice_trials):
            wait_ready(page)
            expect(page.locator("#trial-prompt")).to_have_text("Name what these images have in common")
            expect(page.locator(".nm-grid img")).to_have_count(4)
            box, submit = page.locator(".nm-name"), page.locator(".nm-submit")
            expect(submit).to_be_disabled()
            box.press_sequentially("one two three four five six seven")
            expect(page.locator(".nm-hint")).to_have_text("Please use 1 to 6 words (now 7).")
            expect(submit).to_be_disabled()
            box.press("Enter")  # refused in the browser: nothing is sent
            box.fill("")
            label = planned(study, page).key["label"]
            box.press_sequentially(f"a {label}")
            expect(submit).to_be_enabled()
            box.press("Enter")
            # The first name waits for the web process to finish loading the embedding model.
            expect(page.locator(".nm-feedback")).to_have_text(
                f"Close: the expected name was \u201c{label}\u201d.", timeout=60_000
            )
            next_screen(page)

        # Main block: the first unit's name is pasted, the others typed (a catch set by its label). The check
        # counts units' names only, and the session's seed may put a catch set first.
        pasted_index = None
        while wait_ready(page)["screen"] == "trial":
            current = planned(study, page)
            box = page.locator(".nm-name")
            if pasted_index is None and "label" not in current.key:
                box.dispatch_event("paste")
                box.fill("shiny metal")
                pasted_index = current.index
            else:
                box.press_sequentially(current.key.get("label") or "soft fur")
            box.press("Enter")
            expect(page.locator(".nm-feedback")).to_have_text("Saved.")
            page.click("#trial-continue")
        expect(page.locator("#screen-feedback")).to_be_visible()
        page.click("#feedback-submit")
        expect(page.locator("#completion-code")).to_have_text(re.compile(r"^[0-9A-F]{8}$"))
    assert not errors, errors
    session = Session.objects.get(study=study)
    assert session.status == Session.Status.COMPLETED
    answers = {r.session_trial.index: r.answer for r in Response.objects.filter(session=session)}
    assert answers[pasted_index]["pasted"] is True and answers[pasted_index]["text"] == "shiny metal"
    typed = [a for index, a in answers.items() if index != pasted_index]
    assert all(not a["pasted"] and a["keystrokes"] >= len(a["text"]) and a["typing_ms"] > 0 for a in typed)
    assert all(a["words"] <= 6 for a in answers.values())
    assert session.checks.get(name="text_pasted").value == 1


def test_a_verifier_picks_the_named_image_in_the_browser(tiny_model, live_server, chromium):
    from playwright.sync_api import expect

    source = answered_describe_study(tiny_model, participants=2)
    study = build_derived_study(source)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.OPEN, params={"min_catch_correct": 1}, **TIMING)
    errors: list[str] = []
    with browse(chromium, errors) as page:
        page.goto(f"{live_server.url}/s/{study.slug}/?participant=browser-verifier")
        expect(page.locator("#screen-consent")).to_contain_text("pick the image each name describes")
        page.click("#consent-agree")
        start_practice(page)
        by_key = False
        while wait_ready(page)["screen"] == "trial":
            current = planned(study, page)
            expect(page.locator(".nm-named")).to_have_text(f"\u201c{current.key['name']}\u201d")
            expect(page.locator(".nm-candidate")).to_have_count(4)
            choice = current.key["choice"]
            if by_key:
                page.keyboard.press(str(choice + 1))
            else:
                page.click(f".nm-candidate[data-choice='{choice}']")
            by_key = not by_key
            expect(page.locator("#trial-continue")).to_be_visible()
            next_screen(page) if current.phase == "practice" else page.click("#trial-continue")
        expect(page.locator("#screen-feedback")).to_be_visible()
        page.click("#feedback-submit")
        expect(page.locator("#completion-code")).to_be_visible()
    assert not errors, errors
    session = Session.objects.get(study=study)
    assert session.status == Session.Status.COMPLETED and session.passed
    assert all(r.correct for r in Response.objects.filter(session=session))
