"""Sparse autoencoders on a layer's activations: tokens, training, metrics, weights, and latents as units.

An SAE here reads one layer of a vision model at every spatial position: a
CNN's (N, C, H, W) maps become N*H*W tokens of C dimensions, a ViT's patch
tokens (class and register tokens left out, stimuli.tokens) N*P tokens. Tokens
are centred by their per-dimension mean and divided by their RMS, so that
every layer trains with the same learning rate; both statistics are saved
with the weights and applied whenever the SAE encodes.

The model is a small implementation of Gao et al. 2024 ("Scaling and
evaluating sparse autoencoders"): a learnt pre-encoder bias (initialised at
the data mean, i.e. 0 after centring), an encoder initialised as the
decoder's transpose, unit-norm decoder rows (renormalised after every step,
their gradient's parallel component removed), and the AuxK loss that makes
latents dead for a whole pass over the data predict the residual. The
activation is registered by name (SPARSITIES): TopK (per token), BatchTopK
(k per token on average over a batch, a learnt threshold at inference;
Bussmann et al. 2024), ReLU + L1. Why not the `overcomplete` library: see the README.

Training streams the tokens to an on-disk array first (resumable like the
scalar pass), then runs seeded epochs over it, checkpointing every
`checkpoint_every` steps: a crashed job resumes at its last checkpoint and
ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from django.core.files.storage import default_storage

from stimuli.networks import Network, NetworkError, hooked, layer_shapes
from stimuli.pools import ImageSource
from stimuli.recording import ActivationFile, Progress, fingerprint, image_batches, no_progress
from stimuli.sampling import seeded_rng
from stimuli.tokens import positions, token_layout
from stimuli.unitrefs import SAE_LATENT, UnitRef
from stimuli.units import Reader, UnitError, UnitKind

# Bumped whenever a change to this module changes what training produces.
CODE_VERSION = "stimuli.sae 1"
WEIGHTS_FORMAT = 1
TOKENS_STAGE = "recording tokens"
TRAINING_STAGE = "training"
# Tokens encoded at once when an SAE reads a layer during recording.
ENCODE_CHUNK = 8192

# progress(stage, done, total, message): Job.report fits.
Report = Callable[[str, int, int, str], None]


def no_report(stage: str, done: int, total: int, message: str) -> None:
    """A report callback that ignores everything."""


@dataclass(frozen=True)
class SaeConfig:
    """What shapes an SAE's training; stored with its weights and on its record."""

    architecture: str = "topk"
    n_latents: int = 1024
    k: int = 16
    l1_coefficient: float = 1e-3
    aux_k_coefficient: float = 1 / 32
    epochs: int = 10
    batch_size: int = 1024
    learning_rate: float = 1e-3
    seed: int = 0
    checkpoint_every: int = 200  # steps


# ---- the model


class Sparsity(ABC):
    """How pre-activations become sparse codes, and the penalty that keeps them sparse."""

    name: ClassVar[str]
    revives_dead: ClassVar[bool] = True  # whether the AuxK loss applies

    def __init__(self, config: SaeConfig) -> None:
        self.config = config

    @abstractmethod
    def codes(self, pre: torch.Tensor, module: SaeModule) -> torch.Tensor:
        """(N, n_latents) non-negative codes from the encoder's pre-activations."""

    def penalty(self, codes: torch.Tensor) -> torch.Tensor:
        return codes.new_zeros(())


def _top_k(values: torch.Tensor, k: int) -> torch.Tensor:
    """values with all but each row's k largest set to 0."""
    top = torch.topk(values, min(k, values.shape[-1]), dim=-1)
    return torch.zeros_like(values).scatter(-1, top.indices, top.values)


class TopK(Sparsity):
    name = "topk"

    def codes(self, pre: torch.Tensor, module: SaeModule) -> torch.Tensor:
        return _top_k(torch.relu(pre), self.config.k)


class BatchTopK(Sparsity):
    """k * batch codes kept over a training batch; at inference, codes above the learnt threshold."""

    name = "batchtopk"
    momentum = 0.99

    def codes(self, pre: torch.Tensor, module: SaeModule) -> torch.Tensor:
        active = torch.relu(pre)
        if not module.training:
            return torch.where(active > module.threshold, active, 0.0)
        kept = torch.topk(active.flatten(), min(self.config.k * len(active), active.numel()))
        codes = torch.zeros_like(active).flatten().scatter(0, kept.indices, kept.values).view_as(active)
        positive = kept.values[kept.values > 0]
        if len(positive):
            # The smallest kept code, averaged over batches: the inference threshold.
            smallest = positive.min().detach()
            if module.threshold_seen:
                module.threshold.mul_(self.momentum).add_((1 - self.momentum) * smallest)
            else:
                module.threshold.copy_(smallest)
                module.threshold_seen.fill_(True)
        return codes


class ReluL1(Sparsity):
    name = "relu_l1"
    revives_dead = False

    def codes(self, pre: torch.Tensor, module: SaeModule) -> torch.Tensor:
        return torch.relu(pre)

    def penalty(self, codes: torch.Tensor) -> torch.Tensor:
        # Decoder rows have unit norm, so the plain L1 of the codes is Anthropic's norm-weighted one.
        return self.config.l1_coefficient * codes.abs().sum(-1).mean()


SPARSITIES: dict[str, type[Sparsity]] = {cls.name: cls for cls in (TopK, BatchTopK, ReluL1)}


def sparsity_of(config: SaeConfig) -> Sparsity:
    if config.architecture not in SPARSITIES:
        raise ValueError(f"Unknown SAE architecture {config.architecture!r} (known: {', '.join(SPARSITIES)}).")
    return SPARSITIES[config.architecture](config)


class SaeModule(torch.nn.Module):
    """x -> codes z -> x_hat = z W_dec + b_pre, on normalised tokens of `dim` dimensions."""

    threshold: torch.Tensor
    threshold_seen: torch.Tensor

    def __init__(self, dim: int, config: SaeConfig) -> None:
        super().__init__()
        self.sparsity = sparsity_of(config)
        generator = torch.Generator().manual_seed(config.seed % 2**63)
        decoder = torch.randn(config.n_latents, dim, generator=generator)
        decoder /= decoder.norm(dim=1, keepdim=True)
        self.decoder = torch.nn.Parameter(decoder)  # (n_latents, dim), unit-norm rows
        self.encoder = torch.nn.Parameter(decoder.clone())  # the decoder's transpose, as a (n_latents, dim) weight
        self.encoder_bias = torch.nn.Parameter(torch.zeros(config.n_latents))
        self.pre_bias = torch.nn.Parameter(torch.zeros(dim))
        self.register_buffer("threshold", torch.zeros(()))
        self.register_buffer("threshold_seen", torch.zeros((), dtype=torch.bool))

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x - self.pre_bias, self.encoder, self.encoder_bias)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.sparsity.codes(self.pre_activations(x), self)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return codes @ self.decoder + self.pre_bias

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pre = self.pre_activations(x)
        codes = self.sparsity.codes(pre, self)
        return pre, codes, self.decode(codes)

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        self.decoder.div_(self.decoder.norm(dim=1, keepdim=True).clamp_min(1e-12))

    @torch.no_grad()
    def project_decoder_gradient(self) -> None:
        """Remove the gradient's component along each decoder row, which renormalising would undo."""
        if self.decoder.grad is not None:
            along = (self.decoder.grad * self.decoder).sum(dim=1, keepdim=True)
            self.decoder.grad -= along * self.decoder


# ---- tokens


@dataclass(frozen=True)
class Normalisation:
    mean: np.ndarray  # (dim,)
    scale: float

    def apply(self, tokens: torch.Tensor) -> torch.Tensor:
        mean = torch.as_tensor(self.mean, dtype=tokens.dtype, device=tokens.device)
        return (tokens - mean) / self.scale


def record_tokens(
    network: Network,
    source: ImageSource,
    keys: Sequence[str],
    layer: str,
    path: Path,
    *,
    identity: str = "",
    batch_size: int | None = None,
    progress: Progress = no_progress,
) -> np.ndarray:
    """Every position's activation vector of `layer` on these images, (n_images * P, C) float32, resumable."""
    positions_per_image, dim = token_shape(network, layer)
    stamp = fingerprint(identity, keys, [UnitRef(layer, -1)], TOKENS_STAGE)
    output = ActivationFile(path, stamp, (len(keys) * positions_per_image, dim))
    rows = output.rows_done()
    if rows is None:
        output.create()
        rows = 0
    done = rows // positions_per_image
    progress(TOKENS_STAGE, done, len(keys))
    if done == len(keys):
        return output.read()
    layout = token_layout(network.module)
    captured: list[torch.Tensor] = []

    def capture(_: str, out: torch.Tensor) -> None:
        patches, _grid = positions(out, layout)
        captured.append(patches.reshape(-1, patches.shape[-1]).float().cpu())

    loader = image_batches(network, source, keys[done:], batch_size)
    with hooked(network.module, [layer], capture), torch.inference_mode():
        for images in loader:
            network.module(network.inputs(images))
            output.write(done * positions_per_image, captured.pop().numpy())
            done += len(images)
            progress(TOKENS_STAGE, done, len(keys))
    return output.read()


def token_shape(network: Network, layer: str) -> tuple[int, int]:
    """(positions per image, dimensions) of a layer, from one forward pass of a blank image."""
    shape = layer_shapes(network, [layer])[layer]
    # Only the shape is needed: positions() of a tensor with no data (the meta device) gives it.
    patches, _grid = positions(torch.empty(shape, device="meta"), token_layout(network.module))
    return int(patches.shape[1]), int(patches.shape[2])


def normalisation(tokens: np.ndarray, chunk: int = 65536) -> Normalisation:
    """Per-dimension mean, and the RMS per dimension of the centred tokens, streamed over the array."""
    total = np.zeros(tokens.shape[1], dtype=np.float64)
    squares = np.zeros(tokens.shape[1], dtype=np.float64)
    for start in range(0, len(tokens), chunk):
        block = np.asarray(tokens[start : start + chunk], dtype=np.float64)
        total += block.sum(0)
        squares += (block**2).sum(0)
    mean = total / len(tokens)
    variance = np.maximum(squares / len(tokens) - mean**2, 0.0)
    scale = float(math.sqrt(variance.mean())) or 1.0
    return Normalisation(mean.astype(np.float32), scale)


# ---- training


@dataclass(frozen=True)
class Metrics:
    variance_explained: float  # 1 - SSE / SST, SST around each dimension's own mean
    mean_l0: float
    dead_fraction: float
    firing_frequency: list[float]
    n_tokens: int


class _Checkpoint:
    """Model, optimiser and position in the run, replaced atomically."""

    def __init__(self, path: Path, stamp: str) -> None:
        self.path, self.stamp = path, stamp

    def load(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = torch.load(self.path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError):
            return None
        return state if state.get("stamp") == self.stamp else None

    def save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        torch.save({**state, "stamp": self.stamp}, partial)
        os.replace(partial, self.path)


def _batch_rows(n_tokens: int, config: SaeConfig, epoch: int) -> list[np.ndarray]:
    """The epoch's batches of token rows, shuffled by (seed, epoch): the same in a resumed run."""
    order = seeded_rng(config.seed, epoch).permutation(n_tokens)
    # Sorted within a batch: the same set of rows, read from the array front to back.
    return [np.sort(order[start : start + config.batch_size]) for start in range(0, n_tokens, config.batch_size)]


def train_sae(
    tokens: np.ndarray,
    norm: Normalisation,
    config: SaeConfig,
    checkpoint_path: Path,
    *,
    device: torch.device | None = None,
    report: Report = no_report,
) -> SaeModule:
    """An SAE trained on (n, dim) tokens, resuming from checkpoint_path when it holds this run's checkpoint."""
    device = device or torch.device("cpu")
    n_tokens, dim = tokens.shape
    module = SaeModule(dim, config).to(device)
    optimiser = torch.optim.Adam(module.parameters(), lr=config.learning_rate)
    checkpoint = _Checkpoint(
        checkpoint_path, fingerprint(CODE_VERSION, [str(tokens.shape)], [], json_config(config), str(norm.scale))
    )
    # Tokens since each latent last fired: dead once a whole pass over the data went by.
    since_fired = torch.zeros(config.n_latents, dtype=torch.long, device=device)
    epoch, step = 0, 0
    state = checkpoint.load()
    if state is not None:
        module.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        since_fired = state["since_fired"].to(device)
        epoch, step = int(state["epoch"]), int(state["step"])
    steps_per_epoch = math.ceil(n_tokens / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    aux_k = max(config.k, dim // 2)
    module.train()
    while epoch < config.epochs:
        batches = _batch_rows(n_tokens, config, epoch)
        sse, sst, losses = 0.0, 0.0, 0.0
        for rows in batches[step:]:
            x = norm.apply(torch.from_numpy(np.asarray(tokens[rows])).to(device))
            pre, codes, x_hat = module(x)
            mse = (x_hat - x).pow(2).mean()
            loss = mse + module.sparsity.penalty(codes)
            fired = (codes > 0).any(dim=0)
            since_fired = torch.where(fired, 0, since_fired + len(x))
            dead = since_fired >= n_tokens
            if module.sparsity.revives_dead and bool(dead.any()):
                residual = (x - x_hat).detach()
                aux_codes = _top_k(torch.relu(torch.where(dead, pre, -torch.inf)), min(aux_k, int(dead.sum())))
                aux = (aux_codes @ module.decoder - residual).pow(2).mean() / residual.pow(2).mean().clamp_min(1e-12)
                loss = loss + config.aux_k_coefficient * torch.nan_to_num(aux)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            module.project_decoder_gradient()
            optimiser.step()
            module.normalise_decoder()
            step += 1
            sse += float((x_hat.detach() - x).pow(2).sum())
            sst += float(x.pow(2).sum())
            losses += float(loss.detach()) * len(x)
            done = epoch * steps_per_epoch + step
            if step % config.checkpoint_every == 0 and step < len(batches):
                checkpoint.save(_state(module, optimiser, since_fired, epoch, step))
            report(TRAINING_STAGE, done, total_steps, "")
        epoch, step = epoch + 1, 0
        checkpoint.save(_state(module, optimiser, since_fired, epoch, step))
        dead_share = float((since_fired >= n_tokens).float().mean())
        # Around 0, which is the data mean once normalised: an estimate of R² while training.
        report(
            TRAINING_STAGE,
            epoch * steps_per_epoch,
            total_steps,
            f"epoch {epoch}/{config.epochs}: loss {losses / max(1, n_tokens):.4f}, "
            f"R² {1 - sse / max(sst, 1e-12):.3f}, dead {100 * dead_share:.1f}%",
        )
    module.eval()
    return module


def _state(
    module: SaeModule, optimiser: torch.optim.Optimizer, since_fired: torch.Tensor, epoch: int, step: int
) -> dict[str, Any]:
    return {
        "model": module.state_dict(),
        "optimiser": optimiser.state_dict(),
        "since_fired": since_fired.cpu(),
        "epoch": epoch,
        "step": step,
    }


def json_config(config: SaeConfig) -> str:
    return repr(sorted(dataclasses.asdict(config).items()))


@torch.no_grad()
def evaluate(module: SaeModule, tokens: np.ndarray, norm: Normalisation, chunk: int = 8192) -> Metrics:
    """Metrics over every token: variance explained around per-dimension means, L0, firing frequencies."""
    was_training = module.training
    module.eval()
    device = module.decoder.device
    dim = tokens.shape[1]
    sums = torch.zeros(dim, dtype=torch.float64)
    squares = torch.zeros(dim, dtype=torch.float64)
    sse = torch.zeros(dim, dtype=torch.float64)
    fires = torch.zeros(module.decoder.shape[0], dtype=torch.float64)
    for start in range(0, len(tokens), chunk):
        x = norm.apply(torch.from_numpy(np.array(tokens[start : start + chunk])).to(device))
        _, codes, x_hat = module(x)
        sums += x.double().sum(0).cpu()
        squares += x.double().pow(2).sum(0).cpu()
        sse += (x_hat - x).double().pow(2).sum(0).cpu()
        fires += (codes > 0).double().sum(0).cpu()
    module.train(was_training)
    n = len(tokens)
    sst = squares - sums**2 / n
    frequency = fires / n
    return Metrics(
        variance_explained=float(1 - sse.sum() / sst.sum().clamp_min(1e-12)),
        mean_l0=float(fires.sum() / n),
        dead_fraction=float((fires == 0).double().mean()),
        firing_frequency=[round(float(f), 6) for f in frequency],
        n_tokens=n,
    )


# ---- weights


def weights_bytes(module: SaeModule, config: SaeConfig, norm: Normalisation) -> bytes:
    """The weights file: config, normalisation and state dict, loadable with weights_only."""
    buffer = io.BytesIO()
    torch.save(
        {
            "format": WEIGHTS_FORMAT,
            "config": dataclasses.asdict(config),
            "dim": int(module.decoder.shape[1]),
            "mean": torch.from_numpy(norm.mean),
            "scale": norm.scale,
            "state_dict": module.state_dict(),
        },
        buffer,
    )
    return buffer.getvalue()


@dataclass(frozen=True)
class LoadedSae:
    module: SaeModule
    norm: Normalisation

    @torch.inference_mode()
    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, dim) raw layer tokens -> (N, n_latents) codes."""
        return self.module.encode(self.norm.apply(tokens.float()))


def load_weights(content: bytes, device: torch.device | None = None) -> LoadedSae:
    state: dict[str, Any] = torch.load(io.BytesIO(content), map_location="cpu", weights_only=True)
    if state.get("format") != WEIGHTS_FORMAT:
        raise UnitError(f"Not an SAE weights file of format {WEIGHTS_FORMAT}.")
    config = SaeConfig(**state["config"])
    module = SaeModule(int(state["dim"]), config)
    module.load_state_dict(state["state_dict"])
    module.eval().to(device or torch.device("cpu"))
    return LoadedSae(module, Normalisation(state["mean"].numpy(), float(state["scale"])))


@functools.lru_cache(maxsize=8)
def stored_sae(name: str, device: str) -> LoadedSae:
    """An SAE's weights file in the default storage (names carry the weights' hash, so caching is safe)."""
    if not name or not default_storage.exists(name):
        raise UnitError(f"No SAE weights file {name!r} in the storage; train the SAE first.")
    with default_storage.open(name, "rb") as handle:
        return load_weights(handle.read(), torch.device(device))


# ---- latents as units


class LatentReader(Reader):
    def __init__(self, sae: LoadedSae, latents: torch.Tensor) -> None:
        self.sae, self.latents = sae, latents

    def at_positions(self, patches: torch.Tensor) -> torch.Tensor:
        batch, n_positions, dim = patches.shape
        expected = self.sae.module.decoder.shape[1]
        if dim != expected:
            raise NetworkError(f"The layer gives {dim} channels; the SAE reads {expected}.")
        flat = patches.reshape(-1, dim)
        picked = [
            self.sae.encode(flat[start : start + ENCODE_CHUNK]).index_select(1, self.latents)
            for start in range(0, len(flat), ENCODE_CHUNK)
        ]
        return torch.cat(picked).reshape(batch, n_positions, len(self.latents))


class LatentKind(UnitKind):
    name = SAE_LATENT

    def reader(self, source: str, indices: Sequence[int], device: torch.device) -> Reader:
        sae = stored_sae(source, str(device))
        n_latents = sae.module.decoder.shape[0]
        outside = [index for index in indices if not 0 <= index < n_latents]
        if outside:
            raise UnitError(f"The SAE {source} has {n_latents} latents; no latent {outside[0]}.")
        return LatentReader(sae, torch.tensor(list(indices), device=device))
