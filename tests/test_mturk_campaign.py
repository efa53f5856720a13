"""A whole MTurk campaign on the sandbox, from launch to the last payment.

Workers arrive through the real participant page and API with MTurk's parameters; MTurk itself
is a real boto3 client behind botocore's Stubber, which checks each call's exact parameters
against AWS's service model. The study needs 3 passing sessions (6 units x 2 participants /
4 main trials): one worker fails the checks, one returns the HIT, the sync tops up, the target is
met while the last worker has yet to submit, and everyone who submitted is paid once.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from experiments.models import Session, Study
from recruitment import selectors, services, tasks
from recruitment.models import HIT, Assignment, Payment, Recruitment
from recruitment.mturk.client import WORKER_SITES
from recruitment.mturk.services import EXPIRE_NOW
from tests.builders import build_2afc_study
from tests.recruitment_factories import SANDBOX_HIT_ID as HIT_ID
from tests.recruitment_factories import MTurkWorker
from tests.test_mturk_hits import GUARD, TOOK_PART, expect_qualification_created, hit_type_params, question_xml
from tests.test_mturk_sync import LIST_PARAMS, assignment, expect_refresh

pytestmark = pytest.mark.django_db

HIT_TYPE = "3CAMPAIGNTYPE"
SANDBOX = WORKER_SITES[True]
REASON = "Thank you for your careful answers."


def expect_arrival(mturk, worker: MTurkWorker) -> None:
    mturk.add_response(
        "associate_qualification_with_worker",
        {},
        {"QualificationTypeId": TOOK_PART, "WorkerId": worker.participant, "IntegerValue": 1, "SendNotification": False},
    )


def expect_sync(mturk, submitted: list[MTurkWorker], **counts) -> None:
    """The sync's reads of the campaign's one HIT: its counts, then the assignments MTurk lists."""
    hit = HIT.objects.get()
    expect_refresh(mturk, hit, pages=[[assignment(hit, worker.number) for worker in submitted]], **counts)


def arrive(worker: MTurkWorker, capture) -> None:
    with capture(execute=True):
        assert worker.start().status_code == 201


@pytest.fixture
def study() -> Study:
    return build_2afc_study(
        n_units=6,
        recruiter="mturk",
        n_main_trials=4,
        n_catch_trials=1,
        target_per_unit=2,
        min_instruction_s=0,
        min_total_s=0,
        params={"min_catch_correct": 1, "min_position_count": 0},
    )


def test_a_campaign_recruits_replaces_failures_and_returns_meets_the_target_and_pays_once(
    study, mturk, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    recruitment = Recruitment.objects.create(study=study, bonus_passing=Decimal("0.50"))

    # Launch on the sandbox: the took-part qualification, the HIT type, one HIT of the 3 places needed.
    expect_qualification_created(mturk, recruitment)
    took_part = {"QualificationTypeId": TOOK_PART, "Comparator": "DoesNotExist", "ActionsGuarded": GUARD}
    mturk.add_response("create_hit_type", {"HITTypeId": HIT_TYPE}, hit_type_params(recruitment, [took_part]))
    token = f"{study.slug}:hit:1"
    mturk.add_response(
        "create_hit_with_hit_type",
        {"HIT": {"HITId": HIT_ID, "HITStatus": "Assignable", "MaxAssignments": 3,
                 "Expiration": timezone.now() + timedelta(hours=4), "NumberOfAssignmentsAvailable": 3}},
        {"HITTypeId": HIT_TYPE, "MaxAssignments": 3, "LifetimeInSeconds": 14400, "Question": question_xml(study.slug),
         "RequesterAnnotation": token, "UniqueRequestToken": token},
    )
    with capture(execute=True):
        services.launch(recruitment, sandbox=True)
    assert HIT.objects.get().hit_id == HIT_ID

    # Three workers accept. Each is given the took-part qualification on arrival.
    careful, careless, leaving = MTurkWorker(study, 1), MTurkWorker(study, 2), MTurkWorker(study, 3)
    for worker in (careful, careless, leaving):
        expect_arrival(mturk, worker)
        arrive(worker, capture)
    careful.answer_main_block(careful=True)
    careless.answer_main_block(careful=False)
    hand_back = careful.complete().json()
    assert hand_back == {
        "completed": True,
        "submit_url": f"{SANDBOX}/mturk/externalSubmit",
        "fields": {"assignmentId": careful.assignment_id},
    }
    careless.complete()
    leaving.event("consent")  # ...then returns the HIT: MTurk offers the place again.
    assert (careful.session.passed, careless.session.passed) == (True, False)

    # Sync: the return is noticed and its units reopened; one place short, so the HIT grows by one.
    expect_sync(mturk, [careful, careless], HITStatus="Assignable",
                NumberOfAssignmentsAvailable=1, NumberOfAssignmentsPending=0, NumberOfAssignmentsCompleted=2)
    mturk.add_response(
        "create_additional_assignments_for_hit",
        {},
        {"HITId": HIT_ID, "NumberOfAdditionalAssignments": 1, "UniqueRequestToken": f"{HIT_ID}:extend:4"},
    )
    tasks.sync_recruitment.delay(recruitment.pk)
    assert leaving.session.status == Session.Status.RETURNED
    assert not leaving.session.slots.filter(released_at__isnull=True).exists()
    assert Assignment.objects.get(worker_id=leaving.participant).status == Assignment.Status.RETURNED

    # Two more workers take the two places; both pass, the last has not submitted yet.
    late, last = MTurkWorker(study, 4), MTurkWorker(study, 5)
    for worker in (late, last):
        expect_arrival(mturk, worker)
        arrive(worker, capture)
        worker.answer_main_block(careful=True)
        worker.complete()

    # Sync: the target is met, so the HIT is expired (the last worker may still submit) and recruitment closes.
    expect_sync(mturk, [careful, careless, late], HITStatus="Unassignable",
                NumberOfAssignmentsAvailable=0, NumberOfAssignmentsPending=1, NumberOfAssignmentsCompleted=3)
    mturk.add_response("update_expiration_for_hit", {}, {"HITId": HIT_ID, "ExpireAt": EXPIRE_NOW})
    tasks.sync_recruitment.delay(recruitment.pk)
    recruitment.refresh_from_db()
    assert recruitment.closed_at is not None
    assert recruitment.close_reason == "target met: 3 passing sessions of 3 needed"

    # The beat still syncs a closed recruitment while work is unsettled: the last submission arrives.
    expect_sync(mturk, [careful, careless, late, last], HITStatus="Reviewable",
                NumberOfAssignmentsAvailable=0, NumberOfAssignmentsPending=0, NumberOfAssignmentsCompleted=4)
    tasks.sync_recruitments.delay()
    assert Assignment.objects.get(worker_id=last.participant).status == Assignment.Status.SUBMITTED

    # Payments: a dry run first; everyone who submitted is approved (as in IMI), passing sessions get a bonus.
    plan = selectors.plan_payments(recruitment)
    assert [(item.kind, item.worker_id) for item in plan.items] == [
        ("approve", "AWORKER1"), ("bonus", "AWORKER1"),
        ("approve", "AWORKER2"),
        ("approve", "AWORKER4"), ("bonus", "AWORKER4"),
        ("approve", "AWORKER5"), ("bonus", "AWORKER5"),
    ]
    for item in plan.items:
        worker = {w.participant: w for w in (careful, careless, late, last)}[item.worker_id]
        if item.kind == "approve":
            mturk.add_response("approve_assignment", {}, {"AssignmentId": worker.assignment_id})
        else:
            mturk.add_response(
                "send_bonus",
                {},
                {"WorkerId": worker.participant, "BonusAmount": "0.50", "AssignmentId": worker.assignment_id,
                 "Reason": REASON, "UniqueRequestToken": f"bonus:{worker.assignment_id}"},
            )
    with capture(execute=True):
        assert services.record_payments(recruitment, plan.digest) == 7

    # Paying again sends nothing (the Stubber fails on any call), and nothing is left to plan.
    tasks.run_payments.delay(recruitment.pk)
    assert selectors.plan_payments(recruitment).items == ()

    # Reconcile: MTurk's assignment statuses and bonuses agree with the ledger.
    hit = HIT.objects.get()
    approved = [assignment(hit, w.number, "Approved") for w in (careful, careless, late, last)]
    mturk.add_response(
        "list_assignments_for_hit", {"Assignments": approved, "NumResults": 4}, {"HITId": HIT_ID, **LIST_PARAMS}
    )
    bonuses = [
        {"WorkerId": w.participant, "BonusAmount": "0.50", "AssignmentId": w.assignment_id, "Reason": REASON,
         "GrantTime": timezone.now()}
        for w in (careful, late, last)
    ]
    mturk.add_response(
        "list_bonus_payments", {"BonusPayments": bonuses, "NumResults": 3}, {"HITId": HIT_ID, "MaxResults": 100}
    )
    tasks.reconcile_recruitment.delay(recruitment.pk)

    recruitment.refresh_from_db()
    assert recruitment.reconcile_report == {"differences": []}
    assert recruitment.last_error == ""
    ledger = list(Payment.objects.order_by("pk").values_list("kind", "worker_id", "amount", "status", "token"))
    assert ledger == [
        ("approve", "AWORKER1", Decimal("2.79"), "done", f"approve:{careful.assignment_id}"),
        ("bonus", "AWORKER1", Decimal("0.50"), "done", f"bonus:{careful.assignment_id}"),
        ("approve", "AWORKER2", Decimal("2.79"), "done", f"approve:{careless.assignment_id}"),
        ("approve", "AWORKER4", Decimal("2.79"), "done", f"approve:{late.assignment_id}"),
        ("bonus", "AWORKER4", Decimal("0.50"), "done", f"bonus:{late.assignment_id}"),
        ("approve", "AWORKER5", Decimal("2.79"), "done", f"approve:{last.assignment_id}"),
        ("bonus", "AWORKER5", Decimal("0.50"), "done", f"bonus:{last.assignment_id}"),
    ]
    assert dict(Assignment.objects.values_list("worker_id", "status")) == {
        "AWORKER1": "approved", "AWORKER2": "approved", "AWORKER3": "returned", "AWORKER4": "approved",
        "AWORKER5": "approved",
    }
    # Every unit reached its target of passing participants, and nothing is left to sync.
    passing_slots = study.study_units.filter(role="main").with_progress()
    assert sorted(unit.completed for unit in passing_slots) == [2] * 6
    assert not selectors.recruitments_to_sync().exists()
    assert mturk.operations == [
        "CreateQualificationType", "CreateHITType", "CreateHITWithHITType",
        "AssociateQualificationWithWorker", "AssociateQualificationWithWorker", "AssociateQualificationWithWorker",
        "GetHIT", "ListAssignmentsForHIT", "CreateAdditionalAssignmentsForHIT",
        "AssociateQualificationWithWorker", "AssociateQualificationWithWorker",
        "GetHIT", "ListAssignmentsForHIT", "UpdateExpirationForHIT",
        "GetHIT", "ListAssignmentsForHIT",
        "ApproveAssignment", "SendBonus", "ApproveAssignment", "ApproveAssignment", "SendBonus",
        "ApproveAssignment", "SendBonus",
        "ListAssignmentsForHIT", "ListBonusPayments",
    ]

