"""The `demo-sae` study: a TopK SAE trained on EfficientNet-Lite0, and a 2-AFC session on its latents through the API."""

import pytest

from experiments.management.commands.setup_demo import DEMO_UNITS, Command
from experiments.models import SessionTrial, Study
from stimuli.models import ImagePool, SparseAutoencoder, Unit, VisionModel
from tests.conftest import Participant
from workers.models import Job
from workers.services import start_rendering

# The demo SAE's own 300 training images; its less obvious practice trial is easy here, so that they suffice.
POOL_SIZE = 300


@pytest.fixture
def demo_sae(isolated_files) -> Study:
    model = VisionModel.objects.create(
        name="efficientnet-lite0", timm_name="tf_efficientnet_lite0",
        weights=VisionModel.Weights.EFFICIENTNET_LITE0_PACKAGE,
    )
    pool = ImagePool.objects.create(name="skimage-crops", source=ImagePool.Source.SKIMAGE_CROPS, size=POOL_SIZE)
    study = Command().sae_study(model, pool)
    # As the API tests do: answers at once (no lock), and a practice round that fits this pool.
    Study.objects.filter(pk=study.pk).update(
        lock_ms=0, params={**study.params, "practice_less_obvious_difficulty": "easy"}
    )
    study.refresh_from_db()
    job = start_rendering(study)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE, job.error
    Study.objects.filter(pk=study.pk).update(status=Study.Status.OPEN)
    study.refresh_from_db()
    return study


# One test, as training and rendering on the real network take minutes on a shared CPU.
@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.django_db(transaction=True)
def test_demo_sae_trains_its_sae_and_serves_a_2afc_session_on_its_latents_through_the_api(demo_sae):
    study = demo_sae
    assert study.sae.status == SparseAutoencoder.Status.TRAINED and study.sae.jobs.get().status == Job.Status.DONE
    assert study.sae.variance_explained > 0.5 and study.sae.mean_l0 == pytest.approx(8, abs=0.01)
    assert study.study_units.filter(role="main", unit__kind=Unit.Kind.SAE_LATENT).count() == DEMO_UNITS
    participant = Participant(study, "visitor")
    assert participant.start().status_code == 201
    participant.through_instructions()
    participant.pass_practice()
    trial = participant.trial().json()
    assert len(trial["references"]["max"]) == 9 and len(trial["queries"]) == 2
    shown = SessionTrial.objects.get(session_id=participant.id, index=trial["index"]).trial.unit
    assert (shown.kind, shown.sae_id, shown.layer) == (Unit.Kind.SAE_LATENT, study.sae_id, "blocks.5")
    assert participant.answer_current(right=True).status_code in (200, 201)
