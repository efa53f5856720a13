"""Record every pool image's activation for a set of units, streamed to an on-disk array.

One forward pass per batch of images serves every unit: forward hooks on the
needed layers keep only the sampled channels, averaged over space (or over
tokens for a ViT). Rows go to a float32 .npy memmap of shape
(n_images, n_units) that is opened only around each batch's write, so memory
stays flat in the pool size. A small JSON marker, rewritten after each batch
is flushed, lets a crashed or retried run continue after the last finished
batch.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from stimuli.networks import Network, NetworkError, hooked
from stimuli.pools import ImageSource

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
    GPU: the forward pass is cheap, so decoding needs every spare core.
    """
    if device.type == "cuda":
        return 128, max(1, min(8, (os.cpu_count() or 2) - 1))
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


class _ChannelMeans:
    """Forward hook target: each layer's sampled channels, averaged, into one batch row block."""

    def __init__(self, units: Sequence[tuple[str, int]], device: torch.device) -> None:
        self.plan: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for layer in dict.fromkeys(layer for layer, _ in units):
            columns = [i for i, (name, _) in enumerate(units) if name == layer]
            channels = [units[i][1] for i in columns]
            self.plan[layer] = (
                torch.tensor(channels, device=device),
                torch.tensor(columns, device=device),
            )
        self.n_units = len(units)
        self.batch = torch.empty((0, self.n_units))

    @property
    def layers(self) -> list[str]:
        return list(self.plan)

    def start(self, n_images: int, device: torch.device) -> None:
        self.batch = torch.empty((n_images, self.n_units), dtype=torch.float32, device=device)

    def __call__(self, layer: str, output: torch.Tensor) -> None:
        # Averaging every channel first and picking after is cheaper than picking
        # first: a gather across channels of a channels-last map is slow.
        if output.ndim == 4:  # (B, C, H, W): mean over space
            means = output.mean(dim=(2, 3))
        elif output.ndim == 3:  # (B, tokens, C): mean over tokens
            means = output.mean(dim=1)
        else:
            raise NetworkError(f"Layer {layer} gives outputs of shape {tuple(output.shape)}.")
        channels, columns = self.plan[layer]
        self.batch[:, columns] = means.index_select(1, channels).float()


def fingerprint(identity: str, keys: Sequence[str], units: Sequence[tuple[str, int]]) -> str:
    """What the array's rows and columns mean; a marker with another fingerprint is stale."""
    digest = hashlib.sha256(identity.encode())
    digest.update(json.dumps([list(keys), [list(unit) for unit in units]]).encode())
    return digest.hexdigest()


class ActivationFile:
    """The .npy array and its progress marker (rows done, and what they mean)."""

    def __init__(self, path: Path, stamp: str, shape: tuple[int, int]) -> None:
        self.path, self.stamp, self.shape = path, stamp, shape
        self.marker = path.with_suffix(".progress.json")

    def rows_done(self) -> int | None:
        """Rows recorded by an earlier run, or None when there is nothing valid to resume."""
        try:
            state = json.loads(self.marker.read_text())
            shape = np.load(self.path, mmap_mode="r").shape
        except (OSError, ValueError):
            return None
        if state.get("fingerprint") != self.stamp or shape != self.shape:
            return None
        return int(state["done"])

    def create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        np.lib.format.open_memmap(self.path, mode="w+", dtype=np.float32, shape=self.shape)
        self._mark(0)

    def write(self, start: int, rows: np.ndarray) -> None:
        # Opened per batch so that written pages leave this process's memory.
        array = np.load(self.path, mmap_mode="r+")
        array[start : start + len(rows)] = rows
        array.flush()
        del array
        self._mark(start + len(rows))

    def read(self) -> np.ndarray:
        array: np.ndarray = np.load(self.path, mmap_mode="r")
        return array

    def _mark(self, done: int) -> None:
        # Replaced atomically, and only after the rows are flushed, so the
        # marker never claims rows that are not on disk.
        partial = self.marker.with_suffix(".tmp")
        partial.write_text(json.dumps({"fingerprint": self.stamp, "done": done}))
        os.replace(partial, self.marker)


def record_activations(
    network: Network,
    source: ImageSource,
    units: Sequence[tuple[str, int]],
    path: Path,
    *,
    identity: str = "",
    batch_size: int | None = None,
    num_workers: int | None = None,
    progress: Progress = no_progress,
) -> np.ndarray:
    """Activations (n_images x n_units, pool order, `units` order) as a read-only memmap.

    `identity` names the network (and anything else that changes the values)
    so that a marker left by another configuration is not resumed. Rows
    already recorded by an earlier run with the same fingerprint are kept.
    batch_size and num_workers default to loader_defaults(network.device).
    """
    keys = source.keys()
    output = ActivationFile(path, fingerprint(identity, keys, units), (len(keys), len(units)))
    done = output.rows_done()
    if done is None:
        output.create()
        done = 0
    progress(STAGE, done, len(keys))
    if done == len(keys):
        return output.read()
    default_batch_size, default_num_workers = loader_defaults(network.device)
    loader = DataLoader(
        _PoolImages(source, keys[done:], network.transform),
        batch_size=batch_size or default_batch_size,
        num_workers=default_num_workers if num_workers is None else num_workers,
        collate_fn=_stacked_channels_last,
        pin_memory=network.device.type == "cuda",
    )
    means = _ChannelMeans(units, network.device)
    with hooked(network.module, means.layers, means), torch.inference_mode():
        for images in loader:
            means.start(len(images), network.device)
            network.module(network.inputs(images))
            output.write(done, means.batch.cpu().numpy())
            done += len(images)
            progress(STAGE, done, len(keys))
    return output.read()
