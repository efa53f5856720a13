"""`make demo`'s command on the offline defaults: the demo studies, a participant link that works, reruns."""

import io
import re

import pytest
from django.core.management import call_command

from experiments.models import Study
from tests.conftest import Participant

# The smallest pool the demo's practice trials (medium difficulty) can be drawn from.
POOL_SIZE = 900


# Training the demo SAE and rendering four studies on the real network take many minutes on a shared CPU.
@pytest.mark.slow
# Three studies rendered and an SAE trained on the real network: over 10 minutes on a loaded 2-core CPU.
@pytest.mark.timeout(1800)
@pytest.mark.django_db(transaction=True)
def test_the_demo_renders_serves_a_participant_and_reruns_without_new_rows(client):
    out = io.StringIO()
    call_command("setup_demo", pool_size=POOL_SIZE, port=8123, stdout=out)

    demo, mturk = Study.objects.get(slug="demo"), Study.objects.get(slug="demo-mturk")
    assert Study.objects.get(slug="demo-sae").study_units.filter(unit__kind="sae_latent").count() == 48 + 5
    assert (demo.status, demo.recruiter, demo.study_units.filter(role="main").count()) == ("open", "local", 48)
    assert (mturk.status, mturk.recruiter, mturk.trials.count()) == ("open", "mturk", demo.trials.count())
    assert mturk.recruitment.sandbox and mturk.recruitment.launched_at is None
    printed = out.getvalue()
    password = re.search(r"user: admin\s+password: (\S+)", printed).group(1)
    assert client.login(username="admin", password=password)
    assert re.search(r"http://127\.0\.0\.1:8123/s/demo/\?participant=\S+", printed)
    assert "/s/demo-mturk/?hitId=" in printed and "/s/demo-sae/?participant=" in printed
    nameability = Study.objects.get(slug="demo-nameability")
    assert (nameability.status, nameability.protocol) == ("open", "nameability")
    assert nameability.trials.filter(kind="main").count() == 12 * 3
    assert "manage.py build_derived_study demo-nameability --open" in printed

    participant = Participant(demo, "visitor")
    assert participant.start().status_code == 201
    participant.event("consent")
    trial = participant.trial().json()
    for url in trial["references"]["min"] + trial["references"]["max"] + trial["queries"]:
        assert client.get(url).status_code == 200

    localizability = Study.objects.get(slug="demo-localizability")
    assert re.search(r"/s/demo-localizability/\?participant=\S+", printed)
    clicker = Participant(localizability, "clicker")
    assert clicker.start().status_code == 201
    clicker.event("consent")
    trial = clicker.trial().json()
    assert (trial["query"]["width"], trial["query"]["height"]) == (224, 224)
    for url in [trial["query"]["image"], *(u for e in trial["exemplars"] for u in (e["image"], e["overlay"]))]:
        assert client.get(url).status_code == 200

    trials = demo.trials.count(), localizability.trials.count()
    call_command("setup_demo", pool_size=POOL_SIZE, stdout=io.StringIO())
    assert (demo.trials.count(), localizability.trials.count()) == trials and Study.objects.count() == 5
