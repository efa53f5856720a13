"""Prolific over its REST API v1, against recorded responses: study, pages of submissions, payments."""

from decimal import Decimal

import pytest
import responses
from django.utils import timezone
from responses import matchers

from experiments.models import SessionUnit
from experiments.recruiters import ArrivalRefused, recruiter_for
from recruitment import services
from recruitment.errors import RecruitmentError, ServiceRefused, TransientError
from recruitment.models import Payment, ProlificSubmission
from recruitment.prolific.client import ProlificClient
from tests.conftest import PUBLIC_BASE_URL
from tests.factories import StudyUnitFactory
from tests.recruitment_factories import LaunchedRecruitmentFactory, PaymentFactory, make_session

pytestmark = pytest.mark.django_db

API = "https://api.prolific.com/api/v1/"
TOKEN = "test-prolific-token"
AUTH = matchers.header_matcher({"Authorization": f"Token {TOKEN}"})


@pytest.fixture
def prolific(settings, public_https):
    settings.PROLIFIC_API_TOKEN = TOKEN
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def prolific_recruitment(**fields):
    fields.setdefault("study__recruiter", "prolific")
    return LaunchedRecruitmentFactory(**fields)


def submission(number: int, status: str = "AWAITING REVIEW") -> dict:
    # As recorded from GET /api/v1/submissions/?study=...
    return {
        "id": f"6650a1b2c3d4e5f6a7b8{number:04d}",
        "participant_id": f"5f0e1d2c3b4a59687766{number:04d}",
        "status": status,
        "started_at": "2026-11-20T10:15:02.311000Z",
        "completed_at": "2026-11-20T10:27:41.102000Z" if status != "ACTIVE" else None,
        "study_code": "C1A2B3C4",
    }


def page(results: list[dict], count: int, next_url: str | None) -> dict:
    return {
        "results": results,
        "_links": {
            "self": {"href": f"{API}submissions/", "title": "Current"},
            "next": {"href": next_url, "title": "Next"},
            "previous": {"href": None, "title": "Previous"},
            "last": {"href": None, "title": "Last"},
        },
        "meta": {"count": count},
    }


def expect_submissions(prolific, study_id: str, pages: list[list[dict]]) -> None:
    count = sum(len(p) for p in pages)
    for number, results in enumerate(pages, start=1):
        next_url = f"{API}submissions/?page={number + 1}&study={study_id}" if number < len(pages) else None
        query = {"study": study_id} if number == 1 else {"study": study_id, "page": str(number)}
        prolific.get(
            f"{API}submissions/",
            json=page(results, count, next_url),
            match=[AUTH, matchers.query_param_matcher(query)],
        )


def client() -> ProlificClient:
    return ProlificClient(TOKEN, API)


def test_submissions_are_read_page_by_page_following_next_links(prolific):
    everyone = [submission(n) for n in range(45)]
    expect_submissions(prolific, "S1", [everyone[:20], everyone[20:40], everyone[40:]])

    assert [s["id"] for s in client().submissions("S1")] == [s["id"] for s in everyone]


def test_the_walk_stops_at_the_count_even_if_a_next_link_is_offered(prolific):
    everyone = [submission(n) for n in range(20)]
    prolific.get(
        f"{API}submissions/",
        json=page(everyone, 20, f"{API}submissions/?page=2&study=S1"),
        match=[matchers.query_param_matcher({"study": "S1"})],
    )

    assert len(list(client().submissions("S1"))) == 20  # page 2 would be a 404: never asked for


def test_a_page_past_the_end_ends_the_walk(prolific):
    first = [submission(n) for n in range(20)]
    prolific.get(
        f"{API}submissions/",
        json=page(first, 40, f"{API}submissions/?page=2&study=S1"),
        match=[matchers.query_param_matcher({"study": "S1"})],
    )
    prolific.get(
        f"{API}submissions/",
        status=404,
        json={"error": {"status": 404, "error_code": 140100, "title": "Not found", "detail": "Invalid page."}},
        match=[matchers.query_param_matcher({"study": "S1", "page": "2"})],
    )

    assert len(list(client().submissions("S1"))) == 20


def test_a_404_on_the_first_page_is_an_error(prolific):
    prolific.get(f"{API}submissions/", status=404, json={"error": {"status": 404, "detail": "Not found."}})

    with pytest.raises(ServiceRefused, match="404"):
        list(client().submissions("NOPE"))


def test_throttling_and_server_errors_are_transient(prolific):
    prolific.get(f"{API}submissions/abc/", status=429)
    prolific.get(f"{API}submissions/def/", status=502)

    with pytest.raises(TransientError) as throttled:
        client().submission("abc")
    with pytest.raises(TransientError) as failed:
        client().submission("def")
    assert (throttled.value.maybe_processed, failed.value.maybe_processed) == (False, True)


def test_first_sync_creates_a_draft_with_codes_and_places_then_publishes(prolific):
    recruitment = prolific_recruitment(prolific_study_id="")
    linked = prolific_recruitment(group=recruitment.group, prolific_study_id="60aa00000000000000000001")
    study = recruitment.study
    created = {"id": "60bb00000000000000000002", "status": "UNPUBLISHED", "total_available_places": 12}
    prolific.post(
        f"{API}studies/",
        json=created,
        match=[
            AUTH,
            matchers.json_params_matcher(
                {
                    "name": recruitment.title,
                    "internal_name": study.slug,
                    "description": recruitment.description,
                    "external_study_url": f"{PUBLIC_BASE_URL}/s/{study.slug}/?PROLIFIC_PID={{{{%PROLIFIC_PID%}}}}"
                    "&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}",
                    "prolific_id_option": "url_parameters",
                    "completion_codes": [
                        {
                            "code": study.completion_code,
                            "code_type": "COMPLETED",
                            "actions": [{"action": "MANUALLY_REVIEW"}],
                        }
                    ],
                    "total_available_places": 12,
                    "estimated_completion_time": 11,
                    "reward": 279,
                    "device_compatibility": ["desktop"],
                    "filters": [
                        {"filter_id": "previous_studies_blocklist", "selected_values": [linked.prolific_study_id]}
                    ],
                }
            ),
        ],
    )
    expect_submissions(prolific, created["id"], [[]])
    prolific.post(
        f"{API}studies/{created['id']}/transition/",
        json={**created, "status": "ACTIVE"},
        match=[AUTH, matchers.json_params_matcher({"action": "PUBLISH"})],
    )

    services.sync(recruitment.pk)

    recruitment.refresh_from_db()
    assert (recruitment.prolific_study_id, recruitment.prolific_status, recruitment.prolific_places) == (
        created["id"], "ACTIVE", 12
    )


def test_sync_records_submissions_and_links_sessions(prolific):
    recruitment = prolific_recruitment(prolific_study_id="S1", prolific_status="ACTIVE", prolific_places=12)
    first = submission(1)
    session = make_session(recruitment, first["participant_id"], assignment_id=first["id"], passed=True)
    expect_submissions(prolific, "S1", [[first, submission(2, "RETURNED")]])

    services.sync(recruitment.pk)

    rows = {s.submission_id: s for s in ProlificSubmission.objects.all()}
    assert rows[first["id"]].session == session
    assert rows[first["id"]].status == "AWAITING REVIEW"
    assert rows[submission(2)["id"]].status == "RETURNED"


@pytest.mark.parametrize("status, ended", [("RETURNED", "returned"), ("TIMED-OUT", "abandoned")])
def test_a_submission_that_ended_unfinished_ends_its_session_and_reopens_its_units(prolific, status, ended):
    recruitment = prolific_recruitment(prolific_study_id="S1", prolific_status="ACTIVE", prolific_places=12)
    gone = submission(1, status)
    session = make_session(recruitment, gone["participant_id"], assignment_id=gone["id"], status="active")
    slot = SessionUnit.objects.create(session=session, study_unit=StudyUnitFactory(study=session.study), batch=0)
    expect_submissions(prolific, "S1", [[gone]])

    services.sync(recruitment.pk)

    session.refresh_from_db()
    slot.refresh_from_db()
    assert session.status == ended
    assert slot.released_at is not None


def test_paid_failing_sessions_get_extra_places(prolific):
    recruitment = prolific_recruitment(prolific_study_id="S1", prolific_status="ACTIVE", prolific_places=12)
    for number in range(3):
        make_session(recruitment, f"P{number}", assignment_id=f"SUB{number}", passed=False)
    expect_submissions(prolific, "S1", [[]])
    prolific.patch(
        f"{API}studies/S1/", json={"id": "S1"}, match=[matchers.json_params_matcher({"total_available_places": 15})]
    )

    services.sync(recruitment.pk)

    recruitment.refresh_from_db()
    assert recruitment.prolific_places == 15


def test_target_met_stops_the_study(prolific):
    recruitment = prolific_recruitment(prolific_study_id="S1", prolific_status="ACTIVE", prolific_places=12)
    for number in range(12):
        make_session(recruitment, f"P{number}", assignment_id=f"SUB{number}", passed=True)
    expect_submissions(prolific, "S1", [[]])
    prolific.post(
        f"{API}studies/S1/transition/", json={"id": "S1", "status": "COMPLETED"}, match=[matchers.json_params_matcher({"action": "STOP"})]
    )

    services.sync(recruitment.pk)

    recruitment.refresh_from_db()
    assert recruitment.closed_at is not None and recruitment.prolific_status == "COMPLETED"


def prolific_payment(**fields) -> Payment:
    recruitment = prolific_recruitment(prolific_study_id="S1")
    return PaymentFactory(recruitment=recruitment, backend="prolific", sandbox=False, **fields)


def test_approve_and_reject_transition_the_submission(prolific):
    approve = prolific_payment(kind="approve", external_id="SUBA", amount="2.79")
    reject = PaymentFactory(
        recruitment=approve.recruitment, backend="prolific", kind="reject", external_id="SUBR",
        message="You failed 3 of the 5 attention checks described in the instructions.",
        rejection_category="FAILED_CHECK",
    )
    prolific.post(f"{API}submissions/SUBA/transition/", json={"id": "SUBA", "status": "APPROVED"},
                  match=[AUTH, matchers.json_params_matcher({"action": "APPROVE"})])
    prolific.post(
        f"{API}submissions/SUBR/transition/",
        json={"id": "SUBR", "status": "REJECTED"},
        match=[AUTH, matchers.json_params_matcher(
            {"action": "REJECT", "message": reject.message, "rejection_category": "FAILED_CHECK"}
        )],
    )

    services.run_payments(approve.recruitment_id)

    assert set(Payment.objects.values_list("status", flat=True)) == {"done"}


def expect_bonus_set_up(prolific, payment: Payment, bonus_id: str = "BONUS1") -> None:
    prolific.post(
        f"{API}submissions/bonus-payments/",
        json={"id": bonus_id, "study": "S1", "amount": 50, "fees": 17, "total_amount": 67},
        match=[AUTH, matchers.json_params_matcher({"study_id": "S1", "csv_bonuses": f"{payment.worker_id},0.50\n"})],
    )


def test_a_bonus_is_set_up_then_paid(prolific):
    payment = prolific_payment(kind="bonus", external_id="SUBB", worker_id="PARTB")
    expect_bonus_set_up(prolific, payment)
    prolific.post(f"{API}bulk-bonus-payments/BONUS1/pay/", json={}, match=[AUTH])

    services.run_payments(payment.recruitment_id)

    payment.refresh_from_db()
    assert (payment.status, payment.remote_ref) == ("done", "BONUS1")


def test_a_throttled_pay_is_retried_on_the_same_bonus_without_setting_up_another(prolific):
    payment = prolific_payment(kind="bonus", external_id="SUBB", worker_id="PARTB")
    expect_bonus_set_up(prolific, payment)
    prolific.post(f"{API}bulk-bonus-payments/BONUS1/pay/", status=429)
    with pytest.raises(TransientError):
        services.run_payments(payment.recruitment_id)

    prolific.post(f"{API}bulk-bonus-payments/BONUS1/pay/", json={})
    services.run_payments(payment.recruitment_id)

    payment.refresh_from_db()
    assert payment.status == "done"


def test_a_pay_call_of_unknown_outcome_is_never_repeated_blindly(prolific):
    payment = prolific_payment(kind="bonus", external_id="SUBB", worker_id="PARTB", remote_ref="BONUS1")
    prolific.post(f"{API}bulk-bonus-payments/BONUS1/pay/", status=503)
    with pytest.raises(TransientError):
        services.run_payments(payment.recruitment_id)

    prolific.get(f"{API}submissions/SUBB/", json={"id": "SUBB", "status": "APPROVED", "bonus_payments": []})
    with pytest.raises(RecruitmentError, match="outcome of an earlier attempt is unknown"):
        services.run_payments(payment.recruitment_id)

    payment.refresh_from_db()
    assert payment.status == "failed"


def test_a_pay_call_of_unknown_outcome_found_on_the_submission_is_done(prolific):
    payment = prolific_payment(kind="bonus", external_id="SUBB", worker_id="PARTB", remote_ref="BONUS1",
                               status="sending", sent_at=timezone.now())
    prolific.get(f"{API}submissions/SUBB/", json={"id": "SUBB", "status": "APPROVED", "bonus_payments": [50.0]})

    services.run_payments(payment.recruitment_id)

    payment.refresh_from_db()
    assert payment.status == "done"


def test_arrival_takes_prolifics_three_ids():
    recruitment = prolific_recruitment(prolific_study_id="S1")
    arrival = recruiter_for("prolific").arrival(
        recruitment.study, {"prolific_pid": "P1", "study_id": "S1", "session_id": "SUB1"}
    )
    assert arrival.participant_id == "P1"
    assert arrival.external == {"prolific_pid": "P1", "study_id": "S1", "session_id": "SUB1"}


@pytest.mark.parametrize("field", ["prolific_pid", "study_id", "session_id"])
def test_arrival_names_a_missing_id(field):
    data = {"prolific_pid": "P1", "study_id": "S1", "session_id": "SUB1", field: ""}
    with pytest.raises(ValueError, match=f"{field}: missing"):
        recruiter_for("prolific").arrival(prolific_recruitment().study, data)


def test_arrival_from_another_prolific_study_is_refused():
    recruitment = prolific_recruitment(prolific_study_id="S1")
    with pytest.raises(ArrivalRefused):
        recruiter_for("prolific").arrival(recruitment.study, {"prolific_pid": "P1", "study_id": "S2", "session_id": "X"})


def test_hand_back_gives_the_code_and_prolifics_completion_url():
    recruitment = prolific_recruitment(prolific_study_id="S1")
    session = make_session(recruitment, "P1", assignment_id="SUB1")
    code = recruitment.study.completion_code
    assert recruiter_for("prolific").hand_back(session) == {
        "completion_code": code,
        "redirect_url": f"https://app.prolific.com/submissions/complete?cc={code}",
    }


def test_session_start_records_the_submission():
    recruitment = prolific_recruitment(prolific_study_id="S1")
    session = make_session(recruitment, "P1", assignment_id="SUB1", status="active")

    recruiter_for("prolific").session_started(session)

    assert ProlificSubmission.objects.get(submission_id="SUB1").session == session


def test_reconcile_compares_the_ledger_with_submission_statuses(prolific):
    payment = prolific_payment(kind="approve", external_id=submission(1)["id"], status="done", amount=Decimal("2.79"))
    expect_submissions(prolific, "S1", [[submission(1, "AWAITING REVIEW"), submission(2, "APPROVED")]])

    differences = services.reconcile(payment.recruitment_id)

    assert sorted(d["problem"] for d in differences) == ["reviewed outside the ledger", "status"]
