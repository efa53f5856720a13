"""Unit kinds: how one kind of unit reads its values out of a layer's output, behind one interface.

A unit is named by a UnitRef (layer, index, kind, and for kinds that need one a
source, such as an SAE's weights file). Each kind is a UnitKind registered by
name in KINDS (imported lazily) and makes a Reader for a group of units on one
layer with one source. A Reader turns the layer's positions (B, P, C), as
stimuli.tokens.positions gives them, into each unit's value at every position
(B, P, n): a channel picks its column, an SAE latent encodes the positions and
picks its code. Both passes use the same reader: the scalar pass
(stimuli.recording) pools over positions, the map pass (stimuli.maps) keeps them.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from django.utils.module_loading import import_string

from stimuli.tokens import TokenLayout, positions

CHANNEL = "channel"
SAE_LATENT = "sae_latent"

# Kind name -> dotted path of its UnitKind class, imported when first asked for.
KINDS: dict[str, str] = {
    CHANNEL: "stimuli.units.ChannelKind",
    SAE_LATENT: "stimuli.sae.LatentKind",
}

# How a unit's values over positions become one scalar per image.
POOLINGS: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
    "mean": lambda values, dim: values.mean(dim),
    "max": lambda values, dim: values.amax(dim),
}


class UnitError(ValueError):
    """A unit that cannot be read as named; the message says why."""


@dataclass(frozen=True)
class UnitRef:
    """One unit as recording names it: its layer, its index there, its kind, and the kind's source."""

    layer: str
    index: int  # the channel, or the SAE latent
    kind: str = CHANNEL
    source: str = ""  # SAE latents: the SAE's weights file in the default storage


class Reader(ABC):
    """Values of a group of units (one layer, one kind and source) from the layer's positions."""

    @abstractmethod
    def at_positions(self, patches: torch.Tensor) -> torch.Tensor:
        """(B, P, C) positions -> (B, P, n) values of the group's n units."""

    def pooled(self, patches: torch.Tensor, pooling: str) -> torch.Tensor:
        """(B, P, C) positions -> (B, n), each unit's values pooled over positions."""
        return pool(self.at_positions(patches), pooling)


class UnitKind(ABC):
    name: ClassVar[str]

    @abstractmethod
    def reader(self, source: str, indices: Sequence[int], device: torch.device) -> Reader:
        """The reader of these units (channel or latent indices) of one source on the device."""


def pooling_function(pooling: str) -> Callable[[torch.Tensor, int], torch.Tensor]:
    if pooling not in POOLINGS:
        raise UnitError(f"Unknown pooling {pooling!r} (known: {', '.join(POOLINGS)}).")
    return POOLINGS[pooling]


def pool(values: torch.Tensor, pooling: str, dim: int = 1) -> torch.Tensor:
    return pooling_function(pooling)(values, dim)


class ChannelReader(Reader):
    def __init__(self, channels: torch.Tensor) -> None:
        self.channels = channels

    def at_positions(self, patches: torch.Tensor) -> torch.Tensor:
        return patches.index_select(2, self.channels)

    def pooled(self, patches: torch.Tensor, pooling: str) -> torch.Tensor:
        # Pooling every channel first and picking after is cheaper than picking
        # first: a gather across channels of a channels-last map is slow.
        return pool(patches, pooling).index_select(1, self.channels)


class ChannelKind(UnitKind):
    name = CHANNEL

    def reader(self, source: str, indices: Sequence[int], device: torch.device) -> Reader:
        return ChannelReader(torch.tensor(list(indices), device=device))


@functools.cache
def get_kind(name: str) -> UnitKind:
    if name not in KINDS:
        raise UnitError(f"Units of kind {name!r} cannot be recorded (known: {', '.join(KINDS)}).")
    kind: UnitKind = import_string(KINDS[name])()
    return kind


@dataclass(frozen=True)
class Group:
    """Units read together: their reader and their columns in the caller's unit order."""

    reader: Reader
    columns: list[int]
    column_index: torch.Tensor  # the same columns, on the device


class Readouts:
    """Every unit's reader, grouped by layer, for a forward hook to call on each layer output."""

    def __init__(self, units: Sequence[UnitRef], layout: TokenLayout, device: torch.device) -> None:
        self.layout = layout
        grouped: dict[tuple[str, str, str], list[int]] = {}
        for column, unit in enumerate(units):
            grouped.setdefault((unit.layer, unit.kind, unit.source), []).append(column)
        self.groups: dict[str, list[Group]] = {}
        for (layer, kind, source), columns in grouped.items():
            reader = get_kind(kind).reader(source, [units[c].index for c in columns], device)
            group = Group(reader, columns, torch.tensor(columns, device=device))
            self.groups.setdefault(layer, []).append(group)

    @property
    def layers(self) -> list[str]:
        return list(self.groups)

    def read(self, layer: str, output: torch.Tensor) -> Iterator[tuple[Group, torch.Tensor, tuple[int, int]]]:
        """Each group of the layer with its output's positions (B, P, C) and their grid."""
        patches, grid = positions(output, self.layout)
        for group in self.groups[layer]:
            yield group, patches, grid
