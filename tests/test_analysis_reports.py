"""Reports researchers look at: the admin's analysis pages (a study, a comparison, a unit, the live
view) and `manage.py analyze --report / --json`."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from experiments.models import Study

IMI = Path(__file__).parent / "data" / "imi" / "responses.csv"


def figures(html: str) -> int:
    """matplotlib's figures in a page (the admin's own icons are SVG too)."""
    return html.count('<svg xmlns:xlink="http://www.w3.org/1999/xlink"')


@pytest.fixture
def imported(db):
    call_command("import_responses", "--format", "imi", str(IMI), stdout=io.StringIO())
    return {study.slug: study for study in Study.objects.all()}


@pytest.fixture
def resnet(imported):
    return imported["imi-resnet50-natural"]


def page(admin_client, url: str) -> str:
    response = admin_client.get(url)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def test_a_study_report_shows_its_model_score_with_cis_and_the_rows_it_counted(admin_client, resnet):
    body = page(admin_client, f"/admin/experiments/study/{resnet.pk}/analysis/")
    assert "model score (mean of 3 unit scores)" in body and "0.833" in body
    assert "BCa" in body and "percentile" in body
    assert "main phase, main trials (no catch trials), passing sessions: 12 responses of" in body
    assert "catch trials (3 responses)" in body


def test_a_study_report_draws_its_figures_as_inline_svg(admin_client, resnet):
    body = page(admin_client, f"/admin/experiments/study/{resnet.pk}/analysis/")
    assert figures(body) == 3  # model scores, scores against depth, distribution of unit scores
    assert "<?xml" not in body


def test_a_report_can_count_every_session(admin_client, resnet):
    body = page(admin_client, f"/admin/experiments/study/{resnet.pk}/analysis/?sessions=all")
    assert "all sessions, failing ones included: 18 responses of" in body


def test_an_unknown_session_filter_is_not_found(admin_client, resnet):
    assert admin_client.get(f"/admin/experiments/study/{resnet.pk}/analysis/?sessions=some").status_code == 404


def test_the_comparison_action_opens_the_report_of_the_selected_studies(admin_client, imported):
    ids = sorted(study.pk for study in imported.values())
    response = admin_client.post(
        "/admin/experiments/study/", {"action": "analyse_studies", "_selected_action": ids}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/admin/experiments/study/analysis/?ids={ids[0]},{ids[1]}"
    body = page(admin_client, response["Location"])
    assert "Kruskal-Wallis on unit scores" in body and "Conover post hoc, Holm-adjusted" in body
    assert figures(body) == 1 + 1 + 2 * 2  # model scores, post hoc matrix, two figures per study


def test_a_comparison_of_unknown_studies_is_not_found(admin_client, resnet):
    assert admin_client.get(f"/admin/experiments/study/analysis/?ids={resnet.pk},999999").status_code == 404


def test_a_unit_drill_down_shows_its_score_with_ci_and_its_trials(admin_client, resnet):
    unit = resnet.study_units.get(unit__layer="layer1_0_conv1").unit
    body = page(admin_client, f"/admin/experiments/study/{resnet.pk}/analysis/units/{unit.pk}/")
    assert "Score 0.750" in body and "95% CI [" in body
    assert "Its trials (6)" in body  # two batches by three sessions, the failing one's included
    assert body.count("<td>no</td>") == 2  # the failing session's trials do not count


def test_the_report_links_each_unit_to_its_drill_down(admin_client, resnet):
    unit = resnet.study_units.get(unit__layer="layer2_1_conv2").unit
    body = page(admin_client, f"/admin/experiments/study/{resnet.pk}/analysis/")
    assert f"/admin/experiments/study/{resnet.pk}/analysis/units/{unit.pk}/" in body


def test_a_unit_of_another_study_is_not_found(admin_client, imported):
    resnet, googlenet = imported["imi-resnet50-natural"], imported["imi-googlenet-natural"]
    unit = googlenet.study_units.first().unit
    assert admin_client.get(f"/admin/experiments/study/{resnet.pk}/analysis/units/{unit.pk}/").status_code == 404


def test_the_live_view_lists_each_units_running_score_and_ci_width_least_measured_first(admin_client, resnet):
    body = page(admin_client, f"/admin/experiments/study/{resnet.pk}/live/")
    assert "running score" in body and "CI width" in body
    widths = [float(part.split('"')[0]) for part in body.split('<meter min="0" max="1" value="')[1:]]
    assert len(widths) == 3 and widths == sorted(widths, reverse=True)
    assert "4 / 30" in body


def test_the_study_page_links_to_its_report_and_live_view(admin_client, resnet):
    body = page(admin_client, f"/admin/experiments/study/{resnet.pk}/change/")
    assert f"/admin/experiments/study/{resnet.pk}/analysis/" in body and f"/admin/experiments/study/{resnet.pk}/live/" in body


def test_analysis_pages_need_an_admin_login(client, resnet):
    response = client.get(f"/admin/experiments/study/{resnet.pk}/analysis/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_analyze_writes_a_self_contained_html_report(imported, tmp_path):
    report = tmp_path / "report.html"
    call_command("analyze", "imi-resnet50-natural", "imi-googlenet-natural", "--report", str(report),
                 "--resamples", "500", stdout=io.StringIO(), stderr=io.StringIO())
    html = report.read_text()
    assert html.startswith("<!DOCTYPE html>") and figures(html) == 6
    assert "Kruskal-Wallis" in html and "<link" not in html and "<script" not in html


def test_analyze_json_without_studies_analyses_every_study(imported):
    out = io.StringIO()
    call_command("analyze", "--json", "--resamples", "500", stdout=out)
    result = json.loads(out.getvalue())
    assert [s["name"] for s in result["studies"]] == ["imi-resnet50-natural", "imi-googlenet-natural"]
    assert result["across"]["comparison"]["posthoc"]["p_adjust"] == "holm"


def test_analyze_json_is_seeded(imported):
    def run(seed: str) -> dict:
        out = io.StringIO()
        call_command("analyze", "imi-resnet50-natural", "--json", "--seed", seed, "--resamples", "500", stdout=out)
        return json.loads(out.getvalue())["studies"][0]["model_score"]

    assert run("1") == run("1") and run("1")["seed"] == 1


def test_analyze_needs_something_to_write(imported):
    with pytest.raises(CommandError, match="--json, --report FILE, or both"):
        call_command("analyze", "imi-resnet50-natural")


def test_analyze_refuses_unknown_studies(db):
    with pytest.raises(CommandError, match="unknown studies: nope"):
        call_command("analyze", "nope", "--json")


def test_web_processes_do_not_load_the_analysis_libraries():
    script = (
        "import django, sys; django.setup(); import psyplatform.urls; from django.contrib import admin; "
        "admin.autodiscover(); print(sorted(m for m in ('matplotlib', 'scipy', 'pandas') if m in sys.modules))"
    )
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                           env={"DJANGO_SETTINGS_MODULE": "psyplatform.settings", "DEBUG": "true", "PATH": "/usr/bin"})
    assert found.stdout.strip() == "[]"


@pytest.fixture
def failed_session(participant):
    participant.through_instructions()  # at once: the instruction-time check fails
    participant.pass_practice()
    participant.answer_all()
    participant.complete()
    return participant


def test_a_sessions_failed_checks_are_the_reasons_its_responses_do_not_count(failed_session):
    participant = failed_session
    out = io.StringIO()
    call_command("analyze", participant.study.slug, "--json", "--resamples", "200", stdout=out)
    [study] = json.loads(out.getvalue())["studies"]
    assert study["rows"]["n_responses"] == 0
    assert study["rows"]["excluded_sessions"]["instruction_time"] == 1
    assert study["rows"]["excluded_responses"]["session: instruction_time"] == 40
    assert study["rows"]["excluded_responses"]["catch trials"] == 5


def test_a_report_with_no_counted_response_still_renders(failed_session, admin_client):
    body = page(admin_client, f"/admin/experiments/study/{failed_session.study.pk}/analysis/")
    assert "passing sessions: 0 responses of" in body and "instruction_time (1)" in body
    assert page(admin_client, f"/admin/experiments/study/{failed_session.study.pk}/analysis/?sessions=all").count(
        "all sessions, failing ones included: 40 responses of") == 1
