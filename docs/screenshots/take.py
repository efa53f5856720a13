"""Takes the README's screenshots at 1366x768 in headless Chromium against a live test server:

    .venv/bin/python -m pytest -p no:cacheprovider docs/screenshots/take.py

Not part of `make test`: it writes docs/screenshots/*.png and checks only that each screen is there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connections

from experiments.models import SessionTrial
from experiments.recruiters import recruiter_for
from tests.builders import build_2afc_study
from tests.conftest import CHROMIUM_ARGS
from tests.test_participant_browser import wait_ready

HERE = Path(__file__).parent
VIEWPORT = {"width": 1366, "height": 768}
PREVIEW = "?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=3HIT&turkSubmitTo=https%3A%2F%2Fworkersandbox.mturk.com"


@pytest.mark.chromium
@pytest.mark.django_db(transaction=True)
def test_take_the_screenshots(live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect, sync_playwright

    study = build_2afc_study(
        slug="imi-demo", name="IMI 2-AFC on EfficientNet-Lite0", lock_ms=300, feedback_delay_ms=0,
        feedback_ms=400, min_instruction_s=15, enforce_instruction_time=True, researcher="Dr. Ada Example",
        institution="Example University", contact="ada@example.org", ethics_approval="Example IRB 2026-17",
        pay="$2.79", recruiter="mturk",
    )
    recruiter_for("mturk").prepare(study)
    get_user_model().objects.create_superuser("shots", "shots@example.org", "shots-password")
    chromium = os.getenv("CHROMIUM_PATH", "/usr/bin/chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{live_server.url}/s/{study.slug}/{PREVIEW}")
        expect(page.locator("#screen-preview")).to_be_visible()
        page.screenshot(path=HERE / "mturk-preview.png", full_page=True)

        page.goto(f"{live_server.url}/s/{study.slug}/?assignmentId=3ASG&hitId=3HIT&workerId=ASHOTS"
                  "&turkSubmitTo=https%3A%2F%2Fworkersandbox.mturk.com")
        expect(page.locator("#screen-consent")).to_be_visible()
        page.screenshot(path=HERE / "consent.png")
        page.click("#consent-agree")
        page.click("#instructions-next")
        expect(page.locator("#instructions-start")).to_be_disabled()
        page.screenshot(path=HERE / "instructions.png")
        expect(page.locator("#instructions-start")).to_be_enabled(timeout=20_000)
        page.click("#instructions-start")
        assert wait_ready(page)["screen"] == "trial"
        index = int(page.locator("#screen-trial").get_attribute("data-index"))
        right = SessionTrial.objects.get(session__study=study, index=index).key["choice"]
        page.click(f".choice[data-choice='{1 - right}'][data-confidence='2']")
        expect(page.locator("#trial-continue")).to_be_visible()
        page.screenshot(path=HERE / "trial-after-a-wrong-answer.png")

        admin = browser.new_page(viewport=VIEWPORT)
        admin.goto(f"{live_server.url}/admin/login/")
        admin.fill("#id_username", "shots")
        admin.fill("#id_password", "shots-password")
        admin.click("input[type=submit]")
        admin.goto(f"{live_server.url}/admin/experiments/study/")
        admin.screenshot(path=HERE / "studies-list.png")
        admin.goto(f"{live_server.url}/admin/experiments/study/{study.pk}/change/")
        admin.screenshot(path=HERE / "study-page.png")
        browser.close()
    connections.close_all()
