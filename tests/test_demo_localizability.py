"""The `demo-localizability` study: the localizability protocol on the demo SAE's latents, rendered on
EfficientNet-Lite0 and answered through the API."""

import numpy as np
import pytest

from experiments.management.commands.setup_demo import Command
from experiments.models import SessionTrial, Study
from stimuli.kept_maps import kept_maps
from stimuli.models import Unit
from tests.conftest import Participant
from tests.test_demo_sae import demo_sae  # noqa: F401 (the fixture: the demo SAE, trained, and its study)
from workers.models import Job
from workers.services import start_rendering


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.django_db(transaction=True)
def test_demo_localizability_serves_clicks_on_sae_latents_scored_against_their_maps(demo_sae):  # noqa: F811
    study = Command()._localizability(demo_sae)
    Study.objects.filter(pk=study.pk).update(lock_ms=0, n_main_trials=4, n_catch_trials=1)
    study.refresh_from_db()
    job = start_rendering(study)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE, job.error
    Study.objects.filter(pk=study.pk).update(status=Study.Status.OPEN)
    assert set(study.study_units.values_list("unit__kind", flat=True)) == {Unit.Kind.SAE_LATENT}

    participant = Participant(study, "clicker")
    assert participant.start().status_code == 201
    participant.through_instructions()
    trial = participant.trial().json()
    assert (trial["query"]["width"], trial["query"]["height"]) == (224, 224) and len(trial["exemplars"]) == 6
    key = SessionTrial.objects.get(session_id=participant.id, index=trial["index"]).key
    values = kept_maps([key["map"]])[key["map"]]
    y, x = np.unravel_index(np.argmax(values), values.shape)
    body = {
        "index": trial["index"], "clicks": [[int(x), int(y)]], "rt_ms": 900,
        "client_id": "00000000-0000-4000-8000-000000000001",
        "query_box": {"css_width": 400, "css_height": 400, "device_pixel_ratio": 1, "viewport_width": 1280,
                     "viewport_height": 720},
    }
    reply = participant.client.post(participant.url("/responses"), body, format="json")
    assert reply.status_code == 201 and reply.json()["correct"] is True
