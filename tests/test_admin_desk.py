"""The researcher's desk in the admin: the studies list, the progress summary, the job panel, the trial
gallery, and no bearer token anywhere."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone

from experiments.models import Session, SessionUnit, StudyUnit, Trial
from tests.builders import build_2afc_study
from workers.models import Job


def test_the_studies_list_shows_status_protocol_units_sessions_and_spend(admin_client, db):
    study = build_2afc_study(n_units=4, target_per_unit=2, n_main_trials=4)
    page = admin_client.get("/admin/experiments/study/").content.decode()
    for header in ("status", "protocol", "units complete", "passing sessions / needed", "spend / budget"):
        assert header in page.lower()
    row = page.split(f">{study.slug}<", 1)[1].split("</tr>", 1)[0]
    assert "open to participants" in row and "2-AFC" in row or "2afc" in row
    # 4 units x 2 participants / 4 main trials per session: 2 passing sessions needed.
    assert "0 / 4" in row and "0 / 2" in row


def test_a_unit_at_its_target_counts_as_complete(admin_client, db, participant):
    study = participant.study
    participant.through_instructions()
    participant.pass_practice()
    participant.answer_all()
    participant.complete()
    # As a passing session leaves them: its slots kept (a failing one's are released for others).
    Session.objects.filter(pk=participant.id).update(passed=True)
    SessionUnit.objects.filter(session=participant.session).update(released_at=None)
    held = SessionUnit.objects.filter(session=participant.session).values_list("study_unit", flat=True)
    study.target_per_unit = 1
    study.save()
    page = admin_client.get("/admin/experiments/study/").content.decode()
    row = page.split(f">{study.slug}<", 1)[1].split("</tr>", 1)[0]
    assert f"{len(held)} / {study.study_units.filter(role=StudyUnit.Role.MAIN).count()}" in row
    assert f"1 / {study.sessions_needed}" in row


def test_the_study_page_starts_with_a_progress_summary_and_folds_the_unit_table(admin_client, db):
    study = build_2afc_study(n_units=5)
    page = admin_client.get(f"/admin/experiments/study/{study.pk}/change/").content.decode()
    summary = page.index("desk-progress")
    assert summary < page.index('name="slug"')
    assert "0 of 5</strong> units" in page
    assert len(re.findall(r"<rect ", page)) == 5
    # The per-unit table is still there, folded, with a link to each unit's trials.
    assert "collapse" in page.split("units and progress", 1)[0].rsplit("<fieldset", 1)[-1] or "<details" in page
    assert page.count("see its trials") == study.study_units.count()


def test_the_gallery_shows_a_units_trials_with_the_answer_marked(admin_client, db):
    study = build_2afc_study(n_units=2)
    main_unit = study.study_units.filter(role=StudyUnit.Role.MAIN).first()
    page = admin_client.get(f"/admin/experiments/study/{study.pk}/units/{main_unit.pk}/gallery/").content.decode()
    trials = Trial.objects.filter(study=study, unit=main_unit.unit)
    assert page.count('class="gallery-trial"') == trials.count() == 2
    assert 'data-kind="main"' in page and 'data-kind="catch"' in page
    # One right query marked per trial, and every image of each trial shown.
    assert page.count("answer-key") == 2
    assert page.count("<img") >= sum(t.images.count() for t in trials)
    practice_unit = study.study_units.filter(role=StudyUnit.Role.PRACTICE).first()
    practice = admin_client.get(f"/admin/experiments/study/{study.pk}/units/{practice_unit.pk}/gallery/")
    assert 'data-kind="practice"' in practice.content.decode()


def test_the_gallery_of_another_studys_unit_is_not_found(admin_client, db):
    study, other = build_2afc_study(n_units=1), build_2afc_study(n_units=1)
    unit = other.study_units.first()
    assert admin_client.get(f"/admin/experiments/study/{study.pk}/units/{unit.pk}/gallery/").status_code == 404


def test_the_job_panel_reports_a_running_stage_and_says_done_when_done(admin_client, db):
    study = build_2afc_study(n_units=1)
    job = Job.objects.create(kind=Job.Kind.RENDER_STIMULI, study=study, status=Job.Status.RUNNING)
    job.report("recording activations", 0, 400)
    Job.objects.filter(pk=job.pk).update(stage_started_at=timezone.now() - timedelta(seconds=10))
    job.refresh_from_db()
    job.report("recording activations", 100, 400)
    [row] = admin_client.get(f"/admin/experiments/study/{study.pk}/jobs.json").json()["jobs"]
    assert row["stage"] == "recording activations"
    assert row["progress"] == "100 / 400 (25%)"
    assert re.fullmatch(r"\d+\.\d/s", row["rate"]) and 9.0 <= float(row["rate"][:-2]) <= 10.1
    assert row["eta"].endswith(" s")
    page = admin_client.get(f"/admin/experiments/study/{study.pk}/change/").content.decode()
    assert 'id="job-panel"' in page and "admin_desk/job_panel.js" in page

    job.report("writing stimuli", 5, 5)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.DONE)
    [row] = admin_client.get(f"/admin/experiments/study/{study.pk}/jobs.json").json()["jobs"]
    assert (row["stage"], row["percent"], row["rate"], row["eta"]) == ("done", 100.0, "", "")


def test_no_bearer_token_appears_in_any_admin_page(admin_client, participant):
    participant.through_instructions()
    participant.pass_practice()
    session = participant.session
    token = session.token
    study = session.study
    pages = [
        "/admin/experiments/session/",
        f"/admin/experiments/session/{session.pk}/change/",
        "/admin/experiments/study/",
        f"/admin/experiments/study/{study.pk}/change/",
        f"/admin/experiments/study/{study.pk}/jobs.json",
        f"/admin/experiments/study/{study.pk}/units/{study.study_units.first().pk}/gallery/",
        "/admin/experiments/session/?q=" + session.pseudonym[:8],
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert token not in response.content.decode(), url
    assert Session.objects.filter(token=token).exists()
