"""Nameability, describe stage: name what a unit's top-activating images have in common, in a few words.

Main trials show a unit's exemplars (its strongest images, stratified over batches as in 2-AFC); each unit
also keeps held-out strongly activating images that no namer sees, for the verify stage. Practice and catch
trials show sets of a known concept (images the researcher picked by their pool keys), and a name is right
when its embedding is close to the concept's label. docs/protocols.md §3 has the specification.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
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
    Design,
    DesignError,
    ExportColumn,
    ImageSlot,
    Layout,
    Protocol,
    Score,
    ShownImage,
    Templates,
    TrialPlan,
    UnitActivations,
    UnitAnswer,
    Variant,
    catch_check,
    grid_of,
)
from protocols.nameability import agreement, embeddings, text
from protocols.nameability.params import DescribeParams
from protocols.nameability.serializers import DescribeAnswerSerializer, DescribeTrialSerializer
from protocols.selection import shuffled_bins

# Roles of a trial's images: what the namer sees, and what no namer of the unit sees.
EXEMPLAR = "exemplar"
HELD_OUT = "held_out"
TOP = "top"  # main trials' difficulty: the unit's strongest images
KNOWN = "known_concept"  # practice and catch trials'

# The quality signals the checks may use: (check name, the answer's field that flags it, the parameter that
# turns the check on, what it says).
SIGNALS = (
    ("text_pasted", "pasted", "check_pasted", "pasted"),
    ("text_too_fast", "too_fast", "check_too_fast", "typed too fast"),
    ("text_focus_lost", "focus_lost", "check_focus_lost", "focus lost while typing"),
    ("text_not_words", "unknown_words", "check_not_words", "not words"),
)


def concept_rows(keys: Sequence[str], fragment: str) -> list[int]:
    return [row for row, key in enumerate(keys) if fragment in key]


def _concept_trial(
    kind: str, label: str, fragment: str, design: Design[DescribeParams], unit: UnitActivations
) -> TrialPlan:
    """A known concept's set: n_exemplars of its pool images, drawn from the unit's stream; catch trials
    store disguised copies, so that they are not matched to a practice trial's files."""
    n = design.params.n_exemplars
    rows = concept_rows(unit.keys, fragment)
    if len(rows) < n:
        raise DesignError(
            f"The known concept {label!r} has {len(rows)} pool images (keys containing {fragment!r}); "
            f"its sets need {n}: enlarge the pool or pick another concept."
        )
    chosen = unit.rng.choice(rows, size=n, replace=False)
    variant = Variant.DISGUISED_COPY if kind == CATCH else Variant.ORIGINAL
    slots = tuple(ImageSlot(EXEMPLAR, rank, int(row), variant) for rank, row in enumerate(chosen))
    content: JSON = {"label": label, "practice": kind == PRACTICE}
    return TrialPlan(kind, 0, KNOWN, slots, OBVIOUS if kind == PRACTICE else "", content)


def unit_trials(params: DescribeParams, t: int, unit: UnitActivations) -> list[TrialPlan]:
    """A main unit's t trials. Its n_exemplars * t + n_held_out strongest images: n_held_out of them, drawn at
    random places, are held out of every trial; the rest are cut into n_exemplars bins by strength, and trial b
    shows the b-th image of every bin (exemplars stratified over the whole top, as in 2-AFC)."""
    n, held = params.n_exemplars, params.n_held_out
    strongest = np.argsort(unit.activations, kind="stable")[::-1][: n * t + held]
    held_places = np.sort(unit.rng.choice(len(strongest), size=held, replace=False))
    held_rows = strongest[held_places]
    shown = np.delete(strongest, held_places)
    bins = shuffled_bins(shown, n, unit.rng)
    held_slots = tuple(ImageSlot(HELD_OUT, rank, int(row)) for rank, row in enumerate(held_rows))
    return [
        TrialPlan(
            MAIN, batch, TOP, tuple(ImageSlot(EXEMPLAR, rank, int(row)) for rank, row in enumerate(bins[:, batch]))
            + held_slots,
        )
        for batch in range(t)
    ]


class Describe(Protocol[DescribeParams]):
    name = "nameability"
    title = "Nameability: describe"
    params_class = DescribeParams
    templates = Templates(
        consent="protocols/nameability/describe_consent.html",
        instructions="protocols/nameability/describe_instructions.html",
        preview="protocols/nameability/describe_preview.html",
    )
    browser = BrowserModule(script="protocols/nameability/describe.js", stylesheet="protocols/nameability/trial.css")
    trial_serializer = DescribeTrialSerializer
    answer_serializer = DescribeAnswerSerializer
    export_columns = {
        "text": ExportColumn("answer", "text", "str"),
        "normalised": ExportColumn("answer", "normalised", "str"),
        "words": ExportColumn("answer", "words", "int"),
        "pasted": ExportColumn("answer", "pasted", "bool"),
        "keystrokes": ExportColumn("answer", "keystrokes", "int"),
        "typing_ms": ExportColumn("answer", "typing_ms", "int"),
        "too_fast": ExportColumn("answer", "too_fast", "bool"),
        "focus_lost": ExportColumn("answer", "focus_lost", "bool"),
        "unknown_words": ExportColumn("answer", "unknown_words", "str"),
        "nearest_other_name": ExportColumn("answer", "nearest_other_name", "str"),
        "nearest_other_similarity": ExportColumn("answer", "nearest_other_similarity", "float"),
        "near_duplicate": ExportColumn("answer", "near_duplicate", "bool"),
        "expected_label": ExportColumn("key", "label", "str"),
    }
    check_names = ("catch_trials", *(signal[0] for signal in SIGNALS), "text_near_duplicates", "same_answer")
    unit_statistics = {"names": "int", "agreement": "float", "near_duplicates": "int"}
    compares_answers = True

    def check_pool(self, design: Design[DescribeParams], n_images: int) -> None:
        params = design.params
        needed = params.n_exemplars * design.trials_per_unit + params.n_held_out
        if n_images < needed:
            raise DesignError(
                f"A pool of {n_images} images is too small for {params.n_exemplars} exemplars in each of "
                f"t={design.trials_per_unit} trials plus {params.n_held_out} held-out images: it needs {needed}."
            )

    def build_trials(self, design: Design[DescribeParams], unit: UnitActivations) -> list[TrialPlan]:
        """A practice unit: the set of its place's known concept. A main unit: t main trials and one catch set of
        a known concept drawn from its stream (so that each catch trial has its own images)."""
        concepts = design.params.concept_list
        if unit.role == PRACTICE:
            label, fragment = concepts[unit.practice_index % len(concepts)]
            return [_concept_trial(PRACTICE, label, fragment, design, unit)]
        trials = unit_trials(design.params, design.trials_per_unit, unit)
        label, fragment = concepts[int(unit.rng.integers(len(concepts)))]
        return trials + [_concept_trial(CATCH, label, fragment, design, unit)]

    def layout(
        self, images: Sequence[ShownImage], content: JSON, params: DescribeParams, rng: random.Random
    ) -> Layout:
        """The exemplars in a shuffled order (held-out images are never shown); a known concept's key is its label."""
        exemplars = [image.image_id for image in sorted(images, key=lambda i: i.rank) if image.role == EXEMPLAR]
        rng.shuffle(exemplars)
        key: JSON = {"label": content["label"], "practice": bool(content.get("practice"))} if "label" in content else {}
        return Layout(display={"exemplars": exemplars}, key=key)

    def payload(self, display: JSON, urls: Mapping[int, str], params: DescribeParams) -> JSON:
        embeddings.warm()  # practice and catch names are judged by embeddings: have the model ready by then
        return {
            "exemplars": [urls[i] for i in display["exemplars"]],
            "grid": grid_of(len(display["exemplars"])),
            "limits": {"min_words": params.min_words, "max_words": params.max_words, "max_chars": params.max_chars},
        }

    def complete_answer(self, answer: Mapping[str, Any], params: DescribeParams) -> JSON:
        """Refuse a name outside the study's limits; store it raw with its normalised form and quality signals."""
        raw = str(answer["text"])
        n_words = len(text.words(raw))
        if not params.min_words <= n_words <= params.max_words:
            limit = (
                f"{params.min_words} word" if params.min_words == params.max_words == 1
                else f"{params.min_words} to {params.max_words} words"
            )
            raise AnswerRefused(f"Please name it in {limit} (this has {n_words}).")
        if len(raw.strip()) > params.max_chars:
            raise AnswerRefused(f"Please keep it to {params.max_chars} characters (this has {len(raw.strip())}).")
        typing_ms = int(answer.get("typing_ms", 0))
        return {
            **answer,
            "normalised": text.normalise(raw),
            "words": n_words,
            # Faster than the study's typing speed from the first key to submitting (or no typing at all).
            "too_fast": typing_ms * params.max_chars_per_s < 1000 * len(raw.strip()),
            "unknown_words": " ".join(text.unknown_words(raw)),
        }

    def score(self, answer: Mapping[str, Any], key: JSON, params: DescribeParams) -> Score:
        """A known concept's name is right when close to its label; a unit's name has no right answer."""
        if "label" not in key:
            return Score(correct=None)
        similar = embeddings.similarity(answer["normalised"], text.normalise(key["label"]))
        return Score(correct=similar >= params.close_similarity, score=similar)

    def feedback(self, answer: Mapping[str, Any], key: JSON, display: JSON, urls: Mapping[int, str]) -> JSON:
        """A practice answer is told the label it was compared with (the reply's `correct` says if it was close);
        catch trials say nothing, so that they are not told apart from main trials after the answer either."""
        return {"expected": key["label"]} if key.get("practice") else {}

    def checks(self, params: DescribeParams, main_block: Sequence[Answered], n_catch_trials: int) -> list[CheckResult]:
        names = [answered.answer for answered in main_block if answered.kind == MAIN]
        results = [catch_check(main_block, params.min_catch_correct, n_catch_trials)]
        for check, signal, enabled, what in SIGNALS:
            flagged = sum(1 for answer in names if answer.get(signal))
            on = bool(getattr(params, enabled))
            rule = f"at most {params.max_flagged} names {what}" if on else f"names {what}: counted, not checked"
            results.append(CheckResult(check, flagged, not on or flagged <= params.max_flagged, rule))
        results.append(_near_duplicate_check(params, names))
        distinct = {str(answer.get("normalised", "")) for answer in names}
        same = len(names) >= 2 and len(distinct) == 1
        rule = "not the same name for every unit" if params.check_same_answer else "same name everywhere: not checked"
        results.append(CheckResult("same_answer", float(same), not (same and params.check_same_answer), rule))
        return results

    def summarize(self, params: DescribeParams, answers: Sequence[UnitAnswer], work_dir: Path) -> dict[int, JSON]:
        """Per unit: how many names, their agreement, and how many are near-duplicates of another participant's
        name of another unit. Embeddings are cached per distinct normalised text under work_dir."""
        if not answers:
            return {}
        vectors = _embedded(answers, work_dir)
        units, authors = _units_and_authors(answers)
        by_unit: dict[int, list[int]] = defaultdict(list)
        for row, unit in enumerate(units.tolist()):
            by_unit[unit].append(row)
        scores = agreement.agreement_scores({unit: vectors[rows] for unit, rows in by_unit.items()})
        _, similarity = agreement.nearest_other(vectors, units, authors, vectors, units, authors)
        duplicates = similarity >= params.near_duplicate_similarity  # NaN (no other name) is no duplicate
        return {
            unit: {"names": len(rows), "agreement": scores[unit], "near_duplicates": int(duplicates[rows].sum())}
            for unit, rows in by_unit.items()
        }

    def compare_answers(
        self, params: DescribeParams, answers: Sequence[UnitAnswer], others: Sequence[UnitAnswer], work_dir: Path
    ) -> list[JSON]:
        """Per name: the nearest name (as typed) another participant gave for another unit, the cosine similarity
        of their embeddings, and whether it reaches near_duplicate_similarity; none where there is no such name."""
        vectors = _embedded([*answers, *others], work_dir)
        nearest, similarity = agreement.nearest_other(
            vectors[: len(answers)], *_units_and_authors(answers), vectors[len(answers) :], *_units_and_authors(others)
        )
        return [
            {
                "nearest_other_name": str(others[row].answer.get("text", "")).strip() if row >= 0 else None,
                "nearest_other_similarity": float(similar) if row >= 0 else None,
                "near_duplicate": bool(row >= 0 and similar >= params.near_duplicate_similarity),
            }
            for row, similar in zip(nearest.tolist(), similarity.tolist(), strict=True)
        ]


def _embedded(answers: Sequence[UnitAnswer], work_dir: Path) -> np.ndarray:
    """The answers' normalised names' embeddings, cached per distinct text under work_dir."""
    texts = [str(answer.answer.get("normalised", "")) for answer in answers]
    return embeddings.EmbeddingCache(work_dir / "embeddings").embed(texts)


def _units_and_authors(answers: Sequence[UnitAnswer]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([answer.unit for answer in answers]), np.array([answer.author for answer in answers])


def _near_duplicate_check(params: DescribeParams, names: Sequence[Mapping[str, Any]]) -> CheckResult:
    """The share of a session's main names that are near-duplicates of other participants' names for other units
    (flagged on each answer when the session completed), at most max_near_duplicate_share where it is checked."""
    share = sum(1 for answer in names if answer.get("near_duplicate")) / len(names) if names else 0.0
    on, most = params.check_near_duplicates, params.max_near_duplicate_share
    rule = f"at most {most:.0%} of names near-duplicates of others' for other units" if on else (
        "names near-duplicates of others' for other units: counted, not checked"
    )
    return CheckResult("text_near_duplicates", share, not on or share <= most, rule)
