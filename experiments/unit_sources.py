"""Where a study's units come from, one registered source per unit kind: a layer's channels or an SAE's latents.

A source checks a study's settings for its kind (Study.clean calls it) and
draws the study's units, seeded. Nothing here loads torch: rendering passes
the network in.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from django.core.exceptions import ValidationError

from stimuli.models import SparseAutoencoder, Unit

if TYPE_CHECKING:
    from experiments.models import Study
    from stimuli.networks import Network


@dataclass(frozen=True)
class Drawn:
    """A sampled unit: its layer and index, the SAE it belongs to, and its layer's relative depth."""

    layer: str
    index: int
    sae: SparseAutoencoder | None
    relative_depth: float | None


def relative_depth(layer: str, layers: list[str]) -> float | None:
    """The layer's place among the layers of interest: 0 first, 1 last; None when it is not one of them."""
    if layer not in layers:
        return None
    return layers.index(layer) / (len(layers) - 1) if len(layers) > 1 else 0.0


class UnitSource(ABC):
    kind: ClassVar[str]

    def check(self, study: Study) -> None:
        """Raise ValidationError, keyed by field, when the study's settings do not fit this kind."""
        if study.sae is not None:
            raise ValidationError({"sae": "Only a study whose units are SAE latents names an SAE."})

    @abstractmethod
    def draw(self, study: Study, network: Network, layers: list[str], n: int, rng: np.random.Generator) -> list[Drawn]:
        """n distinct units, seeded by rng; `layers` are the study's layers of interest."""


class Channels(UnitSource):
    """As IMI: a uniformly random layer of interest, then a random channel of it."""

    kind = Unit.Kind.CHANNEL

    def draw(self, study: Study, network: Network, layers: list[str], n: int, rng: np.random.Generator) -> list[Drawn]:
        from stimuli.networks import channel_counts
        from stimuli.sampling import sample_layer_channels

        drawn = sample_layer_channels(channel_counts(network, layers), n, rng)
        return [Drawn(layer, channel, None, relative_depth(layer, layers)) for layer, channel in drawn]


class Latents(UnitSource):
    """Latents of the study's SAE, uniformly, leaving out dead ones and those firing too often."""

    kind = Unit.Kind.SAE_LATENT

    def check(self, study: Study) -> None:
        sae = study.sae
        if sae is None:
            raise ValidationError({"sae": "Units that are SAE latents need the SAE they come from."})
        if sae.status != SparseAutoencoder.Status.TRAINED:
            raise ValidationError({"sae": f"The SAE {sae} is not trained yet."})
        if sae.model_id != study.model_id:
            raise ValidationError({"sae": f"The SAE {sae} reads {sae.model}, not {study.model}."})

    def draw(self, study: Study, network: Network, layers: list[str], n: int, rng: np.random.Generator) -> list[Drawn]:
        sae = study.sae
        assert sae is not None  # checked by check()
        frequency = np.asarray(sae.firing_frequency, dtype=float)
        eligible = np.flatnonzero((frequency > 0) & (frequency <= study.max_latent_frequency))
        if n > len(eligible):
            raise ValueError(
                f"Cannot sample {n} latents from {sae}: {len(eligible)} of its {len(frequency)} fire on some "
                f"token and on at most {study.max_latent_frequency:.0%} of them."
            )
        chosen = rng.choice(eligible, size=n, replace=False)
        depth = relative_depth(sae.layer, layers)
        return [Drawn(sae.layer, int(latent), sae, depth) for latent in chosen]


SOURCES: dict[str, UnitSource] = {source.kind: source for source in (Channels(), Latents())}


def unit_source(kind: str) -> UnitSource:
    if kind not in SOURCES:
        raise ValidationError({"unit_kind": f"Units of kind {kind!r} have no source (known: {', '.join(SOURCES)})."})
    return SOURCES[kind]
