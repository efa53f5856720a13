"""The recruitment desk in the admin: pages render, buttons call services, live asks first."""

from decimal import Decimal

import pytest
from django.urls import reverse

from recruitment import selectors, tasks
from recruitment.models import Payment, Recruitment
from tests.recruitment_factories import (
    AssignmentFactory,
    HITFactory,
    LaunchedRecruitmentFactory,
    PaymentFactory,
    RecruitmentFactory,
    make_session,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_tasks(monkeypatch):
    """Record the tasks the buttons queue instead of running them."""
    queued = []
    for name in ["sync_recruitment", "pause_recruitment", "close_recruitment", "run_payments", "reconcile_recruitment"]:
        monkeypatch.setattr(getattr(tasks, name), "delay", lambda pk, name=name: queued.append((name, pk)))
    return queued


def test_the_change_page_shows_progress_cost_hits_assignments_and_ledger(admin_client):
    hit = HITFactory(last_error="")
    recruitment = hit.recruitment
    recruitment.last_error = "MTurk create_hit_with_hit_type: RequestError: Insufficient funds"
    recruitment.save()
    AssignmentFactory(hit=hit, worker_id="AWORKERSHOWN")
    PaymentFactory(recruitment=recruitment, external_id="3PAIDSHOWN")

    page = admin_client.get(reverse("admin:recruitment_recruitment_change", args=[recruitment.pk])).content.decode()

    for shown in [hit.hit_id, "AWORKERSHOWN", "3PAIDSHOWN", "Insufficient funds", "0 / 12 passing", "Launch live"]:
        assert shown in page


def test_the_list_shows_each_recruitment_and_its_error(admin_client):
    LaunchedRecruitmentFactory(last_error="Rate exceeded")
    page = admin_client.get(reverse("admin:recruitment_recruitment_changelist")).content.decode()
    assert "Rate exceeded" in page and "recruiting" in page


def test_sandbox_launch_is_one_click(admin_client, public_https, no_tasks, django_capture_on_commit_callbacks):
    recruitment = RecruitmentFactory()
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:recruitment_launch", args=[recruitment.pk, "sandbox"]))
    recruitment.refresh_from_db()
    assert recruitment.launched_at and recruitment.sandbox
    assert no_tasks == [("sync_recruitment", recruitment.pk)]


def test_live_launch_shows_the_cost_then_launches_on_confirmation(
    admin_client, public_https, no_tasks, django_capture_on_commit_callbacks
):
    recruitment = RecruitmentFactory()
    url = reverse("admin:recruitment_launch", args=[recruitment.pk, "live"])
    total = selectors.cost_estimate(recruitment).total

    page = admin_client.get(url).content.decode()
    assert str(total) in page and "real money" in page
    recruitment.refresh_from_db()
    assert recruitment.launched_at is None

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url, {"confirmed_total": str(total)})
    recruitment.refresh_from_db()
    assert recruitment.launched_at and not recruitment.sandbox


def test_a_refused_launch_is_reported_not_raised(admin_client, settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    recruitment = RecruitmentFactory()
    response = admin_client.post(reverse("admin:recruitment_launch", args=[recruitment.pk, "sandbox"]), follow=True)
    assert "HTTPS" in response.content.decode()
    recruitment.refresh_from_db()
    assert recruitment.launched_at is None


@pytest.mark.parametrize("operation, task", [("pause", "pause_recruitment"), ("sync", "sync_recruitment"),
                                             ("close", "close_recruitment"), ("reconcile", "reconcile_recruitment")])
def test_each_button_queues_its_task(admin_client, no_tasks, django_capture_on_commit_callbacks, operation, task):
    recruitment = LaunchedRecruitmentFactory()
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:recruitment_operation", args=[recruitment.pk, operation]))
    assert no_tasks == [(task, recruitment.pk)]


def test_payments_are_a_dry_run_first_then_written_on_confirmation(
    admin_client, no_tasks, django_capture_on_commit_callbacks
):
    recruitment = LaunchedRecruitmentFactory(bonus_passing=Decimal("0.50"))
    assignment = AssignmentFactory(hit=HITFactory(recruitment=recruitment))
    assignment.session = make_session(recruitment, assignment.worker_id, assignment_id=assignment.assignment_id, passed=True)
    assignment.save()
    url = reverse("admin:recruitment_payments", args=[recruitment.pk])

    page = admin_client.get(url).content.decode()
    assert assignment.assignment_id in page and "passed the checks" in page
    assert not Payment.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url, {"digest": selectors.plan_payments(recruitment).digest})
    assert sorted(Payment.objects.values_list("kind", flat=True)) == ["approve", "bonus"]
    assert no_tasks == [("run_payments", recruitment.pk)]


def test_retrying_a_failed_payment_from_the_ledger(admin_client, no_tasks, django_capture_on_commit_callbacks):
    payment = PaymentFactory(status=Payment.Status.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:recruitment_payment_changelist"),
            {"action": "retry", "_selected_action": [payment.pk]},
        )
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING
    assert no_tasks == [("run_payments", payment.recruitment_id)]


def test_marking_a_payment_done_by_hand_records_who_checked(admin_client, admin_user):
    payment = PaymentFactory(status=Payment.Status.FAILED)
    admin_client.post(
        reverse("admin:recruitment_payment_changelist"), {"action": "mark_done", "_selected_action": [payment.pk]}
    )
    payment.refresh_from_db()
    assert (payment.status, payment.response) == ("done", {"marked_done_by": admin_user.username})


def test_assignment_and_group_lists_render(admin_client):
    AssignmentFactory()
    assert admin_client.get(reverse("admin:recruitment_assignment_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:recruitment_linkgroup_changelist")).status_code == 200
    assert Recruitment.objects.count() == 1
