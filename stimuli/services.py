"""Writes of the engine that cross models, storage and the GPU: training a sparse autoencoder."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import torch
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from stimuli.models import SparseAutoencoder
from stimuli.networks import load_network
from stimuli.pools import open_pool
from stimuli.sae import (
    CODE_VERSION,
    Report,
    SaeConfig,
    evaluate,
    normalisation,
    record_tokens,
    train_sae,
    weights_bytes,
)


class TrainingRefused(ValueError):
    """The SAE cannot be trained as configured; the message says why."""


def sae_config(sae: SparseAutoencoder) -> SaeConfig:
    return SaeConfig(
        architecture=sae.architecture,
        n_latents=sae.n_latents,
        k=sae.k,
        l1_coefficient=sae.l1_coefficient,
        aux_k_coefficient=sae.aux_k_coefficient,
        epochs=sae.epochs,
        batch_size=sae.batch_size,
        learning_rate=sae.learning_rate,
        seed=sae.seed,
    )


def work_dir(sae: SparseAutoencoder) -> Path:
    return Path(settings.WORK_DIR) / "saes" / f"sae-{sae.pk}"


def train_autoencoder(sae: SparseAutoencoder, report: Report) -> None:
    """Record the layer's tokens over the pool, train, measure, and store the weights on the record.

    Resumable: the tokens and the training checkpoints are kept in the work
    folder, so a rerun after a crash continues where the last one stopped. A
    trained SAE is left as it is (train another one to change it).
    """
    if sae.status == SparseAutoencoder.Status.TRAINED:
        return
    SparseAutoencoder.objects.filter(pk=sae.pk).update(status=SparseAutoencoder.Status.TRAINING)
    try:
        _train(sae, report)
    except BaseException:
        SparseAutoencoder.objects.filter(pk=sae.pk).update(status=SparseAutoencoder.Status.FAILED)
        raise


def _train(sae: SparseAutoencoder, report: Report) -> None:
    config = sae_config(sae)
    network = load_network(sae.model)
    source = open_pool(sae.image_pool)
    keys = source.keys()[: sae.n_images or None]
    folder = work_dir(sae)
    spec = sae.model
    tokens = record_tokens(
        network,
        source,
        keys,
        sae.layer,
        folder / "tokens.npy",
        identity=f"{spec.timm_name}|{spec.weights}|{spec.checkpoint_path}",
        progress=lambda stage, done, total: report(stage, done, total, ""),
    )
    if len(tokens) < config.batch_size:
        raise TrainingRefused(
            f"{sae.name}: {len(tokens)} tokens are fewer than one batch ({config.batch_size}); use more images."
        )
    norm = normalisation(tokens)
    module = train_sae(tokens, norm, config, folder / "checkpoint.pt", device=network.device, report=report)
    report("measuring", 0, 1, "")
    metrics = evaluate(module, tokens, norm)
    content = weights_bytes(module, config, norm)
    sha256 = hashlib.sha256(content).hexdigest()
    name = f"saes/{sae.name}-{sha256[:16]}.pt"
    if not default_storage.exists(name):
        default_storage.save(name, ContentFile(content))
    sae.status = SparseAutoencoder.Status.TRAINED
    sae.config = {
        **dataclasses.asdict(config),
        "n_images": len(keys),
        "tokens": sae.tokens,
        "positions_per_image": len(tokens) // len(keys),
        "device": str(network.device),
    }
    sae.code_version = f"{CODE_VERSION}; torch {torch.__version__}"
    sae.input_mean = [float(v) for v in norm.mean]
    sae.input_scale = norm.scale
    sae.weights_file, sae.weights_sha256 = name, sha256
    sae.n_tokens = metrics.n_tokens
    sae.variance_explained = metrics.variance_explained
    sae.mean_l0 = metrics.mean_l0
    sae.dead_fraction = metrics.dead_fraction
    sae.firing_frequency = metrics.firing_frequency
    sae.trained_at = timezone.now()
    sae.save()
    summary = f"R² {metrics.variance_explained:.3f}, L0 {metrics.mean_l0:.1f}, dead {100 * metrics.dead_fraction:.1f}%"
    report("measuring", 1, 1, summary)
