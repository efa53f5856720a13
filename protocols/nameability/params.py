"""Nameability's parameters (docs/protocols.md §3; Colin et al. 2026): the describe stage's and the verify stage's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from django import forms

from protocols.params import Params, ParamsError, param

DESCRIBE_PROMPT = "Name what these images have in common"
VERIFY_PROMPT = "Which image does this name describe?"
# scikit-image's photographs whose subject is known, as crops of the default pool are keyed (stimuli.pools).
DEFAULT_CONCEPTS = "\n".join(
    [
        "cat: /chelsea/", "coffee: /coffee/", "rocket: /rocket/", "astronaut: /astronaut/",
        "motorcycle: /motorcycle_left/",
    ]
)


def parse_concepts(text: str) -> list[tuple[str, str]]:
    """(label, key fragment) per line `label: fragment`: a known concept and how its pool images' keys read."""
    concepts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        label, colon, fragment = line.partition(":")
        if not colon or not label.strip() or not fragment.strip():
            raise ParamsError({"concepts": [f"Line {number} is not 'label: key fragment': {line.strip()!r}."]})
        concepts.append((label.strip(), fragment.strip()))
    if not concepts:
        raise ParamsError({"concepts": ["Name at least one known concept."]})
    return concepts


def _flag(label: str, default: bool) -> bool:
    return param(default, forms.BooleanField(label=label, help_text="Exclusion check on this text-quality signal."))


@dataclass(frozen=True)
class DescribeParams(Params):
    prompt: str = param(DESCRIBE_PROMPT, forms.CharField(max_length=300))
    n_exemplars: int = param(
        9, forms.IntegerField(min_value=1, max_value=16, help_text="Top-activating images shown per unit.")
    )
    n_held_out: int = param(
        3,
        forms.IntegerField(
            min_value=1,
            max_value=20,
            help_text="Strongly activating images per unit that no namer sees: the verify stage's targets.",
        ),
    )
    min_words: int = param(1, forms.IntegerField(min_value=1, max_value=50))
    max_words: int = param(6, forms.IntegerField(min_value=1, max_value=50))
    max_chars: int = param(80, forms.IntegerField(min_value=5, max_value=500, label="Most characters"))
    concepts: str = param(
        DEFAULT_CONCEPTS,
        forms.CharField(
            widget=forms.Textarea(attrs={"rows": 5}),
            label="Known concepts",
            help_text="Practice and catch sets, one per line 'label: key fragment': the label a name must be close "
            "to, and what the keys of the concept's pool images contain.",
        ),
    )
    close_similarity: float = param(
        0.5,
        forms.FloatField(
            min_value=-1,
            max_value=1,
            help_text="A practice or catch name is close to its label when their embeddings' cosine similarity "
            "reaches this.",
        ),
    )
    min_catch_correct: int = param(
        4, forms.IntegerField(label="Catch names close", min_value=0, help_text="Exclusion check: catch names close.")
    )
    max_chars_per_s: float = param(
        15.0,
        forms.FloatField(
            min_value=1,
            label="Fastest typing (characters/s)",
            help_text="A name typed faster than this, from first key to submit, is flagged too fast.",
        ),
    )
    near_duplicate_similarity: float = param(
        0.95,
        forms.FloatField(
            min_value=0,
            max_value=1,
            help_text="A name this similar (embeddings' cosine) to another participant's name of another unit is a "
            "near-duplicate: flagged on the answer, counted per unit, checked where the study says so.",
        ),
    )
    check_pasted: bool = _flag("Check pasted names", True)
    check_too_fast: bool = _flag("Check names typed too fast", True)
    check_focus_lost: bool = _flag("Check focus lost while typing", False)
    check_not_words: bool = _flag("Check names that are not words", True)
    check_same_answer: bool = _flag("Check the same name for every unit", True)
    check_near_duplicates: bool = _flag("Check near-duplicates of other participants' names", False)
    max_near_duplicate_share: float = param(
        0.5,
        forms.FloatField(
            min_value=0,
            max_value=1,
            label="Near-duplicate share allowed",
            help_text="Exclusion check: the largest share of a session's main names that may be near-duplicates.",
        ),
    )
    max_flagged: int = param(
        1,
        forms.IntegerField(
            min_value=0,
            label="Flagged names allowed",
            help_text="Exclusion checks: how many main names each checked signal may flag.",
        ),
    )

    fixed_after_render: ClassVar[frozenset[str]] = frozenset(
        {"prompt", "n_exemplars", "n_held_out", "min_words", "max_words", "max_chars", "concepts"}
    )

    def validate(self) -> None:
        if self.min_words > self.max_words:
            raise ParamsError({"min_words": ["Cannot exceed the most words."]})
        parse_concepts(self.concepts)

    @property
    def concept_list(self) -> list[tuple[str, str]]:
        return parse_concepts(self.concepts)


@dataclass(frozen=True)
class VerifyParams(Params):
    prompt: str = param(VERIFY_PROMPT, forms.CharField(max_length=300))
    n_candidates: int = param(
        4,
        forms.IntegerField(
            min_value=2,
            max_value=9,
            label="Candidates (m)",
            help_text="Images per trial: the unit's held-out image and m-1 of other units.",
        ),
    )
    min_catch_correct: int = param(
        4, forms.IntegerField(label="Catch trials right", min_value=0, help_text="Exclusion check.")
    )

    fixed_after_render: ClassVar[frozenset[str]] = frozenset({"prompt", "n_candidates"})
