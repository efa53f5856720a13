"""Localizability's parameters; defaults follow Colin et al. 2026 (docs/protocols.md §2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from django import forms

from protocols.localizability.scoring import RULES
from protocols.params import Params, param
from protocols.selection import DIFFICULTIES

PROMPT = "Click where you expect the highlighted feature to appear."
# Matplotlib's perceptual colour maps, as 256-entry tables (protocols.localizability.overlay).
COLOUR_MAPS = [("inferno", "inferno"), ("magma", "magma"), ("viridis", "viridis"), ("jet", "jet")]


@dataclass(frozen=True)
class LocalizabilityParams(Params):
    n_exemplars: int = param(
        6, forms.IntegerField(label="Exemplars", min_value=1, max_value=12, help_text="K: exemplars shown per trial.")
    )
    difficulty: str = param(
        "easy",
        forms.ChoiceField(
            choices=DIFFICULTIES,
            help_text="Where the queries come from: just below the exemplars (easy) or around a percentile.",
        ),
    )
    prompt: str = param(PROMPT, forms.CharField(max_length=300))
    max_clicks: int = param(
        1,
        forms.IntegerField(
            label="Clicks allowed",
            min_value=1,
            max_value=3,
            help_text="More than one click shows an undo and a confirm button.",
        ),
    )
    click_rule: str = param(
        "best",
        forms.ChoiceField(
            choices=[(rule, rule) for rule in RULES],
            help_text="How a response with several clicks is scored: its best click, its first, or their mean.",
        ),
    )
    practice_candidates: int = param(
        3,
        forms.IntegerField(
            label="Practice candidates",
            min_value=1,
            max_value=10,
            help_text="Units drawn for each practice unit; the ones whose exemplar maps are most concentrated "
            "(smallest mean p0) are kept. 1: practice units are drawn at random, as main units are.",
        ),
    )
    colour_map: str = param("inferno", forms.ChoiceField(choices=COLOUR_MAPS, label="Colour map"))
    overlay_opacity: float = param(
        0.6,
        forms.FloatField(
            min_value=0.05, max_value=1, help_text="Opacity of the heat map where the unit fires most."
        ),
    )
    region_mass: float = param(
        0.5,
        forms.FloatField(
            min_value=0.05,
            max_value=0.95,
            help_text="The top region holds this share of the map's mass (a click inside it hits).",
        ),
    )
    min_catch_correct: int = param(
        4,
        forms.IntegerField(
            label="Catch trials right", min_value=0, help_text="Exclusion check: catch trials whose click hit."
        ),
    )
    centre_radius: float = param(
        0.25,
        forms.FloatField(
            min_value=0.01,
            max_value=0.75,
            help_text="Centre-bias check: the central disc's radius, as a share of the image side.",
        ),
    )
    max_centre_share: float = param(
        0.9,
        forms.FloatField(
            min_value=0,
            max_value=1,
            help_text="Centre-bias check: a session fails when more than this share of its clicks fall in "
            "the central disc.",
        ),
    )

    fixed_after_render: ClassVar[frozenset[str]] = frozenset(
        # The click rule and the region decide every verdict and its feedback: changed later, stored
        # verdicts would follow another rule than new ones.
        {
            "n_exemplars", "difficulty", "prompt", "max_clicks", "colour_map", "overlay_opacity", "click_rule",
            "region_mass", "practice_candidates",
        }
    )
