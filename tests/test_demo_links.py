"""Every link `make demo` prints works for its study: pages load, participant links start a session that
can consent, the preview starts none."""

from urllib.parse import parse_qs, urlsplit

import pytest

from experiments.management.commands.setup_demo import demo_links
from experiments.models import Session
from experiments.recruiters import recruiter_for, registered
from tests.builders import build_2afc_study

BASE = "http://testserver"


def arrival(url: str) -> dict[str, str]:
    """The body of POST /sessions the participant page sends for this link (static/participant/shell.js)."""
    path, query = urlsplit(url).path, parse_qs(urlsplit(url).query)
    for recruiter in registered():
        if any(param in query for param in recruiter.url_params.values()):
            fields = {field: query[param][0] for field, param in recruiter.url_params.items() if param in query}
            return {"study": path.split("/")[2], "source": recruiter.name, **fields}
    raise AssertionError(f"{url} names no recruiter's parameters")


@pytest.mark.django_db(transaction=True)
def test_every_link_the_demo_prints_works(admin_client, client):
    demo = build_2afc_study(slug="demo", accepts_unsigned_links=True)
    mturk = build_2afc_study(slug="demo-mturk", recruiter="mturk")
    recruiter_for("mturk").prepare(mturk)
    other = build_2afc_study(slug="demo-other", accepts_unsigned_links=True)
    links = dict(demo_links(demo, mturk, BASE, [other]))
    assert admin_client.get(links["admin"]).status_code == 200
    assert client.get(links["schema"]).status_code == 200
    preview = client.get(links["mturk preview"])
    assert preview.status_code == 200 and 'data-preview="1"' in preview.content.decode()
    for label in ("participant", "signed", "mturk accepted", "demo-other"):
        url = links[label]
        assert client.get(url).status_code == 200, label
        started = client.post("/api/v1/sessions", arrival(url), content_type="application/json")
        assert started.status_code in (200, 201), (label, started.content)
        consent = client.post(
            f"/api/v1/sessions/{started.json()['id']}/events", {"type": "consent"}, content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {started.json()['token']}",
        )
        assert consent.status_code == 201, (label, consent.content)
    assert Session.objects.filter(study=mturk, consented_at__isnull=False).count() == 1
