"""Spatial activation maps: where a unit fires on chosen images, and those maps on the stored stimuli.

The pool-wide scalar pass (stimuli.recording) ranks images; this second pass
runs only over the images a study shows, and keeps, for each chosen unit, its
value at every position of its layer: a CNN channel's feature map, an SAE
latent's code at every position (stimuli.units), a ViT's patch grid (class and
register tokens left out: stimuli.tokens). Maps are float16, one .npy per
request of shape (len(keys), rows, columns), written batch by batch and opened
per batch, so memory stays flat however many images are asked for; a marker
lets a crashed run continue after its last finished batch.

API (stable; protocols' rendering code builds on it; UnitRef from stimuli.unitrefs or stimuli.units):

    requests = [MapRequest(UnitRef("blocks.3", 17), ("key-a", "key-b")), ...]
    maps = record_maps(network, source, requests, work_dir / "maps", identity=...)
    maps[0].maps            # (2, rows, columns) float16, read-only memmap, rows in request.keys order
    maps[0].map_of("key-a")  # (rows, columns) float16
    on_stimulus(maps[0].map_of("key-a"), source.load("key-a").size, network, resize_to, size)
                            # (size, size) float32: the map over the stored stimulus's pixels

on_stimulus places a map exactly where the participant sees it: the map spans
the part of the original image the network saw (Network.framing: its resize
and centre crop), the stimulus shows the part stimuli.storage.resized_and_cropped
keeps (stored_box); each stimulus pixel takes the map's bilinear value at its
centre, and 0 where the network did not see the image.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stimuli.networks import Network, NetworkError, hooked
from stimuli.pools import ImageSource
from stimuli.recording import Progress, ProgressMarker, fingerprint, image_batches, no_progress
from stimuli.resampling import Box, Framing
from stimuli.storage import stored_box
from stimuli.tokens import token_layout
from stimuli.unitrefs import UnitRef
from stimuli.units import Readouts

STAGE = "recording maps"
MAP_DTYPE = np.float16


@dataclass(frozen=True)
class MapRequest:
    """One unit's maps, on these pool images (keys of the pool source)."""

    unit: UnitRef
    keys: tuple[str, ...]


@dataclass(frozen=True)
class UnitMaps:
    """A request's maps: row i is the map of keys[i]."""

    unit: UnitRef
    keys: tuple[str, ...]
    maps: np.ndarray  # (len(keys), rows, columns) float16

    def map_of(self, key: str) -> np.ndarray:
        return np.asarray(self.maps[self.keys.index(key)])


class _MapsOfBatch:
    """Forward hook target: every requested unit's map on the batch's images, float16 on the CPU."""

    def __init__(self, readouts: Readouts) -> None:
        self.readouts = readouts
        self.maps: dict[int, np.ndarray] = {}

    def __call__(self, layer: str, output: torch.Tensor) -> None:
        for group, patches, grid in self.readouts.read(layer, output):
            values = group.reader.at_positions(patches)  # (B, P, n)
            batch = values.permute(0, 2, 1).reshape(len(values), len(group.columns), *grid)
            unit_maps = batch.to(torch.float16).cpu().numpy()
            for position, column in enumerate(group.columns):
                self.maps[column] = unit_maps[:, position]


class _MapFiles:
    """One .npy per request, and one marker for the pass over the union of their keys."""

    def __init__(self, directory: Path, stamp: str, requests: Sequence[MapRequest]) -> None:
        self.directory, self.requests = directory, requests
        self.marker = ProgressMarker(directory / "progress.json", stamp)
        # Where each request wants each key: row of its array.
        self.rows = [{key: row for row, key in enumerate(request.keys)} for request in requests]

    def path(self, index: int) -> Path:
        return self.directory / f"unit-{index:04d}.npy"

    def done(self) -> int | None:
        done = self.marker.done()
        if done and not all(self.path(index).exists() for index in range(len(self.requests))):
            return None
        return done

    def write(self, start: int, keys: Sequence[str], maps: dict[int, np.ndarray]) -> None:
        for index, rows in enumerate(self.rows):
            wanted = [(position, rows[key]) for position, key in enumerate(keys) if key in rows]
            if not wanted:
                continue
            positions, targets = zip(*wanted, strict=True)
            batch_maps = maps[index]
            path = self.path(index)
            if not path.exists():
                shape = (len(self.requests[index].keys), *batch_maps.shape[1:])
                np.lib.format.open_memmap(path, mode="w+", dtype=MAP_DTYPE, shape=shape)
            # Opened per batch so that written pages leave this process's memory.
            array = np.load(path, mmap_mode="r+")
            array[list(targets)] = batch_maps[list(positions)]
            array.flush()
            del array
        self.marker.mark(start + len(keys))

    def read(self) -> list[UnitMaps]:
        return [
            UnitMaps(request.unit, request.keys, np.load(self.path(index), mmap_mode="r"))
            for index, request in enumerate(self.requests)
        ]


def record_maps(
    network: Network,
    source: ImageSource,
    requests: Sequence[MapRequest],
    directory: Path,
    *,
    identity: str = "",
    batch_size: int | None = None,
    num_workers: int | None = None,
    progress: Progress = no_progress,
) -> list[UnitMaps]:
    """Each request's maps at its layer's resolution, in request order, as read-only float16 memmaps.

    One forward pass per batch over the union of the requests' keys (each image
    once, whatever number of units want it). `identity` names the network, as
    for record_activations; a rerun with the same fingerprint continues after
    the last finished batch, and a finished one is read back without a forward pass.
    """
    for request in requests:
        if not request.keys:
            raise ValueError(f"A map request for {request.unit} names no images.")
    keys = list(dict.fromkeys(key for request in requests for key in request.keys))
    units = [request.unit for request in requests]
    stamp = fingerprint(identity, keys, units, json.dumps([request.keys for request in requests]), STAGE)
    files = _MapFiles(directory, stamp, requests)
    done = files.done()
    if done is None:
        for index in range(len(requests)):
            files.path(index).unlink(missing_ok=True)
        files.marker.mark(0)
        done = 0
    progress(STAGE, done, len(keys))
    if done < len(keys):
        readouts = Readouts(units, token_layout(network.module), network.device)
        hook = _MapsOfBatch(readouts)
        loader = image_batches(network, source, keys[done:], batch_size, num_workers)
        with hooked(network.module, readouts.layers, hook), torch.inference_mode():
            for images in loader:
                network.module(network.inputs(images))
                files.write(done, keys[done : done + len(images)], hook.maps)
                done += len(images)
                progress(STAGE, done, len(keys))
    return files.read()


def on_stimulus(
    activation_map: np.ndarray,
    original_size: tuple[int, int],
    network: Network,
    resize_to: int,
    size: int,
) -> np.ndarray:
    """A (rows, columns) map over the (size, size) pixels of the stored stimulus, float32.

    original_size is the pool image's (width, height) before any resizing;
    resize_to and size are the study's, as stimuli.storage stores the image.
    """
    width, height = original_size
    seen = map_framing(network)(width, height)
    return resampled(activation_map, seen, stored_box(width, height, resize_to, size), size)


def map_framing(network: Network) -> Framing:
    """Which part of an original the network's maps span (Network.framing), for placing them on stimuli."""
    if network.framing is None:
        raise NetworkError(
            "The network's preprocessing is not a resize and centre crop, so its maps cannot be "
            "placed on the stored stimuli."
        )
    return network.framing


def resampled(activation_map: np.ndarray, seen: Box, shown: Box, size: int) -> np.ndarray:
    """A map spanning the `seen` box of an original, sampled at the centres of a size x size grid over `shown`.

    Bilinear between cell centres, the edge cells' values up to the seen box's
    edges, and 0 outside it.
    """
    pixel = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    xs = shown[0] + pixel * (shown[2] - shown[0])
    ys = shown[1] + pixel * (shown[3] - shown[1])
    # grid_sample's coordinates: -1 and 1 are the outer edges of the map's first and last cells.
    u = 2 * (xs - seen[0]) / (seen[2] - seen[0]) - 1
    v = 2 * (ys - seen[1]) / (seen[3] - seen[1]) - 1
    grid = torch.stack(torch.meshgrid(u, v, indexing="xy"), dim=-1)[None].float()
    values = torch.from_numpy(np.asarray(activation_map, dtype=np.float32))[None, None]
    sampled = torch.nn.functional.grid_sample(values, grid, mode="bilinear", padding_mode="border", align_corners=False)
    inside = (grid.abs() <= 1).all(dim=-1)
    result: np.ndarray = torch.where(inside, sampled[:, 0], 0.0)[0].numpy()
    return result

