"""The payment ledger on MTurk: dry run, exact calls, tokens, and never paying twice."""

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from recruitment import selectors, services, tasks
from recruitment.errors import RecruitmentError, TransientError
from recruitment.models import Assignment, Payment, Recruitment
from tests.recruitment_factories import (
    AssignmentFactory,
    HITFactory,
    LaunchedRecruitmentFactory,
    PaymentFactory,
    make_session,
)

REASON = "Thank you for your careful answers."
FEEDBACK = "Your answers failed the attention checks described in the instructions."


def submitted(recruitment: Recruitment, worker: str, passed: bool | None) -> Assignment:
    hit = HITFactory(recruitment=recruitment)
    a = AssignmentFactory(hit=hit, worker_id=worker)
    if passed is not None:
        a.session = make_session(recruitment, worker, assignment_id=a.assignment_id, passed=passed)
        a.save()
    return a


def expect_bonus(mturk, a: Assignment, amount: str = "0.50") -> None:
    mturk.add_response(
        "send_bonus",
        {},
        {
            "WorkerId": a.worker_id,
            "BonusAmount": amount,
            "AssignmentId": a.assignment_id,
            "Reason": REASON,
            "UniqueRequestToken": f"bonus:{a.assignment_id}",
        },
    )


def confirm(recruitment: Recruitment) -> int:
    return services.record_payments(recruitment, selectors.plan_payments(recruitment).digest)


@pytest.mark.django_db
def test_dry_run_approves_everyone_by_default_and_writes_nothing():
    recruitment = LaunchedRecruitmentFactory()
    for worker, passed in [("APASS", True), ("AFAIL", False), ("ANONE", None)]:
        submitted(recruitment, worker, passed)

    plan = selectors.plan_payments(recruitment)

    assert [(i.kind, i.worker_id) for i in plan.items] == [("approve", "APASS"), ("approve", "AFAIL"), ("approve", "ANONE")]
    assert not Payment.objects.exists()


@pytest.mark.django_db
def test_dry_run_with_rules_rejects_failures_with_feedback_and_bonuses_passes():
    recruitment = LaunchedRecruitmentFactory(
        reject_failing=True, rejection_feedback=FEEDBACK, bonus_passing=Decimal("0.50")
    )
    submitted(recruitment, "APASS", True)
    submitted(recruitment, "AFAIL", False)

    plan = selectors.plan_payments(recruitment)

    assert [(i.kind, i.worker_id, i.amount, i.message) for i in plan.items] == [
        ("approve", "APASS", Decimal("2.79"), ""),
        ("bonus", "APASS", Decimal("0.50"), REASON),
        ("reject", "AFAIL", Decimal("0.00"), FEEDBACK),
    ]
    assert plan.bonus_total == Decimal("0.50")


@pytest.mark.django_db
def test_confirming_a_dry_run_that_changed_writes_nothing():
    recruitment = LaunchedRecruitmentFactory()
    submitted(recruitment, "A1", True)
    digest = selectors.plan_payments(recruitment).digest
    submitted(recruitment, "A2", True)

    with pytest.raises(services.PlanChanged):
        services.record_payments(recruitment, digest)
    assert not Payment.objects.exists()


@pytest.mark.django_db
def test_each_kind_makes_its_exact_call_with_a_deterministic_token(mturk, django_capture_on_commit_callbacks):
    recruitment = LaunchedRecruitmentFactory(
        reject_failing=True, rejection_feedback=FEEDBACK, bonus_passing=Decimal("0.50")
    )
    passing = submitted(recruitment, "APASS", True)
    failing = submitted(recruitment, "AFAIL", False)
    mturk.add_response("approve_assignment", {}, {"AssignmentId": passing.assignment_id})
    expect_bonus(mturk, passing)
    mturk.add_response(
        "reject_assignment", {}, {"AssignmentId": failing.assignment_id, "RequesterFeedback": FEEDBACK}
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert confirm(recruitment) == 3

    assert set(Payment.objects.values_list("status", flat=True)) == {"done"}
    assert Payment.objects.get(kind="bonus").token == f"bonus:{passing.assignment_id}"
    assert {a.worker_id: a.status for a in Assignment.objects.all()} == {"APASS": "approved", "AFAIL": "rejected"}


@pytest.mark.django_db
def test_confirming_the_same_dry_run_twice_is_refused_the_second_time(mturk, django_capture_on_commit_callbacks):
    recruitment = LaunchedRecruitmentFactory()
    a = submitted(recruitment, "A1", True)
    digest = selectors.plan_payments(recruitment).digest
    mturk.add_response("approve_assignment", {}, {"AssignmentId": a.assignment_id})

    with django_capture_on_commit_callbacks(execute=True):
        services.record_payments(recruitment, digest)
    with pytest.raises(services.PlanChanged):
        services.record_payments(recruitment, digest)

    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_two_admins_confirming_at_once_still_write_each_row_once(monkeypatch):
    recruitment = LaunchedRecruitmentFactory()
    submitted(recruitment, "A1", True)
    plan = selectors.plan_payments(recruitment)
    # Both computed the plan before either wrote it.
    monkeypatch.setattr(selectors, "plan_payments", lambda _: plan)

    services.record_payments(recruitment, plan.digest)
    services.record_payments(recruitment, plan.digest)

    assert Payment.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_running_the_payment_task_twice_sends_one_bonus(mturk):
    payment = PaymentFactory()
    a = Assignment(assignment_id=payment.external_id, worker_id=payment.worker_id)
    expect_bonus(mturk, a)

    tasks.run_payments.apply(args=[payment.recruitment_id])
    tasks.run_payments.apply(args=[payment.recruitment_id])  # the Stubber fails on a second SendBonus

    payment.refresh_from_db()
    assert (payment.status, payment.attempts) == ("done", 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_payment_runs_send_each_bonus_once(mturk):
    recruitment = LaunchedRecruitmentFactory()
    payments = [PaymentFactory(recruitment=recruitment) for _ in range(3)]
    sent: list[dict] = []
    lock = threading.Lock()

    def slow_and_recorded(params, **_) -> None:
        # Slow enough that the runs overlap while a bonus is on its way.
        with lock:
            sent.append(params)
        time.sleep(0.2)

    # The two runs may send in either order, so the responses carry no expected
    # parameters (the Stubber still checks them against the model); the exact
    # parameters are checked on what was sent.
    for _ in payments:
        mturk.add_response("send_bonus", {})
    mturk.client.meta.events.register_first("before-parameter-build.mturk.SendBonus", slow_and_recorded)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            services.run_payments(recruitment.pk)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    expected = [
        {
            "WorkerId": p.worker_id,
            "BonusAmount": "0.50",
            "AssignmentId": p.external_id,
            "Reason": REASON,
            "UniqueRequestToken": f"bonus:{p.external_id}",
        }
        for p in payments
    ]
    assert sorted(sent, key=lambda p: p["AssignmentId"]) == expected
    assert set(Payment.objects.values_list("status", "attempts")) == {("done", 1)}


@pytest.mark.django_db
def test_a_throttled_bonus_goes_back_to_pending_and_is_sent_again_with_the_same_token(mturk):
    payment = PaymentFactory()
    mturk.add_client_error("send_bonus", service_error_code="ThrottlingException", service_message="Rate exceeded")

    with pytest.raises(TransientError):
        services.run_payments(payment.recruitment_id)
    payment.refresh_from_db()
    assert (payment.status, payment.lease_until) == ("pending", None)
    assert "Rate exceeded" in payment.last_error

    expect_bonus(mturk, Assignment(assignment_id=payment.external_id, worker_id=payment.worker_id))
    services.run_payments(payment.recruitment_id)
    payment.refresh_from_db()
    assert payment.status == "done"


@pytest.mark.django_db
def test_a_bonus_that_may_have_gone_through_is_looked_up_before_anything_is_resent(mturk):
    payment = PaymentFactory()
    mturk.add_client_error(
        "send_bonus", service_error_code="ServiceFault", service_message="Internal error", http_status_code=500
    )
    with pytest.raises(TransientError):
        services.run_payments(payment.recruitment_id)
    payment.refresh_from_db()
    assert (payment.status, payment.lease_until) == ("sending", None)

    mturk.add_response(
        "list_bonus_payments",
        {"BonusPayments": [{"WorkerId": payment.worker_id, "BonusAmount": "0.50", "AssignmentId": payment.external_id}]},
        {"AssignmentId": payment.external_id, "MaxResults": 100},
    )
    services.run_payments(payment.recruitment_id)  # no second SendBonus

    payment.refresh_from_db()
    assert (payment.status, payment.response) == ("done", {"verified": True})


@pytest.mark.django_db
def test_a_bonus_of_unknown_outcome_not_found_at_mturk_is_sent_again_with_its_token(mturk):
    payment = PaymentFactory(status=Payment.Status.SENDING, sent_at=timezone.now() - timedelta(days=3))
    mturk.add_response("list_bonus_payments", {"BonusPayments": []}, {"AssignmentId": payment.external_id, "MaxResults": 100})
    expect_bonus(mturk, Assignment(assignment_id=payment.external_id, worker_id=payment.worker_id))

    services.run_payments(payment.recruitment_id)

    payment.refresh_from_db()
    assert (payment.status, payment.attempts) == ("done", 1)


@pytest.mark.django_db
def test_a_row_another_worker_holds_is_left_alone(mturk):
    PaymentFactory(status=Payment.Status.SENDING, lease_until=timezone.now() + timedelta(minutes=5))

    assert services.run_payments(Recruitment.objects.get().pk) == 0


@pytest.mark.django_db
def test_a_done_row_is_never_sent_again(mturk):
    payment = PaymentFactory(status=Payment.Status.DONE, sent_at=timezone.now() - timedelta(days=2))

    assert services.run_payments(payment.recruitment_id) == 0


@pytest.mark.django_db
def test_approving_an_assignment_mturk_already_approved_is_recorded_as_done(mturk):
    payment = PaymentFactory(kind=Payment.Kind.APPROVE, amount="2.79")
    mturk.add_client_error(
        "approve_assignment", service_error_code="RequestError", service_message="This operation can be called with a status of: Submitted"
    )
    mturk.add_response(
        "get_assignment",
        {"Assignment": {"AssignmentId": payment.external_id, "AssignmentStatus": "Approved"}},
        {"AssignmentId": payment.external_id},
    )

    services.run_payments(payment.recruitment_id)

    payment.refresh_from_db()
    assert payment.status == "done"


@pytest.mark.django_db
def test_a_refused_payment_fails_visibly_on_the_row_and_the_recruitment(mturk):
    payment = PaymentFactory()
    mturk.add_client_error("send_bonus", service_error_code="RequestError", service_message="Insufficient funds")
    mturk.add_response("list_bonus_payments", {"BonusPayments": []}, {"AssignmentId": payment.external_id, "MaxResults": 100})

    with pytest.raises(RecruitmentError, match="1 payment"):
        tasks.run_payments.apply(args=[payment.recruitment_id])

    payment.refresh_from_db()
    assert payment.status == "failed"
    assert "Insufficient funds" in payment.last_error
    assert "Insufficient funds" in Recruitment.objects.get().last_error


@pytest.mark.django_db
def test_retrying_a_failed_row_looks_it_up_then_sends_it_with_the_same_token(mturk, django_capture_on_commit_callbacks):
    payment = PaymentFactory(status=Payment.Status.FAILED, sent_at=timezone.now(), attempts=1)
    mturk.add_response("list_bonus_payments", {"BonusPayments": []}, {"AssignmentId": payment.external_id, "MaxResults": 100})
    expect_bonus(mturk, Assignment(assignment_id=payment.external_id, worker_id=payment.worker_id))

    with django_capture_on_commit_callbacks(execute=True):
        services.retry_payment(payment)

    payment.refresh_from_db()
    assert (payment.status, payment.attempts) == ("done", 2)


@pytest.mark.django_db
def test_reconcile_reports_what_the_ledger_and_mturk_disagree_on(mturk):
    hit = HITFactory()
    recruitment = hit.recruitment
    ids = [f"3ASG{n:026d}" for n in range(1, 4)]
    for kind, external_id, worker in [("approve", ids[0], "A1"), ("bonus", ids[0], "A1"), ("approve", ids[1], "A2")]:
        PaymentFactory(recruitment=recruitment, kind=kind, external_id=external_id, worker_id=worker, status="done")
    listed = [
        {"AssignmentId": ids[0], "WorkerId": "A1", "HITId": hit.hit_id, "AssignmentStatus": "Approved"},
        {"AssignmentId": ids[1], "WorkerId": "A2", "HITId": hit.hit_id, "AssignmentStatus": "Submitted"},
        {"AssignmentId": ids[2], "WorkerId": "A3", "HITId": hit.hit_id, "AssignmentStatus": "Approved"},
    ]
    mturk.add_response(
        "list_assignments_for_hit",
        {"Assignments": listed, "NumResults": 3},
        {"HITId": hit.hit_id, "MaxResults": 100, "AssignmentStatuses": ["Submitted", "Approved", "Rejected"]},
    )
    bonus = {"WorkerId": "A1", "BonusAmount": "0.50", "AssignmentId": ids[0]}
    mturk.add_response(
        "list_bonus_payments", {"BonusPayments": [bonus, bonus], "NumResults": 2}, {"HITId": hit.hit_id, "MaxResults": 100}
    )

    differences = services.reconcile(recruitment.pk)

    assert sorted((d["problem"], d["external_id"]) for d in differences) == [
        ("bonus not in ledger", ids[0]),
        ("reviewed outside the ledger", ids[2]),
        ("status", ids[1]),
    ]
    recruitment.refresh_from_db()
    assert recruitment.reconcile_report == {"differences": differences}
