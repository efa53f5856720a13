"""2-AFC's parameters; every default is the published value (IMI, Zimmermann et al. 2023)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from django import forms

from protocols.params import Params, param
from protocols.selection import DIFFICULTIES

PROMPT = "Which image at the center matches the right examples better?"


@dataclass(frozen=True)
class TwoAFCParams(Params):
    difficulty: str = param("easy", forms.ChoiceField(choices=DIFFICULTIES, help_text="Where the queries come from."))
    references_per_side: int = param(
        9,
        forms.IntegerField(
            min_value=1, max_value=12, help_text="Reference images per block (Borowski et al.: 1 or 9)."
        ),
    )
    show_min_references: bool = param(
        True,
        forms.BooleanField(
            label="Show the minimally activating block",
            help_text="Off: only the maximally activating references are shown (Borowski et al.'s Max-1 and "
            "Max-9, with 1 or 9 references per side); on: both blocks (Min+Max, as IMI).",
        ),
    )
    prompt: str = param(PROMPT, forms.CharField(max_length=300))
    n_practice_obvious: int = param(
        4,
        forms.IntegerField(
            label="Obvious practice trials",
            min_value=0,
            help_text="How many practice trials are obvious; the rest are less obvious.",
        ),
    )
    practice_less_obvious_difficulty: str = param(
        "medium", forms.ChoiceField(label="Difficulty of the less obvious practice", choices=DIFFICULTIES)
    )
    min_catch_correct: int = param(
        4,
        forms.IntegerField(
            label="Catch trials right", min_value=0, help_text="Exclusion check: catch trials answered right."
        ),
    )
    min_position_count: int = param(
        5,
        forms.IntegerField(
            label="Position count",
            min_value=0,
            help_text="Exclusion check: each response position must be chosen at least this often.",
        ),
    )

    fixed_after_render: ClassVar[frozenset[str]] = frozenset(
        {
            "difficulty", "references_per_side", "show_min_references", "prompt", "n_practice_obvious",
            "practice_less_obvious_difficulty",
        }
    )
