"""Nameability, verify stage: a study built from a describe study's names (one action in the admin).

Each trial shows one name a participant of the describe study wrote and m candidate images: one held-out
strongly activating image of the named unit (no namer of that unit saw it) and m-1 held-out images of other
units, in a seeded random order. Practice and catch trials name a known concept (its label) among images of
other units. Chance-anchored score per unit: S = (a - 1/m) / (1 - 1/m).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from protocols.base import (
    CATCH,
    JSON,
    MAIN,
    OBVIOUS,
    PRACTICE,
    Answered,
    AnswerRefused,
    BrowserModule,
    CheckResult,
    DerivedTrial,
    Design,
    DesignError,
    ExportColumn,
    Layout,
    Protocol,
    Score,
    ShownImage,
    SourceTrial,
    Templates,
    TrialPlan,
    UnitActivations,
    catch_check,
)
from protocols.nameability.describe import EXEMPLAR, HELD_OUT, Describe
from protocols.nameability.params import VerifyParams
from protocols.nameability.serializers import VerifyAnswerSerializer, VerifyTrialSerializer

TARGET = "target"
DISTRACTOR = "distractor"


def chance_anchored(accuracy: float, m: int) -> float:
    """S = (a - 1/m) / (1 - 1/m): 0 at chance, 1 when every choice is right."""
    return (accuracy - 1 / m) / (1 - 1 / m)


class _Source:
    """The describe study's trials as the verify stage draws from them."""

    def __init__(self, source: Sequence[SourceTrial]) -> None:
        self.held_out: dict[int, list[int]] = defaultdict(list)
        self.names: dict[int, list[tuple[str, str, frozenset[int]]]] = defaultdict(list)
        for trial in source:
            if trial.kind != MAIN:
                continue
            for image in sorted(trial.images, key=lambda i: i.rank):
                if image.role == HELD_OUT and image.image_id not in self.held_out[trial.unit]:
                    self.held_out[trial.unit].append(image.image_id)
            for answer in trial.answers:
                name = str(answer.answer.get("text", "")).strip()
                self.names[trial.unit].append((name, answer.author, frozenset(answer.shown)))
        self.units = sorted(unit for unit in self.names if self.held_out[unit])

    def distractors(self, unit: int | None, m: int, rng: np.random.Generator) -> list[int]:
        """One held-out image of each of m-1 other named units, drawn at random."""
        others = [other for other in self.units if other != unit]
        if len(others) < m - 1:
            raise DesignError(
                f"A verify trial needs m-1 = {m - 1} other named units for its distractors; the describe study "
                f"has {len(others) + (unit is not None)} units with names."
            )
        chosen = rng.choice(others, size=m - 1, replace=False)
        return [int(rng.choice(self.held_out[int(other)])) for other in chosen]


def _candidates(target: int, distractors: list[int]) -> tuple[ShownImage, ...]:
    return (ShownImage(target, TARGET, 0),) + tuple(
        ShownImage(image, DISTRACTOR, rank) for rank, image in enumerate(distractors)
    )


class Verify(Protocol[VerifyParams]):
    name = "nameability_verify"
    title = "Nameability: verify"
    params_class = VerifyParams
    derived_from = Describe.name
    templates = Templates(
        consent="protocols/nameability/verify_consent.html",
        instructions="protocols/nameability/verify_instructions.html",
        preview="protocols/nameability/verify_preview.html",
    )
    browser = BrowserModule(script="protocols/nameability/verify.js", stylesheet="protocols/nameability/trial.css")
    trial_serializer = VerifyTrialSerializer
    answer_serializer = VerifyAnswerSerializer
    export_columns = {
        "name": ExportColumn("key", "name", "str"),
        "namer": ExportColumn("key", "namer", "str"),
        "target_position": ExportColumn("key", "choice", "int"),
        "choice": ExportColumn("answer", "choice", "int"),
        # m, for the analysis's chance level 1/m (analysis.scores).
        "n_candidates": ExportColumn("key", "n_candidates", "int"),
    }
    check_names = ("catch_trials",)
    unit_columns = {"verify_answers": "int", "verify_accuracy": "float", "verify_score": "float"}

    def check_pool(self, design: Design[VerifyParams], n_images: int) -> None:
        raise DesignError(
            "A verify study is not rendered: it is built from a completed describe study "
            "(admin action 'Build the verify study', or `manage.py build_derived_study`)."
        )

    def build_trials(self, design: Design[VerifyParams], unit: UnitActivations) -> list[TrialPlan]:
        self.check_pool(design, 0)
        return []

    def derive(
        self, params: VerifyParams, source: Sequence[SourceTrial], rng: np.random.Generator
    ) -> list[DerivedTrial]:
        """Per named unit, one trial per name (batch k: its k-th name, cycling through its names so that every
        unit has as many batches as the most named one) with a held-out image its namer never saw; practice and
        catch trials from the describe study's known-concept sets."""
        m = params.n_candidates
        drawn = _Source(source)
        if not drawn.units:
            raise DesignError("The describe study has no names of passing sessions to verify yet.")
        batches = max(len(drawn.names[unit]) for unit in drawn.units)
        trials = []
        for unit in drawn.units:
            names = drawn.names[unit]
            for batch in range(batches):
                name, namer, shown = names[batch % len(names)]
                unseen = [image for image in drawn.held_out[unit] if image not in shown]
                if not unseen:
                    continue
                target = unseen[batch % len(unseen)]
                images = _candidates(target, drawn.distractors(unit, m, rng))
                trials.append(DerivedTrial(unit, MAIN, batch, images, {"name": name, "namer": namer}))
        for trial in source:
            if trial.kind in (PRACTICE, CATCH) and "label" in trial.content:
                exemplars = [image.image_id for image in trial.images if image.role == EXEMPLAR]
                target = int(rng.choice(exemplars))
                images = _candidates(target, drawn.distractors(None, m, rng))
                level = OBVIOUS if trial.kind == PRACTICE else ""
                content = {"name": trial.content["label"], "namer": ""}
                trials.append(DerivedTrial(trial.unit, trial.kind, 0, images, content, level))
        return trials

    def layout(
        self, images: Sequence[ShownImage], content: JSON, params: VerifyParams, rng: random.Random
    ) -> Layout:
        """The candidates in a seeded random order; the key is the target's position (and the name, for export)."""
        candidates = [image.image_id for image in sorted(images, key=lambda i: (i.role != TARGET, i.rank))]
        target = candidates[0]
        rng.shuffle(candidates)
        key = {
            "choice": candidates.index(target), "name": content["name"], "namer": content["namer"],
            "n_candidates": len(candidates),
        }
        return Layout(display={"name": content["name"], "candidates": candidates}, key=key)

    def payload(self, display: JSON, urls: Mapping[int, str], params: VerifyParams) -> JSON:
        return {"name": display["name"], "candidates": [urls[i] for i in display["candidates"]]}

    def complete_answer(self, answer: Mapping[str, Any], params: VerifyParams) -> JSON:
        if answer["choice"] >= params.n_candidates:
            raise AnswerRefused(f"Please choose one of the {params.n_candidates} images.")
        return dict(answer)

    def score(self, answer: Mapping[str, Any], key: JSON, params: VerifyParams) -> Score:
        correct = answer["choice"] == key["choice"]
        return Score(correct=correct, score=float(correct))

    def checks(self, params: VerifyParams, main_block: Sequence[Answered], n_catch_trials: int) -> list[CheckResult]:
        return [catch_check(main_block, params.min_catch_correct, n_catch_trials)]

    def unit_values(self, params: VerifyParams, verdicts: Sequence[Score]) -> dict[str, Any]:
        """Answers, accuracy a and the chance-anchored S (none for a unit without answers)."""
        if not verdicts:
            return {"verify_answers": 0, "verify_accuracy": None, "verify_score": None}
        accuracy = float(np.mean([bool(verdict.correct) for verdict in verdicts]))
        return {
            "verify_answers": len(verdicts),
            "verify_accuracy": accuracy,
            "verify_score": chance_anchored(accuracy, params.n_candidates),
        }
