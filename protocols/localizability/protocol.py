"""Localizability (Colin et al. 2026): can an observer predict where in an image a unit fires?

Screen: K exemplars, each with the unit's heat map laid over it (a separate
image the page composes), and a query image on which the unit is active; the
participant clicks where they expect it to fire. The click, in the query's own
pixels, is scored against the unit's map on the query, which the server keeps
and never sends (protocols.localizability.scoring). docs/protocols.md §2 has
the whole specification.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from rest_framework import serializers

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
    Design,
    ExportColumn,
    ImageSlot,
    Layout,
    PracticeChoice,
    Protocol,
    Score,
    ShownImage,
    Templates,
    TrialPlan,
    UnitActivations,
    Variant,
    catch_check,
    overlay_role,
)
from protocols.localizability.overlay import heat_overlay
from protocols.localizability.params import LocalizabilityParams
from protocols.localizability.scoring import mean_p0, score_response, summarize, unit_score
from protocols.localizability.selection import LocalizationStimuli, catch_trial, query_window, select_trials
from protocols.localizability.serializers import LocalizabilityAnswerSerializer, LocalizabilityTrialSerializer
from protocols.selection import EASY

EXEMPLAR = "exemplar"
QUERY = "query"
# The display's entry that is not an image: the query's size, which the payload states.
QUERY_SIZE = "query_size"


def _slots(stimuli: LocalizationStimuli, query: Variant = Variant.ORIGINAL) -> tuple[ImageSlot, ...]:
    """Exemplars with their overlays; the query with its overlay (shown only as feedback) and its map kept.
    A catch query is a disguised copy of an exemplar, mapped on its own pixels."""
    return tuple(ImageSlot(EXEMPLAR, rank, row, overlay=True) for rank, row in enumerate(stimuli.exemplars)) + (
        ImageSlot(QUERY, 0, stimuli.query, query, overlay=True, keep_map=True),
    )


def in_centre(x: int, y: int, width: int, height: int, radius: float) -> bool:
    """Whether pixel (x, y) lies in the central disc of radius `radius` x the image's shorter side."""
    dx, dy = x + 0.5 - width / 2, y + 0.5 - height / 2
    return bool(dx * dx + dy * dy <= (radius * min(width, height)) ** 2)


class Localizability(Protocol[LocalizabilityParams]):
    name = "localizability"
    title = "Localizability (Colin et al.)"
    params_class = LocalizabilityParams
    unit_kinds = ("channel", "sae_latent")
    templates = Templates(
        consent="protocols/localizability/consent.html",
        instructions="protocols/localizability/instructions.html",
        preview="protocols/localizability/preview.html",
    )
    browser = BrowserModule(
        script="protocols/localizability/trial.js", stylesheet="protocols/localizability/trial.css"
    )
    trial_serializer = LocalizabilityTrialSerializer
    answer_serializer = LocalizabilityAnswerSerializer
    export_columns = {
        "clicks": ExportColumn("answer", "clicks", "json"),
        "query_box": ExportColumn("answer", "query_box", "json"),
        "image_width": ExportColumn("details", "width", "int"),
        "image_height": ExportColumn("details", "height", "int"),
        "hit": ExportColumn("details", "hit", "float"),
        "p0": ExportColumn("details", "p0", "float"),
        "chance": ExportColumn("details", "chance", "float"),
        "graded": ExportColumn("details", "graded", "float"),
        "click_hits": ExportColumn("details", "click_hits", "json"),
        "click_graded": ExportColumn("details", "click_graded", "json"),
    }
    unit_columns = {
        "scored_responses": "int", "hit_rate": "float", "chance": "float", "localizability": "float",
        "graded": "float",
    }
    check_names = ("catch_trials", "centre_bias")

    def check_pool(self, design: Design[LocalizabilityParams], n_images: int) -> None:
        params = design.params
        query_window(n_images, design.trials_per_unit, params.difficulty, params.n_exemplars)
        if design.n_practice_trials:
            query_window(n_images, 1, EASY, params.n_exemplars)

    def build_trials(self, design: Design[LocalizabilityParams], unit: UnitActivations) -> list[TrialPlan]:
        """A main unit: t main trials and one catch trial on batch 0's exemplars. A practice unit: one
        easy trial (its strongest images, and the query just below them)."""
        params = design.params
        if unit.role == PRACTICE:
            [trial] = select_trials(unit.activations, 1, EASY, params.n_exemplars, unit.rng)
            return [TrialPlan(PRACTICE, trial.batch, EASY, _slots(trial), OBVIOUS)]
        trials = select_trials(
            unit.activations, design.trials_per_unit, params.difficulty, params.n_exemplars, unit.rng
        )
        plans = [TrialPlan(MAIN, trial.batch, params.difficulty, _slots(trial)) for trial in trials]
        # Drawn after the main trials, so that the catch trial's draw never changes them.
        catch = catch_trial(trials[0], unit.rng)
        return plans + [TrialPlan(CATCH, catch.batch, params.difficulty, _slots(catch, Variant.DISGUISED_COPY))]

    def practice_choice(self, params: LocalizabilityParams) -> PracticeChoice:
        if params.practice_candidates == 1:
            return super().practice_choice(params)
        return PracticeChoice(
            params.practice_candidates,
            f"the most concentrated of {params.practice_candidates} units drawn per practice unit: the smallest "
            f"mean p0 of their exemplar maps (top region holding {params.region_mass:g} of a map's mass)",
        )

    def practice_value(
        self,
        plans: Sequence[TrialPlan],
        maps: Mapping[tuple[int, int], np.ndarray],
        params: LocalizabilityParams,
    ) -> float:
        """The mean p0 of the exemplars' maps: the smaller, the more plainly the heat maps point at one place."""
        exemplars = [
            maps[(number, position)]
            for number, plan in enumerate(plans)
            for position, slot in enumerate(plan.images)
            if slot.role == EXEMPLAR
        ]
        return mean_p0(exemplars, params.region_mass)

    def overlay(self, activation_map: np.ndarray, params: LocalizabilityParams) -> np.ndarray:
        return heat_overlay(activation_map, params.colour_map, params.overlay_opacity)

    def layout(
        self, images: Sequence[ShownImage], content: JSON, params: LocalizabilityParams, rng: random.Random
    ) -> Layout:
        """Exemplars (the strongest first, the others shuffled) with their overlays, and the query; the
        key names the query's kept map and its overlay, which only the reply to the answer shows."""
        by_role: dict[str, list[ShownImage]] = defaultdict(list)
        for image in sorted(images, key=lambda i: i.rank):
            by_role[image.role].append(image)
        exemplars, overlays = by_role[EXEMPLAR], by_role[overlay_role(EXEMPLAR)]
        order = list(range(1, len(exemplars)))
        rng.shuffle(order)
        order = [0, *order]
        [query], [query_overlay] = by_role[QUERY], by_role[overlay_role(QUERY)]
        display = {
            "exemplars": [exemplars[i].image_id for i in order],
            "overlays": [overlays[i].image_id for i in order],
            "query": query.image_id,
            QUERY_SIZE: [query.width, query.height],
        }
        return Layout(display=display, key={"map": query.map_id, "overlay": query_overlay.image_id})

    def positions(self, display: JSON) -> list[tuple[str, int]]:
        return super().positions({name: value for name, value in display.items() if name != QUERY_SIZE})

    def payload(self, display: JSON, urls: Mapping[int, str], params: LocalizabilityParams) -> JSON:
        width, height = display[QUERY_SIZE]
        return {
            "exemplars": [
                {"image": urls[image], "overlay": urls[overlay]}
                for image, overlay in zip(display["exemplars"], display["overlays"], strict=True)
            ],
            "query": {"image": urls[display["query"]], "width": width, "height": height},
            "max_clicks": params.max_clicks,
        }

    def complete_answer(self, answer: Mapping[str, Any], params: LocalizabilityParams) -> JSON:
        if len(answer["clicks"]) > params.max_clicks:
            raise AnswerRefused(f"This study takes at most {params.max_clicks} click(s).")
        return dict(answer)

    def maps_read(self, key: JSON) -> list[int]:
        return [key["map"]]

    def key_with_maps(self, key: JSON, maps: Sequence[int]) -> JSON:
        [query_map] = maps
        return {**key, "map": query_map}

    def judge(
        self,
        answer: Mapping[str, Any],
        key: JSON,
        params: LocalizabilityParams,
        maps: Mapping[int, np.ndarray],
    ) -> Score:
        """Hit, p0, graded score and chance under the study's click rule; clicks outside the image (its size is
        the kept map's) are refused before anything is stored."""
        summary = summarize(maps[key["map"]], params.region_mass)
        height, width = summary.values.shape
        clicks = [(int(x), int(y)) for x, y in answer["clicks"]]
        outside = [f"({x}, {y})" for x, y in clicks if not (0 <= x < width and 0 <= y < height)]
        if outside:
            raise serializers.ValidationError(
                {"clicks": [f"{', '.join(outside)} lie(s) outside the {width} x {height} image."]}
            )
        result = score_response(summary, clicks, params.click_rule)
        details = {
            "width": width,
            "height": height,
            "hit": result.hit,
            "p0": result.p0,
            "chance": result.chance,
            "graded": result.graded,
            "click_hits": [click.hit for click in result.clicks],
            "click_graded": [click.graded for click in result.clicks],
        }
        # Under `mean`, a response is right when at least half its clicks hit.
        correct = None if result.hit is None else result.hit >= 0.5
        return Score(correct=correct, score=result.graded, details=details)

    def feedback_images(self, key: JSON) -> list[int]:
        return [key["overlay"]]

    def feedback(self, answer: Mapping[str, Any], key: JSON, display: JSON, urls: Mapping[int, str]) -> JSON:
        return {"query_overlay": urls[key["overlay"]]}

    def practice_passed(self, scores: Sequence[Score]) -> bool:
        # A practice map without mass cannot be hit, and so does not hold the participant back.
        return all(score.correct is not False for score in scores)

    def unit_values(self, params: LocalizabilityParams, verdicts: Sequence[Score]) -> dict[str, Any]:
        result = unit_score(
            [v.details.get("hit") for v in verdicts],
            [v.details.get("chance") for v in verdicts],
            [v.details.get("graded") for v in verdicts],
        )
        return {
            "scored_responses": result.n_responses,
            "hit_rate": result.hit_rate,
            "chance": result.chance,
            "localizability": result.localizability,
            "graded": result.graded,
        }

    def checks(
        self, params: LocalizabilityParams, main_block: Sequence[Answered], n_catch_trials: int
    ) -> list[CheckResult]:
        """Catch trials, and centre bias: the share of the main block's clicks in the central disc."""
        clicks = [
            in_centre(x, y, answered.details["width"], answered.details["height"], params.centre_radius)
            for answered in main_block
            if "width" in answered.details
            for x, y in answered.answer.get("clicks", [])
        ]
        share = sum(clicks) / len(clicks) if clicks else 0.0
        return [
            catch_check(main_block, params.min_catch_correct, n_catch_trials),
            CheckResult(
                "centre_bias",
                share,
                share <= params.max_centre_share,
                f"at most {params.max_centre_share:.0%} of clicks within {params.centre_radius:g} of the side "
                "from the centre",
            ),
        ]
