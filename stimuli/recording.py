"""Record every pool image's activation for a set of units, streamed to an on-disk array.

One forward pass per batch of images serves every unit: forward hooks on the
needed layers keep only the sampled units (stimuli.units: channels or SAE
latents), averaged over space (over the patch tokens for a ViT, its class and
register tokens left out: stimuli.tokens). Rows go to a float32 .npy memmap of shape
(n_images, n_units) that is opened only around each batch's write, so memory
stays flat in the pool size. A small JSON marker, rewritten after each batch
is flushed, lets a crashed or retried run continue after the last finished
batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from stimuli.networks import Network, hooked
from stimuli.pools import ImageSource
from stimuli.tokens import token_layout
from stimuli.unitrefs import UnitRef
from stimuli.units import Readouts, pooling_function

Progress = Callable[[str, int, int], None]
STAGE = "recording activations"


def loader_defaults(device: torch.device) -> tuple[int, int]:
    """(batch size, decoding worker processes) that measured fastest on the device.

    CPU: batches of 8 to 32 run about equally fast, 64 at 0.7x (measured with
    reuse_freed_buffers on a 2-core machine); 16 keeps each batch's decoding
    short. No decoding processes: the forward pass's OpenMP threads already
    fill every core, and a process decoding beside them preempts one mid-step
    while the others wait for it at the step's barrier. Each batch is decoded
    between forward passes instead, by torch's resampling on torch's own
    threads (stimuli.resampling): 0.89 to 0.91 of the raw forward pass's
    images/s, and no second copy of torch in memory. With Pillow's resampling,
    this was 0.78 to 0.83, against 0.56 and 0.58 with one and two decoding
    processes.
    GPU: the forward pass is cheap, so decoding needs every spare core, unless
    this process is daemonic (a Celery prefork worker's child), which may start
    no processes: DataLoader would fail there, so it decodes in-process.
    """
    if device.type == "cuda":
        workers = 0 if multiprocessing.current_process().daemon else max(1, min(8, (os.cpu_count() or 2) - 1))
        return 128, workers
    return 16, 0


def no_progress(stage: str, done: int, total: int) -> None:
    """A progress callback that ignores everything."""


class _PoolImages(Dataset[torch.Tensor]):
    def __init__(
        self, source: ImageSource, keys: Sequence[str], transform: Callable[[Image.Image], torch.Tensor]
    ) -> None:
        self.source, self.keys, self.transform = source, keys, transform

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(self.source.load(self.keys[index]))


def _stacked_channels_last(images: list[torch.Tensor]) -> torch.Tensor:
    """(C, H, W) uint8 images as one (N, C, H, W) batch laid out channels last.

    Transformed images are height x width x channel in memory (pil_to_tensor
    and stimuli.resampling only permute their view), so stacking them in that
    order is a plain copy, and the batch reaches Network.inputs already in the
    layout the network runs in.
    """
    return torch.stack([image.permute(1, 2, 0) for image in images]).permute(0, 3, 1, 2)


class _PooledUnits:
    """Forward hook target: each unit's values pooled over positions, into one batch row block."""

    def __init__(self, readouts: Readouts, n_units: int, pooling: str) -> None:
        self.readouts, self.n_units, self.pooling = readouts, n_units, pooling
        self.batch = torch.empty((0, n_units))

    def start(self, n_images: int, device: torch.device) -> None:
        self.batch = torch.empty((n_images, self.n_units), dtype=torch.float32, device=device)

    def __call__(self, layer: str, output: torch.Tensor) -> None:
        for group, patches, _ in self.readouts.read(layer, output):
            self.batch[:, group.column_index] = group.reader.pooled(patches, self.pooling).float()


def fingerprint(identity: str, keys: Sequence[str], units: Sequence[UnitRef], *extra: str) -> str:
    """What an array's rows and columns mean; a marker with another fingerprint is stale."""
    digest = hashlib.sha256(identity.encode())
    digest.update(json.dumps([list(keys), [dataclasses.astuple(unit) for unit in units], *extra]).encode())
    return digest.hexdigest()


class ProgressMarker:
    """A small JSON file: how many images an array holds, and what they mean (its fingerprint)."""

    def __init__(self, path: Path, stamp: str) -> None:
        self.path, self.stamp = path, stamp

    def done(self) -> int | None:
        """Images recorded by an earlier run, or None when there is no marker of this fingerprint."""
        try:
            state = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return int(state["done"]) if state.get("fingerprint") == self.stamp else None

    def mark(self, done: int) -> None:
        # Replaced atomically, and only after the rows are flushed, so the
        # marker never claims rows that are not on disk.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps({"fingerprint": self.stamp, "done": done}))
        os.replace(partial, self.path)


class ActivationFile:
    """The .npy array and its progress marker (rows done, and what they mean)."""

    def __init__(self, path: Path, stamp: str, shape: tuple[int, int]) -> None:
        self.path, self.shape = path, shape
        self.marker = ProgressMarker(path.with_suffix(".progress.json"), stamp)

    def rows_done(self) -> int | None:
        """Rows recorded by an earlier run, or None when there is nothing valid to resume."""
        try:
            shape = np.load(self.path, mmap_mode="r").shape
        except (OSError, ValueError):
            return None
        return self.marker.done() if shape == self.shape else None

    def create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        np.lib.format.open_memmap(self.path, mode="w+", dtype=np.float32, shape=self.shape)
        self.marker.mark(0)

    def write(self, start: int, rows: np.ndarray) -> None:
        # Opened per batch so that written pages leave this process's memory.
        array = np.load(self.path, mmap_mode="r+")
        array[start : start + len(rows)] = rows
        array.flush()
        del array
        self.marker.mark(start + len(rows))

    def read(self) -> np.ndarray:
        array: np.ndarray = np.load(self.path, mmap_mode="r")
        return array


def image_batches(
    network: Network,
    source: ImageSource,
    keys: Sequence[str],
    batch_size: int | None = None,
    num_workers: int | None = None,
) -> DataLoader[torch.Tensor]:
    """The images of `keys`, transformed for the network, in uint8 batches laid out channels last.

    batch_size and num_workers default to loader_defaults(network.device).
    """
    default_batch_size, default_num_workers = loader_defaults(network.device)
    return DataLoader(
        _PoolImages(source, keys, network.transform),
        batch_size=batch_size or default_batch_size,
        num_workers=default_num_workers if num_workers is None else num_workers,
        collate_fn=_stacked_channels_last,
        pin_memory=network.device.type == "cuda",
    )


def record_activations(
    network: Network,
    source: ImageSource,
    units: Sequence[UnitRef],
    path: Path,
    *,
    identity: str = "",
    pooling: str = "mean",
    batch_size: int | None = None,
    num_workers: int | None = None,
    progress: Progress = no_progress,
) -> np.ndarray:
    """Activations (n_images x n_units, pool order, `units` order) as a read-only memmap.

    Each unit's value for an image is its values over the layer's positions
    (a CNN's feature map, a ViT's patch tokens: stimuli.tokens) pooled by
    `pooling` ("mean" or "max"). `identity` names the network (and anything
    else that changes the values) so that a marker left by another
    configuration is not resumed. Rows
    already recorded by an earlier run with the same fingerprint are kept.
    batch_size and num_workers default to loader_defaults(network.device).
    """
    keys = source.keys()
    pooling_function(pooling)  # an unknown pooling fails before anything is recorded
    stamp = fingerprint(identity, keys, units, pooling)
    output = ActivationFile(path, stamp, (len(keys), len(units)))
    done = output.rows_done()
    if done is None:
        output.create()
        done = 0
    progress(STAGE, done, len(keys))
    if done == len(keys):
        return output.read()
    loader = image_batches(network, source, keys[done:], batch_size, num_workers)
    readouts = Readouts(units, token_layout(network.module), network.device)
    means = _PooledUnits(readouts, len(units), pooling)
    with hooked(network.module, readouts.layers, means), torch.inference_mode():
        for images in loader:
            means.start(len(images), network.device)
            network.module(network.inputs(images))
            output.write(done, means.batch.cpu().numpy())
            done += len(images)
            progress(STAGE, done, len(keys))
    return output.read()
