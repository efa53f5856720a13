"""Headless Chromium opens the admin's analysis report of imported studies: it logs in, the comparison
shows its figures drawn (the server's SVG, nothing built in the browser), and the page has no errors.
With SCREENSHOT_DIR set, it saves a 1366x768 screenshot of the report there."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from experiments.models import Study

IMI = Path(__file__).parent / "data" / "imi" / "responses.csv"


@pytest.mark.chromium
@pytest.mark.django_db(transaction=True)
def test_the_admin_report_draws_its_figures_in_the_browser(live_server, chromium):
    call_command("import_responses", "--format", "imi", str(IMI), stdout=io.StringIO())
    get_user_model().objects.create_superuser("analyst", "analyst@example.org", "report-pass-1")
    ids = ",".join(str(pk) for pk in Study.objects.order_by("pk").values_list("pk", flat=True))
    errors: list[str] = []
    with chromium.new_context(viewport={"width": 1366, "height": 768}) as context:
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "analyst")
        page.fill("#id_password", "report-pass-1")
        page.click("input[type=submit]")
        page.goto(f"{live_server.url}/admin/experiments/study/analysis/?ids={ids}")
        figures = page.locator(".analysis-figure svg")
        assert figures.count() == 6
        for index in range(figures.count()):
            box = figures.nth(index).bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 100
        assert page.get_by_text("Kruskal-Wallis on unit scores").is_visible()
        if os.environ.get("SCREENSHOT_DIR"):
            page.screenshot(path=str(Path(os.environ["SCREENSHOT_DIR"]) / "analysis-report-imi.png"))
    assert errors == []
