"""The IMI 2-AFC task: which of two queries matches the maximally activating references?

Screen: a block of minimally and a block of maximally activating references
(the most extreme first, the others shuffled per session) and two queries, one
strongly positive and one strongly negative, in random order. The answer is
the query's position and a confidence from 1 to 3. docs/protocols.md has the
whole specification.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from protocols.base import (
    CATCH,
    JSON,
    LESS_OBVIOUS,
    MAIN,
    OBVIOUS,
    PRACTICE,
    Answered,
    BrowserModule,
    CheckResult,
    Design,
    ExportColumn,
    ImageSlot,
    Layout,
    Protocol,
    Score,
    ShownImage,
    Templates,
    TrialPlan,
    UnitActivations,
    Variant,
    catch_check,
    grid_of,
)
from protocols.params import ParamsError
from protocols.selection import EASY
from protocols.two_afc.params import TwoAFCParams
from protocols.two_afc.selection import TrialStimuli, catch_trial, query_windows, select_trials
from protocols.two_afc.serializers import TwoAFCAnswerSerializer, TwoAFCTrialSerializer

# Roles of a trial's images; rank 0 is the most extreme.
REFERENCE_MIN = "reference_min"
REFERENCE_MAX = "reference_max"
QUERY_POSITIVE = "query_positive"
QUERY_NEGATIVE = "query_negative"
QUERY_ROLES = (QUERY_POSITIVE, QUERY_NEGATIVE)


def _slots(stimuli: TrialStimuli, queries: Variant = Variant.ORIGINAL) -> tuple[ImageSlot, ...]:
    """Every image of a trial; catch queries are disguised copies, so that they are not found among the
    references by their names or their pixels."""
    return (
        tuple(ImageSlot(REFERENCE_MIN, rank, row) for rank, row in enumerate(stimuli.reference_min))
        + tuple(ImageSlot(REFERENCE_MAX, rank, row) for rank, row in enumerate(stimuli.reference_max))
        + (
            ImageSlot(QUERY_POSITIVE, 0, stimuli.query_positive, queries),
            ImageSlot(QUERY_NEGATIVE, 0, stimuli.query_negative, queries),
        )
    )


class TwoAFC(Protocol[TwoAFCParams]):
    name = "2afc"
    title = "2-AFC (IMI)"
    params_class = TwoAFCParams
    # Trials are built from one scalar per image, whatever the unit is (the IMI task does not depend on it).
    unit_kinds = ("channel", "sae_latent")
    templates = Templates(
        consent="protocols/two_afc/consent.html",
        instructions="protocols/two_afc/instructions.html",
        preview="protocols/two_afc/preview.html",
        sample="protocols/two_afc/sample.html",
    )
    browser = BrowserModule(script="protocols/two_afc/trial.js", stylesheet="protocols/two_afc/trial.css")
    trial_serializer = TwoAFCTrialSerializer
    answer_serializer = TwoAFCAnswerSerializer
    export_columns = {
        "positive_position": ExportColumn("key", "choice", "int"),
        "choice": ExportColumn("answer", "choice", "int"),
        "confidence": ExportColumn("answer", "confidence", "int"),
    }
    check_names = ("catch_trials", "position_bias")

    def check_design(self, design: Design[TwoAFCParams]) -> None:
        if design.params.n_practice_obvious > design.n_practice_trials:
            raise ParamsError({"n_practice_obvious": ["Cannot exceed the number of practice trials."]})

    def check_pool(self, design: Design[TwoAFCParams], n_images: int) -> None:
        params = design.params
        query_windows(n_images, design.trials_per_unit, params.difficulty, params.references_per_side)
        if design.n_practice_trials > params.n_practice_obvious:
            query_windows(n_images, 1, params.practice_less_obvious_difficulty, params.references_per_side)

    def build_trials(self, design: Design[TwoAFCParams], unit: UnitActivations) -> list[TrialPlan]:
        """A main unit: t main trials and one catch trial on batch 0's references. A practice unit:
        one trial, obvious (easy) for the first n_practice_obvious units, less obvious after.

        Practice trials are drawn with t = 1, since only one is shown per unit: the
        references are the unit's most extreme images, which suits a warm-up and lets
        less obvious windows fit in smaller pools.
        """
        params = design.params
        if unit.role == PRACTICE:
            if unit.practice_index < params.n_practice_obvious:
                level, difficulty = OBVIOUS, EASY
            else:
                level, difficulty = LESS_OBVIOUS, params.practice_less_obvious_difficulty
            [trial] = select_trials(unit.activations, 1, difficulty, unit.rng, params.references_per_side)
            return [TrialPlan(PRACTICE, trial.batch, difficulty, _slots(trial), level)]
        trials = select_trials(
            unit.activations, design.trials_per_unit, params.difficulty, unit.rng, params.references_per_side
        )
        plans = [TrialPlan(MAIN, trial.batch, params.difficulty, _slots(trial)) for trial in trials]
        # Drawn after the main trials, so that the catch trial's draw never changes them.
        catch = catch_trial(trials[0], unit.rng)
        return plans + [TrialPlan(CATCH, catch.batch, params.difficulty, _slots(catch, Variant.DISGUISED_COPY))]

    def layout(
        self, images: Sequence[ShownImage], content: JSON, params: TwoAFCParams, rng: random.Random
    ) -> Layout:
        """Reference blocks (most extreme first, the others shuffled) and the queries' order;
        the key is the display position of the positive query. Without the minimally activating
        block (Max-only designs) its images stay stored but are not displayed."""
        by_role: dict[str, list[int]] = defaultdict(list)
        for image in sorted(images, key=lambda i: i.rank):
            by_role[image.role].append(image.image_id)

        def block(role: str) -> list[int]:
            ids = by_role[role]
            rest = ids[1:]
            rng.shuffle(rest)
            return ids[:1] + rest

        positive, negative = by_role[QUERY_POSITIVE][0], by_role[QUERY_NEGATIVE][0]
        queries = [positive, negative]
        rng.shuffle(queries)
        shown_min = block(REFERENCE_MIN) if params.show_min_references else []
        display = {"min": shown_min, "max": block(REFERENCE_MAX), "queries": queries}
        return Layout(display=display, key={"choice": queries.index(positive)})

    def payload(self, display: JSON, urls: Mapping[int, str], params: TwoAFCParams) -> JSON:
        return {
            "references": {"min": [urls[i] for i in display["min"]], "max": [urls[i] for i in display["max"]]},
            "queries": [urls[i] for i in display["queries"]],
            "grid": grid_of(len(display["max"])),
        }

    def score(self, answer: Mapping[str, Any], key: JSON, params: TwoAFCParams) -> Score:
        correct = answer["choice"] == key["choice"]
        return Score(correct=correct, score=float(correct))

    def feedback(self, answer: Mapping[str, Any], key: JSON, display: JSON, urls: Mapping[int, str]) -> JSON:
        # Sent only once the answer is stored, so that the page can mark the right query as well.
        return {"right": key["choice"]}

    def rules(self, params: TwoAFCParams, n_catch_trials: int) -> list[str]:
        return [
            f"At least {params.min_catch_correct} of {n_catch_trials} control trials, which have an obvious answer, "
            "answered right.",
            f"Each of the two images (upper and lower) chosen at least {params.min_position_count} times.",
        ]

    def checks(self, params: TwoAFCParams, main_block: Sequence[Answered], n_catch_trials: int) -> list[CheckResult]:
        # Catch trials count toward the positions too: they are answered like any other trial.
        upper = sum(1 for answered in main_block if answered.answer.get("choice") == 0)
        lower = sum(1 for answered in main_block if answered.answer.get("choice") == 1)
        fewest = min(upper, lower)
        return [
            catch_check(main_block, params.min_catch_correct, n_catch_trials),
            CheckResult(
                "position_bias",
                fewest,
                fewest >= params.min_position_count,
                f"each position chosen at least {params.min_position_count} times",
            ),
        ]
