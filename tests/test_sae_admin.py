"""The SAE pages of the admin: metrics of a trained SAE, its settings fixed, training queued by an action."""

import pytest

from stimuli.models import SparseAutoencoder
from tests.factories import ImagePoolFactory, SparseAutoencoderFactory
from workers.models import Job

pytestmark = pytest.mark.django_db


def test_a_trained_saes_page_shows_its_metrics(admin_client):
    sae = SparseAutoencoderFactory(variance_explained=0.8123, mean_l0=8.0, dead_fraction=0.25, n_tokens=14700)
    response = admin_client.get(f"/admin/stimuli/sparseautoencoder/{sae.pk}/change/")
    assert response.status_code == 200
    for shown in (b"0.8123", b"14700", b"6 of 8 latents fire", b"most frequent 50.00%"):
        assert shown in response.content


def test_the_sae_list_shows_r2_and_dead_latents(admin_client):
    SparseAutoencoderFactory(variance_explained=0.8123, dead_fraction=0.25)
    response = admin_client.get("/admin/stimuli/sparseautoencoder/")
    assert b"81.2%" in response.content and b"25.0%" in response.content


def test_a_trained_saes_training_settings_are_read_only(admin_client):
    sae = SparseAutoencoderFactory()
    response = admin_client.get(f"/admin/stimuli/sparseautoencoder/{sae.pk}/change/")
    assert b'name="n_latents"' not in response.content


def test_the_train_action_trains_each_selected_sae_in_a_job(
    admin_client, isolated_files, tiny_model, django_capture_on_commit_callbacks
):
    # Without Redis the queued task runs in-process once the action's transaction commits: the real training.
    saes = [
        SparseAutoencoderFactory(
            model=tiny_model, layer="blocks.2", image_pool=ImagePoolFactory(name="crops-16", size=16), n_latents=32,
            k=4, epochs=1, batch_size=256, status=SparseAutoencoder.Status.DRAFT, firing_frequency=[],
        )
        for _ in range(2)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/stimuli/sparseautoencoder/", {"action": "train", "_selected_action": [s.pk for s in saes]},
            follow=True,
        )
    for sae in saes:
        job = Job.objects.get(sae=sae)
        assert job.kind == Job.Kind.TRAIN_SAE and f"training queued as job #{job.pk}".encode() in response.content
        assert job.status == Job.Status.DONE, job.error
        sae.refresh_from_db()
        assert sae.status == SparseAutoencoder.Status.TRAINED and sae.weights_sha256
