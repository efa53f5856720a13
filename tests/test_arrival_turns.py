"""Arrivals take turns: while a server process serves ARRIVALS_AT_ONCE starts or consents, another gets a
503 with Retry-After and nothing done, and the page waits its turn and goes on by itself."""

from __future__ import annotations

import threading

import pytest

from experiments.admission import ARRIVALS
from experiments.models import Event, Session
from tests.builders import build_2afc_study
from tests.conftest import Participant

pytestmark = pytest.mark.django_db


@pytest.fixture
def one_at_a_time(settings):
    settings.ARRIVALS_AT_ONCE = 1


def test_a_start_while_another_is_served_waits_its_turn_and_starts_nothing(one_at_a_time):
    participant = Participant(build_2afc_study(n_units=44), "p1")
    with ARRIVALS.turn():
        response = participant.start()
    assert response.status_code == 503 and response["Retry-After"] == "1"
    assert "starting this study right now" in response.json()["error"]
    assert not Session.objects.exists()
    assert participant.start().status_code == 201


def test_a_consent_while_another_is_served_holds_nothing_until_its_turn(one_at_a_time):
    participant = Participant(build_2afc_study(n_units=44), "p1")
    participant.start()
    with ARRIVALS.turn():
        response = participant.event("consent")
    assert response.status_code == 503 and response["Retry-After"] == "1"
    assert participant.session.consented_at is None and not participant.session.slots.exists()
    assert participant.event("consent").status_code == 201
    assert participant.session.slots.count() == 40


def test_other_events_and_trials_do_not_wait_for_arrivals(one_at_a_time):
    participant = Participant(build_2afc_study(n_units=44), "p1")
    participant.start()
    participant.event("consent")
    with ARRIVALS.turn():
        assert participant.event("instructions_start").status_code == 201
        assert participant.trial().status_code == 200
        assert participant.event("consent").status_code == 201  # a replayed consent is an ordinary event


def test_no_limit_lets_every_arrival_in_at_once(settings):
    settings.ARRIVALS_AT_ONCE = 0
    study = build_2afc_study(n_units=44)
    with ARRIVALS.turn():
        assert Participant(study, "p1").start().status_code == 201


def test_a_turn_ends_when_its_arrival_is_refused(one_at_a_time):
    study = build_2afc_study(n_units=44)
    unknown = Participant(study, "p1")
    unknown.study = build_2afc_study(n_units=4, slug="closed-one", status="closed")
    assert unknown.start().status_code == 404  # refused inside its turn
    assert Participant(study, "p2").start().status_code == 201


def test_a_rate_limited_reply_says_when_to_come_back(settings):
    settings.RATE_LIMIT_EVENTS = "1/minute"
    participant = Participant(build_2afc_study(n_units=44), "p1")
    participant.start()
    participant.event("blur")
    response = participant.event("blur")
    assert response.status_code == 429 and 0 < int(response["Retry-After"]) <= 60


@pytest.mark.chromium
@pytest.mark.django_db(transaction=True)
def test_the_page_waits_its_turn_to_start_and_to_consent(live_server, chromium, settings):
    settings.ARRIVALS_AT_ONCE = 1
    study = build_2afc_study(n_units=44)
    held, release = threading.Event(), threading.Event()

    def another_arrival() -> None:
        with ARRIVALS.turn():
            held.set()
            release.wait(10)

    def hold_for(seconds: float) -> None:
        held.clear()
        release.clear()
        threading.Thread(target=another_arrival, daemon=True).start()
        held.wait(5)
        threading.Timer(seconds, release.set).start()

    with chromium.new_context() as context:
        page = context.new_page()
        statuses: list[tuple[str, int]] = []
        page.on("response", lambda r: statuses.append((r.request.method, r.status)) if "/api/v1/" in r.url else None)
        hold_for(1.5)
        page.goto(f"{live_server.url}/s/{study.slug}/?participant=waits-1")
        page.locator("#consent-agree").wait_for(state="visible", timeout=15_000)
        hold_for(1.5)
        page.click("#consent-agree")
        page.locator("#screen-instructions").wait_for(state="visible", timeout=15_000)
        assert page.locator("#screen-error").is_hidden()
    session = Session.objects.get(participant_id="waits-1")
    assert Event.objects.filter(session=session, type=Event.Type.CONSENT).count() == 1
    assert session.slots.count() == 40
    assert statuses.count(("POST", 503)) >= 2  # turned away at the start and at the consent, it came back
