"""Sync and top-up: paging through assignments, returns and abandons, adding places, expiring at the target."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from experiments.models import Session, SessionUnit
from recruitment import selectors, services, tasks
from recruitment.errors import ServiceRefused, TransientError
from recruitment.models import HIT, Assignment, Recruitment
from recruitment.mturk.services import EXPIRE_NOW
from tests.factories import StudyUnitFactory
from tests.recruitment_factories import HITFactory, LaunchedRecruitmentFactory, make_session
from tests.test_mturk_hits import question_xml

pytestmark = pytest.mark.django_db

LIST_PARAMS = {"MaxResults": 100, "AssignmentStatuses": ["Submitted", "Approved", "Rejected"]}


def hit_data(hit: HIT, **counts) -> dict:
    data = {
        "HITId": hit.hit_id,
        "HITStatus": "Assignable",
        "MaxAssignments": hit.max_assignments,
        "Expiration": timezone.now() + timedelta(hours=3),
        "NumberOfAssignmentsAvailable": 0,
        "NumberOfAssignmentsPending": 0,
        "NumberOfAssignmentsCompleted": 0,
    }
    data.update(counts)
    return {"HIT": data}


def assignment(hit: HIT, number: int, status: str = "Submitted") -> dict:
    now = timezone.now()
    return {
        "AssignmentId": f"3ASG{number:026d}",
        "WorkerId": f"AWORKER{number}",
        "HITId": hit.hit_id,
        "AssignmentStatus": status,
        "AcceptTime": now - timedelta(minutes=30),
        "SubmitTime": now - timedelta(minutes=5),
        "AutoApprovalTime": now + timedelta(days=3),
    }


def expect_refresh(mturk, hit: HIT, pages: list[list[dict]] = ((),), **counts) -> None:
    mturk.add_response("get_hit", hit_data(hit, **counts), {"HITId": hit.hit_id})
    for number, page in enumerate(pages):
        response = {"Assignments": list(page), "NumResults": len(page)}
        params = {"HITId": hit.hit_id, **LIST_PARAMS}
        if number < len(pages) - 1:
            response["NextToken"] = f"page{number + 2}"
        if number:
            params["NextToken"] = f"page{number + 1}"
        mturk.add_response("list_assignments_for_hit", response, params)


def expect_new_hit(mturk, recruitment: Recruitment, number: int, size: int) -> None:
    token = f"{recruitment.study.slug}:hit:{number}"
    mturk.add_response(
        "create_hit_with_hit_type",
        {"HIT": {"HITId": f"3NEW{number}", "HITStatus": "Assignable", "MaxAssignments": size,
                 "Expiration": timezone.now() + timedelta(hours=4), "NumberOfAssignmentsAvailable": size}},
        {
            "HITTypeId": "HITTYPE1",
            "MaxAssignments": size,
            "LifetimeInSeconds": 14400,
            "Question": question_xml(recruitment.study.slug),
            "RequesterAnnotation": token,
            "UniqueRequestToken": token,
        },
    )


def sessions(recruitment: Recruitment, passed: int, failed: int = 0) -> None:
    for number in range(passed + failed):
        make_session(recruitment, f"AS{number}", passed=number < passed)


def test_sync_pages_through_assignments_and_links_sessions(mturk):
    hit = HITFactory()
    recruitment = hit.recruitment
    session = make_session(recruitment, "AWORKER1", assignment_id="3ASG" + "1".zfill(26), passed=True)
    # Enough in flight for the target: no top-up in this test.
    expect_refresh(
        mturk,
        hit,
        pages=[[assignment(hit, 1), assignment(hit, 2, "Approved")], [assignment(hit, 3, "Rejected")]],
        NumberOfAssignmentsAvailable=6,
        NumberOfAssignmentsPending=5,
        NumberOfAssignmentsCompleted=3,
    )

    services.sync(recruitment.pk)

    rows = {a.worker_id: a for a in Assignment.objects.all()}
    assert {w: a.status for w, a in rows.items()} == {"AWORKER1": "submitted", "AWORKER2": "approved", "AWORKER3": "rejected"}
    assert rows["AWORKER1"].session == session
    hit.refresh_from_db()
    assert (hit.available, hit.pending, hit.completed) == (6, 5, 3)
    recruitment.refresh_from_db()
    assert recruitment.last_synced_at is not None and recruitment.sync_lease_until is None


def test_an_accepted_assignment_gone_from_a_hit_nobody_works_on_was_returned(mturk):
    hit = HITFactory(refreshed_at=timezone.now() - timedelta(hours=1))
    returned = Assignment.objects.create(
        recruitment=hit.recruitment, hit=hit, assignment_id="3RET", worker_id="AR",
        status="accepted", accepted_at=timezone.now() - timedelta(minutes=20),
    )
    abandoned = Assignment.objects.create(
        recruitment=hit.recruitment, hit=hit, assignment_id="3ABN", worker_id="AB",
        status="accepted", accepted_at=timezone.now() - timedelta(hours=3),
    )
    expect_refresh(mturk, hit, NumberOfAssignmentsAvailable=12, NumberOfAssignmentsPending=0)

    services.sync(hit.recruitment.pk)

    returned.refresh_from_db()
    abandoned.refresh_from_db()
    assert (returned.status, abandoned.status) == ("returned", "abandoned")


def test_a_returned_workers_session_ends_and_its_units_reopen_at_once(mturk):
    # Paused: HITs are read, nothing is topped up.
    hit = HITFactory(refreshed_at=timezone.now() - timedelta(hours=1), recruitment__paused_at=timezone.now())
    session = make_session(hit.recruitment, "AR", assignment_id="3RET", status="active")
    slot = SessionUnit.objects.create(session=session, study_unit=StudyUnitFactory(study=session.study), batch=0)
    finished = make_session(hit.recruitment, "AF", assignment_id="3FIN", passed=True)
    for worker, current in (("AR", session), ("AF", finished)):
        Assignment.objects.create(
            recruitment=hit.recruitment, hit=hit, assignment_id=current.external["assignment_id"], worker_id=worker,
            status="accepted", session=current, accepted_at=timezone.now() - timedelta(minutes=20),
        )
    expect_refresh(mturk, hit, NumberOfAssignmentsAvailable=9, NumberOfAssignmentsPending=0)

    services.sync(hit.recruitment.pk)

    session.refresh_from_db()
    slot.refresh_from_db()
    assert session.status == Session.Status.RETURNED
    assert slot.released_at is not None
    finished.refresh_from_db()
    assert finished.status == Session.Status.COMPLETED  # its answers count, returned or not


def test_an_assignment_id_handed_to_another_worker_means_the_first_returned_it(mturk):
    hit = HITFactory(refreshed_at=timezone.now() - timedelta(hours=1))
    first = Assignment.objects.create(
        recruitment=hit.recruitment, hit=hit, assignment_id=assignment(hit, 7)["AssignmentId"], worker_id="AFIRST",
        status="accepted", accepted_at=timezone.now() - timedelta(minutes=50),
    )
    expect_refresh(mturk, hit, pages=[[assignment(hit, 7)]], NumberOfAssignmentsAvailable=12, NumberOfAssignmentsPending=3)

    services.sync(hit.recruitment.pk)

    first.refresh_from_db()
    assert first.status == "returned"


def test_an_assignment_still_within_its_time_on_a_busy_hit_is_left_alone(mturk):
    hit = HITFactory(refreshed_at=timezone.now() - timedelta(hours=1))
    working = Assignment.objects.create(
        recruitment=hit.recruitment, hit=hit, assignment_id="3WORK", worker_id="AW",
        status="accepted", accepted_at=timezone.now() - timedelta(minutes=20),
    )
    expect_refresh(mturk, hit, NumberOfAssignmentsAvailable=12, NumberOfAssignmentsPending=1)

    services.sync(hit.recruitment.pk)

    working.refresh_from_db()
    assert working.status == "accepted"


def test_a_worker_who_finished_but_has_not_submitted_yet_is_not_counted_twice():
    hit = HITFactory(pending=3, available=0)
    recruitment = hit.recruitment
    session = make_session(recruitment, "ADONE", passed=True)
    Assignment.objects.create(
        recruitment=recruitment, hit=hit, assignment_id="3DONE", worker_id="ADONE", status="accepted", session=session
    )

    progress = selectors.progress(recruitment, timezone.now())

    assert (progress.passing, progress.working) == (1, 2)


def test_failing_sessions_are_replaced_by_a_new_hit_when_the_others_are_full(mturk):
    hit = HITFactory()
    recruitment = hit.recruitment
    sessions(recruitment, passed=6, failed=3)
    expect_refresh(mturk, hit, HITStatus="Reviewable", NumberOfAssignmentsCompleted=9)
    expect_new_hit(mturk, recruitment, number=2, size=6)

    services.sync(recruitment.pk)

    assert list(HIT.objects.order_by("pk").values_list("max_assignments", flat=True)) == [9, 6]


def test_top_up_fills_open_hits_up_to_nine_before_creating_new_ones(mturk):
    hit = HITFactory(max_assignments=4)
    recruitment = hit.recruitment
    sessions(recruitment, passed=2, failed=2)
    expect_refresh(mturk, hit, NumberOfAssignmentsCompleted=4)
    mturk.add_response(
        "create_additional_assignments_for_hit",
        {},
        {"HITId": hit.hit_id, "NumberOfAdditionalAssignments": 5, "UniqueRequestToken": f"{hit.hit_id}:extend:9"},
    )
    expect_new_hit(mturk, recruitment, number=2, size=5)

    services.sync(recruitment.pk)

    assert list(HIT.objects.order_by("pk").values_list("max_assignments", flat=True)) == [9, 5]


def test_first_sync_of_a_launch_posts_hits_of_at_most_nine(mturk):
    recruitment = LaunchedRecruitmentFactory()
    expect_new_hit(mturk, recruitment, number=1, size=9)
    expect_new_hit(mturk, recruitment, number=2, size=3)

    services.sync(recruitment.pk)

    assert HIT.objects.count() == 2


def test_target_met_expires_the_remaining_hits_and_closes(mturk):
    hit = HITFactory()
    recruitment = hit.recruitment
    sessions(recruitment, passed=12)
    expect_refresh(mturk, hit, NumberOfAssignmentsAvailable=2, NumberOfAssignmentsCompleted=7)
    mturk.add_response("update_expiration_for_hit", {}, {"HITId": hit.hit_id, "ExpireAt": EXPIRE_NOW})

    services.sync(recruitment.pk)

    recruitment.refresh_from_db()
    assert recruitment.closed_at is not None
    assert recruitment.close_reason == "target met: 12 passing sessions of 12 needed"


def test_sandbox_sessions_do_not_count_toward_a_live_target(mturk):
    recruitment = LaunchedRecruitmentFactory(sandbox=False)
    sandbox = LaunchedRecruitmentFactory.build(sandbox=True, study=recruitment.study)
    sessions(sandbox, passed=12)
    for number in (1, 2):
        expect_new_hit(mturk, recruitment, number=number, size=9 if number == 1 else 3)

    services.sync(recruitment.pk)

    assert HIT.objects.filter(sandbox=False).count() == 2


def test_the_budget_cap_stops_recruitment_short(mturk):
    recruitment = LaunchedRecruitmentFactory(budget_cap=Decimal("10.00"))  # 2 assignments of 3.35
    expect_new_hit(mturk, recruitment, number=1, size=2)

    services.sync(recruitment.pk)

    recruitment.refresh_from_db()
    assert recruitment.budget_reached_at is not None
    assert HIT.objects.get().max_assignments == 2


def test_a_paused_recruitment_is_not_topped_up(mturk):
    recruitment = LaunchedRecruitmentFactory(paused_at=timezone.now())

    services.sync(recruitment.pk)  # the Stubber fails on any call


def test_a_sync_already_running_makes_the_second_wait(mturk):
    recruitment = LaunchedRecruitmentFactory(sync_lease_until=timezone.now() + timedelta(minutes=5))

    with pytest.raises(TransientError, match="another worker"):
        services.sync(recruitment.pk)


def test_throttling_is_raised_for_retry_and_shown_on_the_recruitment(mturk):
    hit = HITFactory()
    mturk.add_client_error("get_hit", service_error_code="ThrottlingException", service_message="Rate exceeded")

    with pytest.raises(TransientError) as raised:
        tasks.sync_recruitment.run(hit.recruitment.pk)

    assert raised.value.maybe_processed is False
    recruitment = Recruitment.objects.get()
    assert "Rate exceeded" in recruitment.last_error
    assert recruitment.sync_lease_until is None


def test_the_sync_task_retries_transient_errors_with_backoff():
    assert TransientError in tasks.sync_recruitment.autoretry_for
    assert tasks.sync_recruitment.retry_backoff


def test_a_refusal_is_stored_on_the_recruitment_and_not_swallowed(mturk):
    recruitment = LaunchedRecruitmentFactory()
    mturk.add_client_error("create_hit_with_hit_type", service_error_code="RequestError", service_message="Insufficient funds")

    with pytest.raises(ServiceRefused):
        tasks.sync_recruitment.apply(args=[recruitment.pk])

    recruitment.refresh_from_db()
    assert "Insufficient funds" in recruitment.last_error
    assert recruitment.last_error_at is not None
