"""Headless Chromium runs one participant through a whole 2-AFC session against the live server.

Consent, instructions, a failed then a passed practice round, all 45 main trials (with a reload in
the middle that must resume at the first unanswered trial), the feedback text, and the completion
code; then what the database and the export hold. The correct answers come from the database
(SessionTrial.key): the page itself never knows them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from experiments.export.formats import csv_chunks
from experiments.export.responses import responses_table
from experiments.models import Event, Response, Session, SessionTrial, Study, Trial
from tests.builders import build_2afc_study
from tests.factories import StudyFactory

LOCK_MS = 100
# Keys of the six answer buttons, as the instructions tell the participant.
KEYS = {(0, 1): "1", (0, 2): "2", (0, 3): "3", (1, 1): "q", (1, 2): "w", (1, 3): "e"}


# Reports every feedback frame the page draws, however briefly, so the test need not race it.
FRAME_RECORDER = """
new MutationObserver(function (records) {
  records.forEach(function (r) {
    var el = r.target;
    if (!el.classList || !el.classList.contains('query')) return;
    ['feedback-correct', 'feedback-wrong'].forEach(function (cls) {
      if (el.classList.contains(cls)) {
        var screen = document.getElementById('screen-trial');
        window.recordFrame({index: +screen.dataset.index, choice: +el.dataset.choice, cls: cls});
      }
    });
  });
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['class']});
"""

READY = """() => {
  const p = window.psyplatform && window.psyplatform.state();
  if (!p) return null;
  if (p.screen === 'trial' && p.mode === 'ready') return p;
  if (['message', 'feedback', 'done', 'error'].includes(p.screen)) return p;
  return null;
}"""


def start_practice(page) -> None:
    """Turn the instructions' pages and start the practice (the study's countdown, if any, is over)."""
    page.locator("#screen-instructions").wait_for(state="visible")
    while page.locator("#instructions-next").is_visible():
        page.click("#instructions-next")
    page.click("#instructions-start")


def small_study(**params: Any) -> Study:
    """A 2-AFC study of 2 main trials and a catch trial, without waits, and the protocol's params."""
    return build_2afc_study(
        n_units=4, n_main_trials=2, n_catch_trials=1, lock_ms=LOCK_MS, feedback_delay_ms=0, feedback_ms=0,
        params=params,
    )


@contextmanager
def consented_page(chromium, live_server, study: Study, participant: str) -> Iterator[Any]:
    """A 1280x720 Chromium page of the study's participant link, past consent, on the instructions."""
    with chromium.new_context(viewport={"width": 1280, "height": 720}) as context:
        page = context.new_page()
        page.goto(f"{live_server.url}/s/{study.slug}/?participant={participant}")
        page.click("#consent-agree")
        yield page


def wait_ready(page) -> dict:
    """Wait until the page is on an answerable trial or on a screen between trials."""
    return page.wait_for_function(READY, timeout=10_000).json_value()


@pytest.mark.chromium
@pytest.mark.django_db(transaction=True)
def test_whole_session_in_browser(live_server, chromium):
    from playwright.sync_api import expect

    study = build_2afc_study(
        lock_ms=LOCK_MS,
        feedback_delay_ms=10,
        feedback_ms=10,
        min_instruction_s=0,
        min_total_s=0,
        params={"min_position_count": 1},
    )
    url = f"{live_server.url}/s/{study.slug}/?participant=browser-1"
    answered: dict[int, tuple[int, int]] = {}  # index -> (choice, confidence) as the page sent it
    lost: list[dict] = []  # the answers whose reply was lost, and their retries
    bad_requests: list[str] = []
    page_errors: list[str] = []

    frames: list[dict] = []
    with chromium.new_context(viewport={"width": 1280, "height": 720}) as context:
        context.expose_function("recordFrame", lambda frame: frames.append(frame))
        context.add_init_script(FRAME_RECORDER)
        page = context.new_page()
        # The reload mid-study is asked about first (the leave warning): the participant stays with it.
        page.on("dialog", lambda dialog: dialog.accept())
        page.on("pageerror", lambda e: page_errors.append(str(e)))
        page.on("requestfailed", lambda r: bad_requests.append(f"failed {r.method} {r.url} {r.failure}"))
        page.on(
            "response",
            lambda r: r.status >= 400 and bad_requests.append(f"{r.status} {r.request.method} {r.url}"),
        )

        def session() -> Session:
            return Session.objects.get(study=study)

        def answer(right: bool, confidence: int, by_key: bool) -> int:
            """Answer the trial on screen; returns its index."""
            index = int(page.locator("#screen-trial").get_attribute("data-index"))
            correct = SessionTrial.objects.get(session=session(), index=index).key["choice"]
            choice = correct if right else 1 - correct
            if by_key:
                page.keyboard.press(KEYS[(choice, confidence)])
            else:
                page.click(f".choice[data-choice='{choice}'][data-confidence='{confidence}']")
            answered[index] = (choice, confidence)
            expect(page.locator("#trial-continue")).to_be_visible()
            # The answer is sent: every button is locked until the next trial.
            assert page.locator(".choice:not([disabled])").count() == 0
            if by_key:
                page.keyboard.press("Enter" if index % 2 else "Space")
            else:
                page.click("#trial-continue")
            return index

        # Consent and instructions.
        page.goto(url)
        expect(page.locator("#screen-consent")).to_be_visible()
        page.click("#consent-agree")
        expect(page.locator("#screen-instructions")).to_be_visible()
        expect(page.locator("#screen-instructions")).to_contain_text("colour-blind")
        start_practice(page)

        # Practice round 1: the first answer is wrong, so the round repeats.
        for position in range(1, study.n_practice_trials + 1):
            assert wait_ready(page)["screen"] == "trial"
            expect(page.locator("#trial-progress")).to_have_text(
                f"Practice round 1: trial {position} of {study.n_practice_trials}"
            )
            answer(right=position != 1, confidence=position % 3 + 1, by_key=position % 2 == 0)
        assert wait_ready(page)["screen"] == "message"
        expect(page.locator("#message-title")).to_have_text("The practice round repeats")
        page.click("#message-continue")
        expect(page.locator("#screen-message")).to_be_hidden()

        # Practice round 2: all right.
        for position in range(1, study.n_practice_trials + 1):
            assert wait_ready(page)["screen"] == "trial"
            expect(page.locator("#trial-progress")).to_have_text(
                f"Practice round 2: trial {position} of {study.n_practice_trials}"
            )
            answer(right=True, confidence=3, by_key=position % 2 == 1)
        assert wait_ready(page)["screen"] == "message"
        expect(page.locator("#message-title")).to_have_text("Practice complete, the main block starts")
        page.keyboard.press("Enter")  # the focused button
        expect(page.locator("#screen-message")).to_be_hidden()

        # Main block, with one reload in the middle.
        n_main = study.trials_per_session
        # Two wrong answers, on the 7th and 30th main trials: a wrong catch trial would fail the session's catch
        # check, and where the catch trials fall is the session's random seed's.
        kinds = (
            SessionTrial.objects.filter(session=session(), phase=Session.Phase.MAIN)
            .order_by("index")
            .values_list("trial__kind", flat=True)
        )
        main_positions = [position for position, kind in enumerate(kinds, start=1) if kind != Trial.Kind.CATCH]
        wrong_positions = {main_positions[6], main_positions[29]}
        for position in range(1, n_main + 1):
            assert wait_ready(page)["screen"] == "trial"
            expect(page.locator("#trial-progress")).to_have_text(f"Trial {position} of {n_main}")
            # Nothing on the page tells a catch trial or the right answer.
            html = page.content().lower()
            assert not any(word in html for word in ("catch", "positive", "negative", "kind")), position
            if position == 1:
                check_layout(page)
            if position == 5:
                # The server stores this answer but its reply is lost: the page must retry with
                # the same client_id, and the server must not store it twice.
                lose_next_reply(page, lost)
            if position == 10:
                # Leaving the window and coming back is recorded for the checks.
                page.evaluate("window.dispatchEvent(new Event('blur'))")
                page.evaluate("window.dispatchEvent(new Event('focus'))")
                blur_index = int(page.locator("#screen-trial").get_attribute("data-index"))
            if position == 21:
                before = page.locator("#screen-trial").get_attribute("data-index")
                page.reload()
                assert wait_ready(page)["screen"] == "trial"
                expect(page.locator("#trial-progress")).to_have_text(f"Trial 21 of {n_main}")
                after = page.locator("#screen-trial").get_attribute("data-index")
                first_open = (
                    SessionTrial.objects.filter(session=session(), response__isnull=True)
                    .order_by("index")
                    .first()
                )
                assert before == after == str(first_open.index)
            answer(
                right=position not in wrong_positions,
                confidence=position % 3 + 1,
                by_key=position % 2 == 0,
            )

        # Feedback text and completion.
        assert wait_ready(page)["screen"] == "feedback"
        page.fill("#feedback-text", "The images were small but clear.")
        page.click("#feedback-submit")
        expect(page.locator("#completion-code")).to_have_text(re.compile(r"^[0-9A-F]{8}$"))
        code = page.locator("#completion-code").inner_text()
        assert code == session().completion_code != study.completion_code
        assert [r.split()[:2] for r in bad_requests] == [["failed", "POST"]], bad_requests
        bad_requests.clear()

        # Coming back after completing: refused a new session, shown the session's code again.
        page.reload()
        expect(page.locator("#completion-code")).to_have_text(code)
        assert [r.split()[0] for r in bad_requests] == ["409"]

    assert not page_errors, page_errors

    s = session()
    assert s.status == Session.Status.COMPLETED
    assert s.practice_attempts == 2
    assert s.feedback == "The images were small but clear."
    events = list(s.events.values_list("type", flat=True))
    for kind in (Event.Type.CONSENT, Event.Type.INSTRUCTIONS_START, Event.Type.INSTRUCTIONS_END):
        assert kind in events
    assert len(lost) == 2 and lost[0] == lost[1], lost
    assert Response.objects.filter(session=s, client_id=lost[0]["client_id"]).count() == 1

    focus_changes = list(s.events.filter(type__in=["blur", "focus"]).values_list("type", "payload"))
    assert [(t, p["screen"], p["index"]) for t, p in focus_changes] == [
        ("blur", "trial", blur_index),
        ("focus", "trial", blur_index),
    ]
    assert all("client_time" in p for _, p in focus_changes)

    # Every trial answered once, as the page sent it; no answer before the buttons unlocked.
    responses = list(Response.objects.filter(session=s).select_related("session_trial"))
    assert len(responses) == 2 * study.n_practice_trials + n_main
    assert {r.session_trial.index for r in responses} == set(answered)
    for r in responses:
        assert (r.answer["choice"], r.answer["confidence"]) == answered[r.session_trial.index]
        assert r.correct == (r.answer["choice"] == r.session_trial.key["choice"])
        assert r.rt_ms >= LOCK_MS
    assert sum(not r.correct for r in responses) == 1 + len(wrong_positions)

    # The page framed the chosen query in the colour of the server's verdict, once per answer.
    by_index = {r.session_trial.index: r for r in responses}
    assert sorted(f["index"] for f in frames) == sorted(by_index)
    for f in frames:
        r = by_index[f["index"]]
        assert f["choice"] == r.answer["choice"]
        assert f["cls"] == ("feedback-correct" if r.correct else "feedback-wrong")

    check_export(s, responses)


@pytest.mark.chromium
@pytest.mark.django_db(transaction=True)
def test_without_main_feedback_only_practice_answers_are_framed(live_server, chromium):
    from playwright.sync_api import expect

    study = build_2afc_study(
        main_feedback=False, n_main_trials=3, n_catch_trials=1, lock_ms=LOCK_MS, feedback_delay_ms=10,
        feedback_ms=10,
    )
    page_errors: list[str] = []
    frames: list[dict] = []
    with chromium.new_context(viewport={"width": 1280, "height": 720}) as context:
        context.expose_function("recordFrame", lambda frame: frames.append(frame))
        context.add_init_script(FRAME_RECORDER)
        page = context.new_page()
        page.on("pageerror", lambda e: page_errors.append(str(e)))
        page.goto(f"{live_server.url}/s/{study.slug}/?participant=browser-unjudged")
        page.click("#consent-agree")
        expect(page.locator("#screen-instructions")).to_contain_text("In the main block you are not told")
        start_practice(page)

        def answer_right() -> None:
            assert wait_ready(page)["screen"] == "trial"
            index = int(page.locator("#screen-trial").get_attribute("data-index"))
            right = SessionTrial.objects.get(session__study=study, index=index).key["choice"]
            page.click(f".choice[data-choice='{right}'][data-confidence='3']")
            page.click("#trial-continue")

        for _ in range(study.n_practice_trials):
            answer_right()
        assert wait_ready(page)["screen"] == "message"
        expect(page.locator("#message-text")).to_contain_text("without feedback")
        page.click("#message-continue")
        expect(page.locator("#screen-message")).to_be_hidden()
        for _ in range(study.trials_per_session):
            answer_right()
        assert wait_ready(page)["screen"] == "feedback"

    assert not page_errors, page_errors
    practice = SessionTrial.objects.filter(session__study=study, phase="practice")
    assert sorted(f["index"] for f in frames) == sorted(practice.values_list("index", flat=True))
    assert {f["cls"] for f in frames} == {"feedback-correct"}


def lose_next_reply(page, lost: list[dict]) -> None:
    """Let the next answer reach the server, drop the reply, and record what the page resends."""
    pattern = "**/api/v1/sessions/*/responses"

    def handle(route):
        lost.append(route.request.post_data_json)
        if len(lost) == 1:
            route.fetch()  # the server stores the answer...
            route.abort("connectionreset")  # ...and the browser never hears back
        else:
            page.unroute(pattern)
            route.continue_()

    page.route(pattern, handle)


def check_layout(page) -> None:
    """The trial screen fits 1280x720 without scrolling, with square images."""
    shot = os.getenv("PARTICIPANT_SCREENSHOT")
    if shot:
        page.screenshot(path=shot)
    size = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.scrollHeight,"
        " innerWidth, innerHeight]"
    )
    assert size[0] <= size[2] and size[1] <= size[3], size
    for selector in ("#trial-display .block-min img", "#trial-display .block-max img", "#trial-display .query-image"):
        for box in page.locator(selector).evaluate_all(
            "els => els.map(e => [e.getBoundingClientRect().width, e.getBoundingClientRect().height])"
        ):
            assert box[0] > 60 and abs(box[0] - box[1]) < 1, (selector, box)
    # The six buttons show their keys.
    assert page.locator(".choice kbd").all_inner_texts() == ["1", "2", "3", "Q", "W", "E"]


def check_export(session: Session, responses: list[Response]) -> None:
    """The export has one row per response, as the participant gave it, under a pseudonym."""
    study = session.study
    rows = list(responses_table([study]).records())
    assert len(rows) == len(responses)
    by_index = {r.session_trial.index: r for r in responses}
    for row in rows:
        r = by_index[row["trial_index"]]
        assert row["study"] == study.slug
        assert row["session"] == session.pseudonym != session.participant_id
        assert (row["choice"], row["correct"], row["confidence"], row["rt_ms"]) == (
            r.answer["choice"], r.correct, r.answer["confidence"], r.rt_ms
        )
        assert row["phase"] == r.session_trial.phase
        assert row["trial_kind"] == r.session_trial.trial.kind
        assert row["session_passed"] is True
        assert row["check_practice_attempts_value"] == 2
    kinds = [row["trial_kind"] for row in rows if row["phase"] == "main"]
    assert kinds.count("catch") == study.n_catch_trials
    assert kinds.count("main") == study.n_main_trials
    assert [row["attempt"] for row in rows if row["phase"] == "practice"] == [1] * 5 + [2] * 5
    text = b"".join(csv_chunks(responses_table([study]))).decode()
    assert session.participant_id not in text
    assert text.count("\n") == len(rows) + 1


class FakeApi:
    """Stands in for the participant API (page.route), to check what the page sends and how it
    hands the work back to each recruiter, without any recruiter's side effects."""

    SESSION = {
        "id": 7,
        "token": "tok",
        "study": "",
        "protocol": "2afc",
        "stage": "feedback",
        "phase": "main",
        "practice_attempts": 1,
        "trials_per_session": 45,
        "n_practice_trials": 5,
        "prompt": "Which image at the center matches the right examples better?",
        "min_instruction_s": 0,
        "timing": {"lock_ms": 0, "feedback_delay_ms": 0, "feedback_ms": 0},
    }

    def __init__(self, page, hand_back: dict) -> None:
        self.calls: list[tuple[str, str, dict | None, str | None]] = []
        self.hand_back = hand_back
        page.route("**/api/v1/**", self.handle)

    def handle(self, route) -> None:
        request = route.request
        path = request.url.split("/api/v1", 1)[1]
        self.calls.append((request.method, path, request.post_data_json, request.headers.get("authorization")))
        if path == "/sessions":
            route.fulfill(status=201, json=self.SESSION)
        elif path == "/sessions/7/complete":
            route.fulfill(status=200, json={"completed": True, **self.hand_back})
        else:
            route.fulfill(status=201, json={})


@pytest.mark.chromium
@pytest.mark.django_db(transaction=True)
def test_recruiter_arrivals_and_hand_backs(live_server, chromium):
    from playwright.sync_api import expect

    page_url = f"{live_server.url}/s/{StudyFactory(slug='handback').slug}/"
    # MTurk preview: the task is described, no session is started.
    page = chromium.new_page()
    api = FakeApi(page, {})
    page.goto(page_url + "?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=3HIT"
              "&turkSubmitTo=https%3A%2F%2Fworkersandbox.mturk.com")
    expect(page.locator("#screen-preview")).to_be_visible()
    expect(page.locator("#screen-preview")).to_contain_text("colour-blind")
    assert api.calls == []

    # No participant parameters at all: a readable message, no session.
    page.goto(page_url)
    expect(page.locator("#error-message")).to_contain_text("link is incomplete")
    assert api.calls == []
    page.close()

    # MTurk: the arrival carries MTurk's ids; completion posts the assignment to MTurk.
    page = chromium.new_page()
    api = FakeApi(page, {
        "submit_url": "https://workersandbox.mturk.com/mturk/externalSubmit",
        "fields": {"assignmentId": "3ASSIGN"},
    })
    submitted = []
    page.route("https://workersandbox.mturk.com/**", lambda route: (
        submitted.append((route.request.method, route.request.url, route.request.post_data)),
        route.fulfill(status=200, body="<p>submitted</p>", content_type="text/html"),
    ))
    page.goto(page_url + "?assignmentId=3ASSIGN&hitId=3HIT&workerId=AWORKER"
              "&turkSubmitTo=https%3A%2F%2Fworkersandbox.mturk.com")
    expect(page.locator("#screen-feedback")).to_be_visible()
    page.fill("#feedback-text", "fine")
    page.click("#feedback-submit")
    page.wait_for_url("https://workersandbox.mturk.com/**")
    assert submitted == [
        ("POST", "https://workersandbox.mturk.com/mturk/externalSubmit", "assignmentId=3ASSIGN")
    ]
    assert api.calls == [
        ("POST", "/sessions", {
            "study": "handback", "source": "mturk", "assignment_id": "3ASSIGN", "hit_id": "3HIT",
            "worker_id": "AWORKER", "turk_submit_to": "https://workersandbox.mturk.com",
        }, None),
        ("POST", "/sessions/7/complete", {"feedback": "fine"}, "Bearer tok"),
    ]
    page.close()

    # Prolific: the arrival carries Prolific's ids; completion shows the code and redirects.
    page = chromium.new_page()
    redirect = "https://app.prolific.com/submissions/complete?cc=C0DE"
    api = FakeApi(page, {"completion_code": "C0DE", "redirect_url": redirect})
    page.route("https://app.prolific.com/**", lambda route: route.fulfill(
        status=200, body="<p>back on Prolific</p>", content_type="text/html"
    ))
    page.goto(page_url + "?PROLIFIC_PID=PID1&STUDY_ID=SID1&SESSION_ID=SES1")
    page.click("#feedback-submit")
    expect(page.locator("#completion-code")).to_have_text("C0DE")
    expect(page.locator("#done-link")).to_have_attribute("href", redirect)
    page.wait_for_url(redirect, timeout=10_000)
    assert api.calls == [
        ("POST", "/sessions", {
            "study": "handback", "source": "prolific", "prolific_pid": "PID1",
            "study_id": "SID1", "session_id": "SES1",
        }, None),
        ("POST", "/sessions/7/complete", {"feedback": ""}, "Bearer tok"),
    ]


@pytest.mark.chromium
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("references, grid", [(1, (1, 1)), (4, (2, 2)), (12, (4, 3))])
def test_the_screen_lays_out_the_studys_number_of_references(live_server, chromium, references, grid):
    from playwright.sync_api import expect

    study = small_study(references_per_side=references)
    with consented_page(chromium, live_server, study, f"grid-{references}") as page:
        start_practice(page)
        assert wait_ready(page)["screen"] == "trial"
        columns, rows = grid
        for block in ("#trial-display .block-min", "#trial-display .block-max"):
            boxes = page.locator(f"{block} img").evaluate_all(
                "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.width]; })"
            )
            assert len(boxes) == references
            assert len({round(left) for left, _, _ in boxes}) == columns
            assert len({round(top) for _, top, _ in boxes}) == rows
            assert all(width > 60 for _, _, width in boxes)
        size = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        assert size[0] <= 1280 and size[1] <= 720, size
        index = int(page.locator("#screen-trial").get_attribute("data-index"))
        correct = SessionTrial.objects.get(session__study=study, index=index).key["choice"]
        page.click(f".choice[data-choice='{correct}'][data-confidence='3']")
        expect(page.locator("#trial-continue")).to_be_visible()
    assert Response.objects.get(session__study=study).correct is True
