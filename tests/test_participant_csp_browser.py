"""Headless Chromium under the participant page's Content-Security-Policy: the page, a trial and the MTurk
preview run without a single violation, and the policy does refuse what it is there to refuse."""

from __future__ import annotations

import pytest

from tests.builders import build_2afc_study
from tests.test_participant_browser import start_practice, wait_ready
from tests.test_participant_page import PREVIEW

# Lists every violation the document meets, from before its first script on.
VIOLATION_RECORDER = """
window.cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


@pytest.fixture
def browser_page(live_server, chromium):
    """A Chromium page on the live server that records the CSP violations and console errors it meets."""
    with chromium.new_context(viewport={"width": 1280, "height": 720}) as context:
        page = context.new_page()
        page.console_errors = []
        context.add_init_script(VIOLATION_RECORDER)
        page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
        page.on("pageerror", lambda e: page.console_errors.append(str(e)))
        yield page


@pytest.mark.chromium
@pytest.mark.django_db(transaction=True)
def test_a_session_through_its_first_trials_meets_no_policy_violation(browser_page, live_server):
    page = browser_page
    study = build_2afc_study(lock_ms=50, feedback_delay_ms=0, feedback_ms=0, min_instruction_s=0)
    response = page.goto(f"{live_server.url}/s/{study.slug}/?participant=csp-1")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.click("#consent-agree")
    start_practice(page)
    for _ in range(2):
        assert wait_ready(page)["screen"] == "trial"
        assert page.locator("img.query-image").evaluate_all("imgs => imgs.every(i => i.naturalWidth > 0)")
        page.click(".choice[data-choice='0'][data-confidence='3']")
        page.click("#trial-continue")
    assert page.evaluate("window.cspViolations") == [] and page.console_errors == []


@pytest.mark.chromium
@pytest.mark.django_db(transaction=True)
def test_the_mturk_preview_lays_out_its_sample_without_an_inline_style(browser_page, live_server):
    page = browser_page
    study = build_2afc_study(recruiter="mturk", params={"references_per_side": 4})
    page.goto(f"{live_server.url}/s/{study.slug}/{PREVIEW}")
    page.wait_for_selector("#screen-preview:not([hidden])")
    columns = page.eval_on_selector(".stage.sample", "s => getComputedStyle(s).getPropertyValue('--cols')")
    assert columns.strip() == "2"
    page.wait_for_function("() => Array.from(document.querySelectorAll('.sample img')).every(i => i.complete)")
    assert page.locator(".sample img").evaluate_all("imgs => imgs.every(i => i.naturalWidth > 0)")
    assert page.evaluate("window.cspViolations") == [] and page.console_errors == []


@pytest.mark.chromium
@pytest.mark.django_db(transaction=True)
def test_the_participant_page_refuses_an_injected_inline_script(browser_page, live_server):
    page = browser_page
    study = build_2afc_study()
    page.goto(f"{live_server.url}/s/{study.slug}/?participant=csp-2")
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.injected = true';"
        " document.head.appendChild(s); }"
    )
    violations = page.wait_for_function("() => window.cspViolations.length && window.cspViolations").json_value()
    assert violations == ["script-src-elem inline"]
    assert page.evaluate("window.injected") is None
