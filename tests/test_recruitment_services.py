"""Who took part, launching, pausing and closing, and which recruitments the beat syncs."""

from decimal import Decimal

import pytest
from django.utils import timezone

from experiments.models import Study
from experiments.recruiters import recruiter_for
from psyplatform.celery import app
from recruitment import selectors, services, tasks
from recruitment.errors import ConfigurationError, RecruitmentError
from recruitment.models import Assignment, LinkGroup, Recruitment
from tests.recruitment_factories import LaunchedRecruitmentFactory, RecruitmentFactory, make_session

pytestmark = pytest.mark.django_db


def test_a_worker_with_a_session_in_the_study_has_taken_part():
    recruitment = LaunchedRecruitmentFactory()
    make_session(recruitment, "AW1")
    assert recruiter_for("mturk").has_taken_part(recruitment.study, "AW1")
    assert not recruiter_for("mturk").has_taken_part(recruitment.study, "AW2")


def test_a_worker_from_a_linked_study_has_taken_part_and_an_unlinked_one_has_not():
    first = LaunchedRecruitmentFactory()
    linked = LaunchedRecruitmentFactory(group=first.group)
    unlinked = LaunchedRecruitmentFactory()
    make_session(first, "AW1")
    assert recruiter_for("mturk").has_taken_part(linked.study, "AW1")
    assert not recruiter_for("mturk").has_taken_part(unlinked.study, "AW1")


def test_a_study_without_recruitment_settings_only_checks_itself():
    recruitment = LaunchedRecruitmentFactory()
    make_session(recruitment, "AW1")
    other = RecruitmentFactory().study
    Recruitment.objects.filter(study=other).delete()
    assert not recruiter_for("mturk").has_taken_part(other, "AW1")


def test_a_sandbox_launch_links_the_study_to_its_own_group_and_syncs_after_commit(
    public_https, django_capture_on_commit_callbacks
):
    recruitment = RecruitmentFactory()

    with django_capture_on_commit_callbacks() as callbacks:
        services.launch(recruitment, sandbox=True)

    recruitment.refresh_from_db()
    assert recruitment.launched_at and recruitment.sandbox and recruitment.is_recruiting
    assert recruitment.group == LinkGroup.objects.get(name=f"study {recruitment.study.slug}")
    assert len(callbacks) == 1


def test_a_live_launch_needs_the_cost_the_admin_showed(public_https):
    recruitment = RecruitmentFactory()
    total = selectors.cost_estimate(recruitment).total

    with pytest.raises(ConfigurationError, match=str(total)):
        services.launch(recruitment, sandbox=False)
    with pytest.raises(ConfigurationError):
        services.launch(recruitment, sandbox=False, confirmed_total=total - Decimal("0.01"))
    services.launch(recruitment, sandbox=False, confirmed_total=total)

    recruitment.refresh_from_db()
    assert not recruitment.sandbox


def test_launch_refuses_a_plain_http_site(settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    with pytest.raises(ConfigurationError, match="HTTPS"):
        services.launch(RecruitmentFactory(), sandbox=True)


def test_launch_refuses_a_study_not_open_to_participants(public_https):
    recruitment = RecruitmentFactory(study__status=Study.Status.READY)
    with pytest.raises(ConfigurationError, match="Open the study"):
        services.launch(recruitment, sandbox=True)


def test_launch_refuses_rejecting_without_feedback(public_https):
    recruitment = RecruitmentFactory(reject_failing=True, rejection_feedback="")
    with pytest.raises(ConfigurationError, match="rejection_feedback"):
        services.launch(recruitment, sandbox=True)


def test_prolific_has_no_sandbox_and_needs_a_token(public_https, settings):
    recruitment = RecruitmentFactory(study__recruiter="prolific")
    with pytest.raises(ConfigurationError, match="no sandbox"):
        services.launch(recruitment, sandbox=True)
    settings.PROLIFIC_API_TOKEN = ""
    with pytest.raises(ConfigurationError, match="PROLIFIC_API_TOKEN"):
        services.launch(recruitment, sandbox=False, confirmed_total=selectors.cost_estimate(recruitment).total)


def test_a_local_study_has_nothing_to_launch(public_https):
    recruitment = RecruitmentFactory(study__recruiter="local")
    with pytest.raises(ConfigurationError, match="nothing to launch"):
        services.launch(recruitment, sandbox=True)


def test_pause_stops_recruiting_and_queues_the_recruiter_side(django_capture_on_commit_callbacks):
    recruitment = LaunchedRecruitmentFactory()

    with django_capture_on_commit_callbacks() as callbacks:
        services.pause(recruitment)

    assert not recruitment.is_recruiting
    assert len(callbacks) == 1
    with pytest.raises(RecruitmentError):
        services.pause(recruitment)


def test_resume_and_close(django_capture_on_commit_callbacks):
    recruitment = LaunchedRecruitmentFactory(paused_at=timezone.now())

    with django_capture_on_commit_callbacks() as callbacks:
        services.resume(recruitment)
        services.close(recruitment)

    assert recruitment.closed_at and recruitment.close_reason == "closed by the researcher"
    assert len(callbacks) == 2


def test_the_beat_syncs_running_recruitments_and_closed_ones_with_unsettled_work():
    running = LaunchedRecruitmentFactory()
    settled = LaunchedRecruitmentFactory(closed_at=timezone.now())
    unsettled = LaunchedRecruitmentFactory(closed_at=timezone.now())
    Assignment.objects.create(recruitment=unsettled, assignment_id="3A", worker_id="AW", status="submitted")
    RecruitmentFactory()  # never launched

    assert set(selectors.recruitments_to_sync()) == {running, unsettled}
    assert settled not in selectors.recruitments_to_sync()


def test_the_beat_task_queues_one_sync_per_recruitment(monkeypatch):
    running = LaunchedRecruitmentFactory()
    queued = []
    monkeypatch.setattr(tasks.sync_recruitment, "delay", queued.append)

    tasks.sync_recruitments()

    assert queued == [running.pk]


@pytest.mark.django_db(False)
def test_beat_runs_the_sync_payments_and_reconcile_and_every_entry_names_a_task():
    app.loader.import_default_modules()  # what a worker does at start: finds every tasks module
    schedule = app.conf.beat_schedule
    assert {entry["task"] for entry in schedule.values()} >= {
        "recruitment.tasks.sync_recruitments",
        "recruitment.tasks.run_due_payments",
        "recruitment.tasks.reconcile_recruitments",
    }
    assert all(entry["task"] in app.tasks for entry in schedule.values())
