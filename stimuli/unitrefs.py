"""How recording names a unit, without torch: model rows (stimuli.models) build these in web processes too."""

from __future__ import annotations

from dataclasses import dataclass

# The unit kinds' names; stimuli.units registers how each is read.
CHANNEL = "channel"
SAE_LATENT = "sae_latent"


@dataclass(frozen=True)
class UnitRef:
    """One unit as recording names it: its layer, its index there, its kind, and the kind's source."""

    layer: str
    index: int  # the channel, or the SAE latent
    kind: str = CHANNEL
    source: str = ""  # SAE latents: the SAE's weights file in the default storage
