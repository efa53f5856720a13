"""Attacks an untrusted visitor can try on the participant API, and what stops each one.

Holding places, taking over sessions, making up links, answering faster than the lock, and a
bot's timing. The per-address limits are lifted for the rest of the suite (tests/conftest.py);
here they are set as in production.
"""

from __future__ import annotations

import html
import io
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from experiments.checks import timing_checks
from experiments.export.responses import responses_table
from experiments.links import participant_url, signature
from experiments.models import Response, Session, SessionTrial, SessionUnit, StartRefusal
from tests.builders import build_2afc_study
from tests.conftest import Participant
from tests.recruitment_factories import HITFactory, LaunchedRecruitmentFactory, MTurkWorker

pytestmark = pytest.mark.django_db


@pytest.fixture
def production_limits(settings):
    settings.RATE_LIMIT_STARTS = "20/hour"
    settings.RATE_LIMIT_EVENTS = "120/minute"
    settings.MAX_ACTIVE_SESSIONS_PER_ADDRESS = 3


class From(Participant):
    """A participant whose requests come from a given client address."""

    def __init__(self, study, participant: str, address: str, **headers: str) -> None:
        super().__init__(study, participant)
        self.client = APIClient(REMOTE_ADDR=address, **headers)


# ---- holding places


def test_a_burst_of_made_up_starts_leaves_a_real_participant_able_to_take_part(production_limits):
    study = build_2afc_study(n_units=44, target_per_unit=1)
    statuses = [From(study, f"fake-{n}", "203.0.113.9").start().status_code for n in range(30)]
    assert statuses.count(201) == 3 and set(statuses[3:]) == {429}
    assert not SessionUnit.objects.exists()  # starting holds nothing
    real = From(study, "real", "198.51.100.4")
    assert real.start().status_code == 201
    assert real.event("consent").status_code == 201
    assert real.session.slots.count() == 40


def test_a_refused_start_reads_well_and_is_counted_for_the_admin(production_limits):
    study = build_2afc_study(n_units=44)
    for n in range(4):
        response = From(study, f"p{n}", "203.0.113.9").start()
    assert response.status_code == 429
    assert "Too many sessions are open from your network" in response.json()["error"]
    assert StartRefusal.objects.get(study=study).count == 1


def test_starts_from_one_address_are_rate_limited(production_limits, settings):
    settings.MAX_ACTIVE_SESSIONS_PER_ADDRESS = 1000
    study = build_2afc_study(n_units=44)
    statuses = [From(study, f"p{n}", "203.0.113.9").start().status_code for n in range(21)]
    assert statuses[:20] == [201] * 20 and statuses[20] == 429
    assert "try again in" in From(study, "p99", "203.0.113.9").start().json()["error"]


def test_events_from_one_address_are_rate_limited(production_limits, settings):
    settings.RATE_LIMIT_EVENTS = "5/minute"
    participant = From(build_2afc_study(n_units=44), "p1", "203.0.113.9")
    participant.start()
    statuses = [participant.event("blur").status_code for _ in range(6)]
    assert statuses == [201] * 5 + [429]


def test_a_lab_sharing_one_address_is_not_limited_with_signed_links(production_limits):
    study = build_2afc_study(n_units=44, accepts_unsigned_links=False)
    for n in range(25):
        participant = From(study, f"lab-{n}", "192.0.2.1")
        response = participant.start(sig=signature(study, f"lab-{n}"))
        assert response.status_code == 201, response.json()
    assert Session.objects.filter(signed_link=True).count() == 25


def test_a_forwarded_address_is_believed_only_from_a_trusted_proxy(production_limits, settings):
    study = build_2afc_study(n_units=44)
    # Spoofed headers from an untrusted peer change nothing: the peer's address is counted.
    spoofed = [
        From(study, f"s{n}", "203.0.113.9", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").start().status_code
        for n in range(4)
    ]
    assert spoofed == [201, 201, 201, 429]
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    behind_proxy = [
        From(study, f"b{n}", "127.0.0.1", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").start().status_code
        for n in range(4)
    ]
    assert behind_proxy == [201] * 4


def test_a_session_that_lapsed_no_longer_counts_toward_its_address(production_limits):
    study = build_2afc_study(n_units=44, consent_timeout_minutes=10)
    for n in range(3):
        From(study, f"p{n}", "203.0.113.9").start()
    Session.objects.update(created_at=timezone.now() - timedelta(minutes=11))
    assert From(study, "p3", "203.0.113.9").start().status_code == 201


# ---- taking over sessions


def mturk_study_with_hit():
    recruitment = LaunchedRecruitmentFactory(
        study=build_2afc_study(n_units=44, recruiter="mturk", n_main_trials=4, n_catch_trials=1)
    )
    return recruitment, HITFactory(recruitment=recruitment).hit_id


def test_a_worker_id_with_another_assignment_gets_no_session_back(mturk):
    recruitment, hit_id = mturk_study_with_hit()
    victim = MTurkWorker(recruitment.study, 1, hit_id=hit_id)
    assert victim.start().status_code == 201
    thief = MTurkWorker(recruitment.study, 1, hit_id=hit_id)
    thief.assignment_id = "3OTHERASSIGNMENT00000000000001"
    response = thief.start()
    assert response.status_code == 409 and "token" not in response.json()
    assert "another assignment" in response.json()["error"]


def test_the_same_assignment_resumes_the_session(mturk):
    recruitment, hit_id = mturk_study_with_hit()
    first = MTurkWorker(recruitment.study, 1, hit_id=hit_id).start().json()
    again = MTurkWorker(recruitment.study, 1, hit_id=hit_id).start()
    assert again.status_code == 200 and again.json()["id"] == first["id"]


def test_a_prolific_participant_resumes_only_with_their_session_id():
    recruitment = LaunchedRecruitmentFactory(
        study=build_2afc_study(n_units=44, recruiter="prolific"), prolific_study_id="S1"
    )
    arrival = {"source": "prolific", "prolific_pid": "PID1", "study_id": "S1", "session_id": "SES1"}
    first = Participant(recruitment.study, "PID1")
    assert first.start(**arrival).status_code == 201
    response = Participant(recruitment.study, "PID1").start(**{**arrival, "session_id": "SES2"})
    assert response.status_code == 409 and "token" not in response.json()


def test_a_prolific_arrival_for_another_study_id_is_refused():
    recruitment = LaunchedRecruitmentFactory(
        study=build_2afc_study(n_units=44, recruiter="prolific"), prolific_study_id="S1"
    )
    body = {"source": "prolific", "prolific_pid": "PID1", "study_id": "S2", "session_id": "SES1"}
    response = Participant(recruitment.study, "PID1").start(**body)
    assert response.status_code == 403 and "another Prolific study" in response.json()["error"]


# ---- local links


def test_an_unsigned_link_cannot_start_a_study_that_wants_signed_ones():
    study = build_2afc_study(n_units=44, accepts_unsigned_links=False)
    response = Participant(study, "made-up").start()
    assert response.status_code == 403 and "exact link" in response.json()["error"]
    assert not Session.objects.exists()
    assert StartRefusal.objects.get(study=study, reason="unsigned").count == 1


def test_a_signature_for_another_participant_is_refused():
    study = build_2afc_study(n_units=44, accepts_unsigned_links=False)
    response = Participant(study, "mallory").start(sig=signature(study, "alice"))
    assert response.status_code == 403 and "signature is not valid" in response.json()["error"]


def test_the_participant_link_command_prints_a_link_the_study_accepts(settings):
    settings.PUBLIC_BASE_URL = "https://study.example.org"
    study = build_2afc_study(n_units=44, accepts_unsigned_links=False)
    out = io.StringIO()
    call_command("participant_link", study.slug, "P001", stdout=out)
    link = urlparse(out.getvalue().strip())
    assert (link.scheme, link.netloc, link.path) == ("https", "study.example.org", f"/s/{study.slug}/")
    query = {name: values[0] for name, values in parse_qs(link.query).items()}
    assert Participant(study, query["participant"]).start(sig=query["sig"]).status_code == 201


def test_the_admin_makes_signed_links(admin_client):
    study = build_2afc_study(n_units=44, accepts_unsigned_links=False)
    page = admin_client.post(f"/admin/experiments/study/{study.pk}/links/", {"participants": "P001\nP002\n"})
    assert page.status_code == 200
    assert html.escape(participant_url(study, "P002")) in page.content.decode()


def test_each_local_session_gets_its_own_completion_code_that_the_admin_finds(admin_client):
    study = build_2afc_study(n_units=44)
    codes = []
    for name in ("p1", "p2"):
        participant = Participant(study, name)
        participant.start()
        participant.through_instructions()
        participant.pass_practice()
        participant.answer_all()
        codes.append(participant.complete().json()["completion_code"])
    assert len(set(codes)) == 2 and study.completion_code not in codes
    found = admin_client.get("/admin/experiments/session/", {"q": codes[1]})
    assert found.context["cl"].result_count == 1


# ---- timing


def test_an_answer_sooner_than_the_lock_after_the_trial_was_served_is_refused():
    study = build_2afc_study(n_units=44, lock_ms=1500)
    participant = Participant(study, "fast")
    participant.start()
    participant.through_instructions()
    index = participant.trial().json()["index"]
    response = participant.answer(index, participant.correct_choice(index))
    assert response.status_code == 409 and "answers open after 1500 ms" in response.json()["error"]
    assert not Response.objects.exists()
    SessionTrial.objects.filter(index=index).update(served_at=timezone.now() - timedelta(seconds=2))
    assert participant.answer(index, participant.correct_choice(index)).status_code == 201
    assert Response.objects.get().server_ms >= 2000


def test_a_fetch_before_consent_is_refused_and_marks_no_trial_served(participant):
    assert SessionTrial.objects.filter(session_id=participant.id).exists()  # its practice round is planned
    response = participant.trial()
    assert response.status_code == 409 and "consent" in response.json()["error"]
    assert not SessionTrial.objects.filter(session_id=participant.id, served_at__isnull=False).exists()


def test_an_answer_to_a_trial_never_fetched_is_refused(participant):
    participant.through_instructions()
    index = SessionTrial.objects.filter(session_id=participant.id).order_by("index").first().index
    response = participant.answer(index, 0)
    assert response.status_code == 409 and "fetch it first" in response.json()["error"]


def test_the_export_carries_the_servers_interval_beside_the_browsers(participant):
    participant.through_instructions()
    participant.answer_current()
    row = next(responses_table([participant.study]).records())
    assert row["rt_ms"] == 900 and row["server_ms"] is not None


def honest_intervals(n: int = 45) -> list[int]:
    # People take 2 to 6 s, unevenly.
    return [2100 + (number * 977) % 4000 for number in range(n)]


def test_answers_fired_as_the_lock_ends_fail_the_timing_check():
    study = build_2afc_study(n_units=44, lock_ms=1500, max_lock_boundary_share=0.8)
    at_the_lock = [1500 + (number * 37) % 200 + 5 * (number % 7) for number in range(45)]
    checks = {check.name: check for check in timing_checks(study, at_the_lock)}
    assert not checks["lock_boundary"].passed and checks["lock_boundary"].value == 1.0


def test_a_metronome_fails_the_regularity_check():
    study = build_2afc_study(n_units=44, lock_ms=1500, min_timing_variation=0.15)
    every_three_seconds = [3000 + number % 40 for number in range(45)]
    checks = {check.name: check for check in timing_checks(study, every_three_seconds)}
    assert not checks["timing_regularity"].passed and checks["lock_boundary"].passed


def test_honest_timing_passes_both_timing_checks():
    study = build_2afc_study(n_units=44, lock_ms=1500, max_lock_boundary_share=0.8, min_timing_variation=0.15)
    assert all(check.passed for check in timing_checks(study, honest_intervals()))


def test_a_slow_bot_with_the_key_fails_the_checks_through_the_api():
    """The bot of the finding: 16 s on the instructions, 3 s a trial, every answer right."""
    study = build_2afc_study(n_units=44, lock_ms=1500, max_lock_boundary_share=0.8, min_timing_variation=0.15,
                             min_instruction_s=15, min_total_s=0)
    bot = Participant(study, "bot")
    bot.start()
    bot.through_instructions()
    while not (trial := bot.trial().json())["done"]:
        # The server's clock: as if each trial had been served three seconds before the answer.
        SessionTrial.objects.filter(session_id=bot.id, index=trial["index"]).update(
            served_at=timezone.now() - timedelta(milliseconds=3000)
        )
        bot.answer(trial["index"], bot.correct_choice(trial["index"]))
    bot.complete()
    checks = {check.name: check for check in bot.session.checks.all()}
    assert not checks["timing_regularity"].passed and bot.session.passed is False


# ---- MTurk live: the assignment is confirmed before units are held


def live_mturk_study():
    recruitment = LaunchedRecruitmentFactory(
        sandbox=False, study=build_2afc_study(n_units=44, recruiter="mturk", n_main_trials=4, n_catch_trials=1)
    )
    return recruitment, HITFactory(recruitment=recruitment, sandbox=False).hit_id


def live_worker(study, number: int, hit_id: str) -> Participant:
    worker = Participant(study, f"AWORKER{number}")
    worker.start(source="mturk", assignment_id=f"3ASG{number:026d}", hit_id=hit_id, worker_id=f"AWORKER{number}",
                 turk_submit_to="https://www.mturk.com")
    return worker


def test_live_a_worker_mturk_shows_in_progress_holds_units_at_consent(mturk):
    recruitment, hit_id = live_mturk_study()
    worker = live_worker(recruitment.study, 1, hit_id)
    mturk.add_response("get_hit", {"HIT": {"HITId": hit_id, "NumberOfAssignmentsPending": 1}}, {"HITId": hit_id})
    assert worker.event("consent").status_code == 201
    assert worker.session.slots.count() == 4
    assert mturk.endpoints == [False]


def test_live_a_made_up_assignment_beyond_those_in_progress_holds_nothing(mturk):
    recruitment, hit_id = live_mturk_study()
    real, fake = live_worker(recruitment.study, 1, hit_id), live_worker(recruitment.study, 2, hit_id)
    for _ in range(2):
        mturk.add_response("get_hit", {"HIT": {"HITId": hit_id, "NumberOfAssignmentsPending": 1}}, {"HITId": hit_id})
    assert real.event("consent").status_code == 201
    response = fake.event("consent")
    assert response.status_code == 403 and "not show this assignment as accepted" in response.json()["error"]
    assert not fake.session.slots.exists() and fake.session.status == Session.Status.ABANDONED


def test_the_admin_shows_held_lapsed_and_refused_starts(admin_client, production_limits):
    study = build_2afc_study(n_units=44, accepts_unsigned_links=False)
    holder = Participant(study, "holder")
    holder.start(sig=signature(study, "holder"))
    holder.event("consent")
    Participant(study, "forger").start()
    page = admin_client.get(f"/admin/experiments/study/{study.pk}/change/").content.decode()
    assert "1 sessions hold 40 unit places" in page
    assert "local link without a valid signature: 1" in page

