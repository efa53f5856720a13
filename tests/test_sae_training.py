"""Sparse autoencoders: recovering a known dictionary, resuming a crashed run, ViT tokens, the training job."""

import hashlib

import numpy as np
import pytest
import torch
from django.core.files.storage import default_storage

from stimuli.maps import MapRequest, record_maps
from stimuli.models import SparseAutoencoder
from stimuli.networks import channel_counts, load_network
from stimuli.pools import open_pool
from stimuli.recording import record_activations
from stimuli.sae import (
    SaeConfig,
    SaeModule,
    evaluate,
    load_weights,
    normalisation,
    record_tokens,
    stored_sae,
    train_sae,
    weights_bytes,
)
from stimuli.tokens import positions, token_layout
from stimuli.unitrefs import SAE_LATENT, UnitRef
from tests.conftest import ended
from tests.factories import ImagePoolFactory
from tests.networks import SquarePool, vit
from workers.models import Job
from workers.services import start_training


def sparse_tokens(n: int, dim: int = 32, n_atoms: int = 64, k: int = 4, seed: int = 0):
    """n tokens, each a positive mix of k of n_atoms random unit atoms."""
    rng = np.random.default_rng(seed)
    atoms = rng.normal(size=(n_atoms, dim))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    chosen = np.argsort(rng.random((n, n_atoms)), axis=1)[:, :k]
    weights = rng.uniform(0.5, 1.5, size=(n, k))
    return np.einsum("nk,nkd->nd", weights, atoms[chosen]).astype(np.float32), atoms


def test_training_recovers_a_known_sparse_dictionary(tmp_path):
    tokens, atoms = sparse_tokens(16384)
    norm = normalisation(tokens)
    config = SaeConfig(n_latents=128, k=4, epochs=12, batch_size=256, learning_rate=3e-3)
    module = train_sae(tokens, norm, config, tmp_path / "checkpoint.pt")
    metrics = evaluate(module, tokens, norm)
    best_cosine = (atoms @ module.decoder.detach().numpy().T).max(axis=1)
    assert (best_cosine > 0.9).mean() >= 0.8
    assert metrics.variance_explained > 0.9
    assert metrics.mean_l0 == pytest.approx(4, abs=0.01)


class Crash(Exception):
    pass


def crash_at(step: int):
    def report(stage: str, done: int, total: int, message: str) -> None:
        if done == step:
            raise Crash

    return report


def test_a_crashed_training_resumes_from_its_checkpoint_with_the_same_weights(tmp_path):
    tokens, _ = sparse_tokens(2048, seed=1)
    norm = normalisation(tokens)
    config = SaeConfig(n_latents=64, k=4, epochs=3, batch_size=128, checkpoint_every=5)
    uninterrupted = train_sae(tokens, norm, config, tmp_path / "a.pt")
    with pytest.raises(Crash):
        train_sae(tokens, norm, config, tmp_path / "b.pt", report=crash_at(23))
    resumed = train_sae(tokens, norm, config, tmp_path / "b.pt")
    for name, value in uninterrupted.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, atol=1e-5, rtol=1e-4)


def test_a_resumed_training_continues_after_its_last_checkpoint(tmp_path):
    tokens, _ = sparse_tokens(2048, seed=1)
    config = SaeConfig(n_latents=64, k=4, epochs=3, batch_size=128, checkpoint_every=5)
    norm = normalisation(tokens)
    with pytest.raises(Crash):
        train_sae(tokens, norm, config, tmp_path / "b.pt", report=crash_at(23))
    steps = []
    train_sae(tokens, norm, config, tmp_path / "b.pt", report=lambda stage, done, *_: steps.append(done))
    assert steps[0] == 22 and steps[-1] == 48


@pytest.mark.parametrize("architecture", ["batchtopk", "relu_l1"])
def test_the_other_architectures_train_and_encode_the_same_after_a_round_trip_through_their_weights_file(
    architecture, tmp_path
):
    tokens, _ = sparse_tokens(2048, seed=2)
    norm = normalisation(tokens)
    config = SaeConfig(architecture=architecture, n_latents=64, k=4, epochs=6, batch_size=128, learning_rate=3e-3)
    module = train_sae(tokens, norm, config, tmp_path / "c.pt")
    loaded = load_weights(weights_bytes(module, config, norm))
    sample = torch.from_numpy(tokens[:100])
    torch.testing.assert_close(loaded.encode(sample), module.encode(norm.apply(sample)))
    assert evaluate(module, tokens, norm).variance_explained > 0.4


def test_an_unknown_architecture_is_refused_by_name():
    with pytest.raises(ValueError, match="'sparse_magic'"):
        SaeModule(8, SaeConfig(architecture="sparse_magic"))


def test_vit_training_tokens_are_its_patch_tokens_without_class_and_register_tokens(tmp_path):
    network = vit()
    pool = SquarePool(8, [(0, 1), (2, 3)])
    tokens = record_tokens(network, pool, pool.keys(), "blocks.0", tmp_path / "tokens.npy")
    assert tokens.shape == (2 * 16, 8)
    # Channel 0 is the white patch's red mean: 1 on the square's patch, 0 elsewhere; never the prefix's 100.
    np.testing.assert_allclose(tokens[:, 0].reshape(2, 4, 4)[0], np.eye(4)[0:1].T @ np.eye(4)[1:2], atol=1e-3)
    assert tokens.max() < 2


@pytest.fixture
def trained(db, isolated_files, tiny_model, django_capture_on_commit_callbacks):
    pool = ImagePoolFactory(name="crops-24", size=24)
    sae = SparseAutoencoder.objects.create(
        name="tiny-sae", model=tiny_model, layer="blocks.2", image_pool=pool, n_latents=64, k=4, epochs=2,
        batch_size=256,
    )
    with django_capture_on_commit_callbacks(execute=True):
        job = start_training(sae)
    job.refresh_from_db()
    sae.refresh_from_db()
    return sae, job


def test_the_training_job_ends_done_with_its_last_epoch_reported(trained):
    _, job = trained
    assert job.kind == Job.Kind.TRAIN_SAE and job.status == Job.Status.DONE, job.error
    assert job.stage == "measuring" and "R²" in job.message and "dead" in job.message


def test_a_trained_sae_records_its_metrics_normalisation_and_weights(trained):
    sae, _ = trained
    assert sae.status == SparseAutoencoder.Status.TRAINED
    assert 0 < sae.variance_explained <= 1 and sae.mean_l0 == pytest.approx(4, abs=0.01)
    assert 0 <= sae.dead_fraction < 1 and len(sae.firing_frequency) == 64
    assert sae.n_tokens == 24 * sae.config["positions_per_image"]
    assert len(sae.input_mean) == channel_counts(load_network(sae.model), [sae.layer])[sae.layer]
    with default_storage.open(sae.weights_file, "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == sae.weights_sha256
    assert sae.code_version.startswith("stimuli.sae")


def test_a_latent_units_scalar_and_map_are_its_codes_over_the_layers_positions(trained, tmp_path):
    sae, _ = trained
    network = load_network(sae.model)
    source = open_pool(sae.image_pool)
    keys = source.keys()[:4]
    latent = int(np.argmax(sae.firing_frequency))
    unit = UnitRef(sae.layer, latent, SAE_LATENT, sae.weights_file)
    [maps] = record_maps(network, source, [MapRequest(unit, tuple(keys))], tmp_path / "maps")
    scalars = record_activations(network, source, [unit], tmp_path / "a.npy", pooling="max")
    captured = []
    images = torch.stack([network.transform(source.load(key)) for key in keys])
    handle = dict(network.module.named_modules())[sae.layer].register_forward_hook(
        lambda _m, _i, out: captured.append(positions(out, token_layout(network.module)))
    )
    with torch.inference_mode():
        network.module(network.inputs(images))
    handle.remove()
    patches, grid = captured[0]
    codes = stored_sae(sae.weights_file, "cpu").encode(patches.reshape(-1, patches.shape[-1]))[:, latent]
    expected = codes.reshape(len(keys), *grid).numpy()
    np.testing.assert_allclose(maps.maps.astype(np.float32), expected, rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(scalars[:4, 0], expected.reshape(len(keys), -1).max(1), rtol=1e-4, atol=1e-5)


def test_a_trained_sae_is_not_trained_again(trained, django_capture_on_commit_callbacks):
    sae, _ = trained
    sha256 = sae.weights_sha256
    with django_capture_on_commit_callbacks(execute=True):
        job = start_training(sae)
    job.refresh_from_db()
    sae.refresh_from_db()
    assert job.status == Job.Status.DONE and sae.weights_sha256 == sha256


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_celery_worker_on_the_gpu_queue_trains_an_sae_queued_by_start_training(
    isolated_files, tiny_model, celery_worker_on_redis
):
    pool = ImagePoolFactory(name="crops-16", size=16)
    sae = SparseAutoencoder.objects.create(
        name="queued-sae", model=tiny_model, layer="blocks.2", image_pool=pool, n_latents=32, k=4, epochs=1,
        batch_size=256,
    )
    job = ended(start_training(sae), within_s=300)
    assert job.status == Job.Status.DONE, job.error
    sae.refresh_from_db()
    assert sae.status == SparseAutoencoder.Status.TRAINED and sae.weights_sha256
