"""MTurk arrival, hand-back and the took-part qualification granted when a session starts."""

import pytest
from django.utils import timezone

from experiments.models import Session, Study
from experiments.recruiters import ArrivalRefused, recruiter_for
from recruitment import tasks
from recruitment.models import HIT, Assignment, TookPartQualification
from tests.builders import build_2afc_study
from tests.recruitment_factories import HITFactory, LaunchedRecruitmentFactory, MTurkWorker, make_session

pytestmark = pytest.mark.django_db

ARRIVAL = {
    "assignment_id": "3ASSIGNMENT0000000000000000001",
    "hit_id": "3HIT0000000000000000000000001",
    "worker_id": "AWORKER1",
    "turk_submit_to": "https://workersandbox.mturk.com",
}


def arrive(study, **changes):
    """An arrival on one of the study's HITs (made up ones are refused, see the test below)."""
    HIT.objects.get_or_create(
        hit_id=ARRIVAL["hit_id"],
        defaults={"recruitment": study.recruitment, "sandbox": study.recruitment.sandbox, "token": "t:hit:1",
                  "max_assignments": 9},
    )
    return recruiter_for("mturk").arrival(study, {**ARRIVAL, **changes})


def test_an_arrival_on_a_hit_the_study_never_posted_is_refused():
    study = LaunchedRecruitmentFactory().study
    with pytest.raises(ArrivalRefused, match="This HIT does not belong to this study"):
        recruiter_for("mturk").arrival(study, {**ARRIVAL, "hit_id": "3MADEUP000000000000000000000"})


def test_arrival_gives_the_worker_id_and_keeps_mturks_ids():
    arrival = arrive(LaunchedRecruitmentFactory().study)
    assert arrival.participant_id == "AWORKER1"
    assert arrival.external == ARRIVAL


def test_a_preview_is_refused_with_a_message():
    with pytest.raises(ArrivalRefused, match="preview"):
        arrive(LaunchedRecruitmentFactory().study, assignment_id="ASSIGNMENT_ID_NOT_AVAILABLE", worker_id="")


@pytest.mark.parametrize("field", ["assignment_id", "hit_id", "worker_id", "turk_submit_to"])
def test_a_missing_field_is_named(field):
    with pytest.raises(ValueError, match=f"{field}: missing"):
        arrive(LaunchedRecruitmentFactory().study, **{field: ""})


def test_a_malformed_worker_id_is_refused():
    with pytest.raises(ValueError, match="worker_id"):
        arrive(LaunchedRecruitmentFactory().study, worker_id="<script>")


@pytest.mark.parametrize(
    "site", ["https://evil.example.org", "http://www.mturk.com", "https://www.mturk.com/elsewhere", "https://www.mturk.com.evil.org"]
)
def test_turk_submit_to_must_be_an_mturk_worker_site(site):
    with pytest.raises(ValueError, match="turk_submit_to"):
        arrive(LaunchedRecruitmentFactory().study, turk_submit_to=site)


def test_a_trailing_slash_on_turk_submit_to_is_dropped():
    arrival = arrive(LaunchedRecruitmentFactory().study, turk_submit_to="https://workersandbox.mturk.com/")
    assert arrival.external["turk_submit_to"] == "https://workersandbox.mturk.com"


def test_a_sandbox_hit_cannot_start_a_study_launched_live():
    with pytest.raises(ArrivalRefused, match="other one"):
        arrive(LaunchedRecruitmentFactory(sandbox=False).study)


def test_hand_back_posts_the_assignment_id_to_external_submit():
    recruitment = LaunchedRecruitmentFactory()
    session = make_session(recruitment, "AWORKER1", assignment_id="3ASSIGNMENT0000000000000000001")
    assert recruiter_for("mturk").hand_back(session) == {
        "submit_url": "https://workersandbox.mturk.com/mturk/externalSubmit",
        "fields": {"assignmentId": "3ASSIGNMENT0000000000000000001"},
    }


def test_hand_back_refuses_a_stored_foreign_submit_site():
    recruitment = LaunchedRecruitmentFactory()
    session = make_session(recruitment, "AWORKER1")
    session.external["turk_submit_to"] = "https://evil.example.org"
    with pytest.raises(ValueError):
        recruiter_for("mturk").hand_back(session)


def test_session_start_records_the_assignment_and_grants_took_part_after_commit(
    mturk, django_capture_on_commit_callbacks
):
    hit = HITFactory(hit_id="3HIT0000000000000000000000001")
    recruitment = hit.recruitment
    TookPartQualification.objects.create(group=recruitment.group, sandbox=True, qualification_type_id="3TOOK")
    session = make_session(
        recruitment, "AWORKER1", assignment_id=ARRIVAL["assignment_id"], hit_id=hit.hit_id, status="active"
    )
    mturk.add_response(
        "associate_qualification_with_worker",
        {},
        expected_params={
            "QualificationTypeId": "3TOOK",
            "WorkerId": "AWORKER1",
            "IntegerValue": 1,
            "SendNotification": False,
        },
    )

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        recruiter_for("mturk").session_started(session)
        # Nothing reaches MTurk before the session is committed.
        assert Assignment.objects.get(worker_id="AWORKER1").qualified_at is None

    assert len(callbacks) == 1
    assignment = Assignment.objects.get(assignment_id=ARRIVAL["assignment_id"], worker_id="AWORKER1")
    assert (assignment.session, assignment.hit, assignment.status) == (session, hit, Assignment.Status.ACCEPTED)
    assert assignment.qualified_at is not None


def test_no_qualification_is_granted_for_a_study_never_launched(mturk, django_capture_on_commit_callbacks):
    recruitment = LaunchedRecruitmentFactory(launched_at=None, group=None)
    session = make_session(recruitment, "AWORKER2", status="active")

    with django_capture_on_commit_callbacks(execute=True):
        recruiter_for("mturk").session_started(session)

    assert Assignment.objects.get(worker_id="AWORKER2").qualified_at is None


def test_a_worker_already_qualified_is_not_granted_again(mturk):
    recruitment = LaunchedRecruitmentFactory()
    TookPartQualification.objects.create(group=recruitment.group, sandbox=True, qualification_type_id="3TOOK")
    assignment = Assignment.objects.create(
        recruitment=recruitment, assignment_id="3A", worker_id="AW", qualified_at=timezone.now()
    )

    tasks.grant_took_part.apply(args=[assignment.pk]).get()  # the Stubber fails on any call


def mturk_study() -> Study:
    return build_2afc_study(n_units=6, recruiter="mturk", n_main_trials=4, n_catch_trials=1)


def test_an_arrival_at_the_participant_page_records_the_assignment_and_grants_took_part(
    mturk, django_capture_on_commit_callbacks
):
    recruitment = LaunchedRecruitmentFactory(study=mturk_study())
    TookPartQualification.objects.create(group=recruitment.group, sandbox=True, qualification_type_id="3TOOK")
    worker = MTurkWorker(recruitment.study, 1, hit_id=HITFactory(recruitment=recruitment).hit_id)
    mturk.add_response(
        "associate_qualification_with_worker",
        {},
        {"QualificationTypeId": "3TOOK", "WorkerId": worker.participant, "IntegerValue": 1, "SendNotification": False},
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert worker.start().status_code == 201

    assignment = Assignment.objects.get(assignment_id=worker.assignment_id, worker_id=worker.participant)
    assert assignment.session_id == worker.id
    assert assignment.qualified_at is not None


def test_a_worker_who_took_part_in_a_linked_study_is_refused_at_the_participant_page(mturk):
    first = LaunchedRecruitmentFactory()
    make_session(first, "AWORKER1")
    linked = LaunchedRecruitmentFactory(study=mturk_study(), group=first.group)

    worker = MTurkWorker(linked.study, 1, hit_id=HITFactory(recruitment=linked).hit_id)
    response = worker.start()  # the Stubber fails on any call

    assert response.status_code == 409
    assert "already taken part in a related study" in response.json()["error"]
    assert not Session.objects.filter(study=linked.study).exists()


def test_a_preview_at_the_participant_api_starts_no_session():
    study = LaunchedRecruitmentFactory(study=mturk_study()).study
    worker = MTurkWorker(study, 1)
    worker.assignment_id = "ASSIGNMENT_ID_NOT_AVAILABLE"

    response = worker.start()

    assert response.status_code == 403
    assert "accept the HIT" in response.json()["error"]
    assert not Session.objects.exists()
