from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django import forms
from rest_framework import serializers

from protocols.base import (
    CATCH,
    JSON,
    MAIN,
    OBVIOUS,
    PRACTICE,
    BrowserModule,
    Design,
    ExportColumn,
    Fields,
    ImageSlot,
    Layout,
    Protocol,
    Score,
    ShownImage,
    Templates,
    TrialPlan,
    UnitActivations,
)
from protocols.params import Params, param

PICTURE = "picture"


@dataclass(frozen=True)
class RatingParams(Params):
    prompt: str = param("How strongly does this image show the feature?", forms.CharField())
    scale: int = param(5, forms.IntegerField(min_value=2, max_value=9))


class RatingTrialSerializer(Fields):
    image = serializers.CharField()
    scale = serializers.IntegerField()


class RatingAnswerSerializer(Fields):
    rating = serializers.IntegerField(min_value=1, max_value=9)


def _plan(kind: str, batch: int, row: int, level: str = "") -> TrialPlan:
    return TrialPlan(kind, batch, "top", (ImageSlot(PICTURE, 0, row),), level)


class Rating(Protocol[RatingParams]):
    name = "rating"
    title = "Rating (test only)"
    params_class = RatingParams
    templates = Templates(
        consent="protocols/rating/consent.html",
        instructions="protocols/rating/instructions.html",
        preview="protocols/rating/preview.html",
    )
    browser = BrowserModule(script="protocols/rating/trial.js")
    trial_serializer = RatingTrialSerializer
    answer_serializer = RatingAnswerSerializer
    export_columns = {"rating": ExportColumn("answer", "rating", "int")}

    def build_trials(self, design: Design[RatingParams], unit: UnitActivations) -> list[TrialPlan]:
        strongest = np.argsort(unit.activations)[::-1]
        if unit.role == PRACTICE:
            return [_plan(PRACTICE, 0, int(strongest[0]), OBVIOUS)]
        plans = [_plan(MAIN, batch, int(strongest[batch])) for batch in range(design.trials_per_unit)]
        return plans + [_plan(CATCH, 0, int(strongest[0]))]

    def layout(
        self, images: Sequence[ShownImage], content: JSON, params: RatingParams, rng: random.Random
    ) -> Layout:
        return Layout(display={"image": images[0].image_id}, key={})

    def payload(self, display: JSON, urls: Mapping[int, str], params: RatingParams) -> JSON:
        return {"image": urls[display["image"]], "scale": params.scale}

    def score(self, answer: Mapping[str, Any], key: JSON, params: RatingParams) -> Score:
        return Score(correct=None, score=answer["rating"] / params.scale)

    def practice_passed(self, scores: Sequence[Score]) -> bool:
        return True
