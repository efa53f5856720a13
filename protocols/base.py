"""The protocol interface: everything that differs between protocols, and nothing else.

A protocol is a class deriving from Protocol, in a sub-package of its own
(see protocols/__init__.py for the registry). It only ever sees plain data:
the generic core (experiments) records activations, stores images and rows,
sequences sessions and talks to the browser, and calls the protocol for the
decisions that are the protocol's own. The protocols' specifications are in
docs/protocols.md.
"""

from __future__ import annotations

import enum
import inspect
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import numpy as np
from rest_framework import serializers

from protocols.params import Params

# Trial kinds, the same for every protocol. Catch trials must look exactly like main trials.
MAIN = "main"
PRACTICE = "practice"
CATCH = "catch"

# Practice levels a protocol may give its practice trials; the preview's sample screen shows an obvious one.
OBVIOUS = "obvious"
LESS_OBVIOUS = "less_obvious"

P = TypeVar("P", bound=Params)
JSON = dict[str, Any]

# The base of a protocol's payload and answer serializers (DRF's Serializer is generic only in its stubs).
if TYPE_CHECKING:
    Fields = serializers.Serializer[Any]
else:
    Fields = serializers.Serializer


class DesignError(ValueError):
    """The study's design cannot be built (for example, the pool is too small); the message says why."""


class AnswerRefused(ValueError):
    """An answer that validates as a shape but breaks the study's own limits (e.g. too many words); the
    message, shown to the participant, says what to change."""


class Recording(enum.Enum):
    """What a protocol needs recorded from the network for every pool image."""

    # One scalar per unit and image: its values over the layer's positions pooled as the study says (mean or max).
    CHANNEL_MEANS = "channel_means"


@dataclass(frozen=True)
class Design(Generic[P]):
    """The study settings a protocol builds trials from: the generic ones it needs, and its own."""

    trials_per_unit: int
    n_practice_trials: int
    params: P


@dataclass(frozen=True)
class UnitActivations:
    """One unit's recorded activations, for building its trials."""

    activations: np.ndarray  # one value per pool image, in pool order
    role: str  # MAIN or PRACTICE
    practice_index: int  # its position among the study's practice units (0 for main units)
    rng: np.random.Generator  # seeded by the study and the unit
    # The pool's image keys in pool order, for a protocol that picks images by what they show (a known concept).
    keys: Sequence[str] = ()


class Variant(enum.Enum):
    """How the engine stores a trial's pool image."""

    ORIGINAL = "original"
    # The same photograph at a glance, but another file with other pixels: a small seeded crop, shift and
    # mirror of it (stimuli.disguise), so that a catch trial showing an image twice is not told apart by
    # comparing its images' names or pixels.
    DISGUISED_COPY = "disguised_copy"


@dataclass(frozen=True)
class ImageSlot:
    """A pool image in a trial: its role and rank (0 = the most extreme) in the protocol's terms.

    With `overlay`, the engine also stores the unit's heat map over the stored image as an image of
    its own (role overlay_role(role), same rank; drawn by Protocol.overlay), so that the plain image
    stays available and a page can lay one over the other. With `keep_map`, it keeps the unit's
    activation map on the stored image's pixels on the server, for the protocol's verdict
    (ShownImage.map_id); a kept map is never served.
    """

    role: str
    rank: int
    row: int
    variant: Variant = Variant.ORIGINAL
    overlay: bool = False
    keep_map: bool = False


def overlay_role(role: str) -> str:
    """The role of the heat-map overlay stored for an image of this role."""
    return f"{role}_overlay"


@dataclass(frozen=True)
class TrialPlan:
    """One trial to store: what kind it is, which of the unit's trials (batch), and its images."""

    kind: str
    batch: int
    difficulty: str
    images: tuple[ImageSlot, ...]
    practice_level: str = ""
    # What the trial holds beside its images, stored with it (a known concept's label, a name to verify).
    content: JSON = field(default_factory=dict)


@dataclass(frozen=True)
class PracticeChoice:
    """How a study's practice units are chosen: `candidates` units are drawn for each of them and the ones
    whose practice trials Protocol.practice_value finds most obvious are kept; with 1, every unit drawn is
    kept as it is. `rule` says it in words, for the admin and the dataset's datasheet (Study.practice_rule)."""

    candidates: int
    rule: str


# What a protocol does unless it says otherwise: its practice units are drawn like its main units.
DRAWN_PRACTICE = PracticeChoice(1, "drawn at random, as the main units are")


@dataclass(frozen=True)
class ShownImage:
    """A stored image of a trial, as a session lays it out."""

    image_id: int
    role: str
    rank: int
    map_id: int | None = None  # its kept activation map, where its slot asked for one
    width: int = 0  # its pixels
    height: int = 0


@dataclass(frozen=True)
class Layout:
    """A session trial: what is shown where (display) and the answer key, both JSON.

    The display is turned into the browser's payload; the key never leaves the server.
    """

    display: JSON
    key: JSON


@dataclass(frozen=True)
class SourceAnswer:
    """A passing session's answer to a trial of the study a derived study is built from."""

    author: str  # the session's pseudonym
    answer: Mapping[str, Any]
    shown: tuple[int, ...]  # the image ids its session saw on this trial


@dataclass(frozen=True)
class SourceTrial:
    """A trial of the source study, with its stored images and the passing answers to it."""

    unit: int  # the unit's id
    kind: str
    images: tuple[ShownImage, ...]
    content: JSON
    answers: tuple[SourceAnswer, ...]


@dataclass(frozen=True)
class DerivedTrial:
    """A trial of a derived study: the source's stored images in the roles of the derived protocol."""

    unit: int
    kind: str
    batch: int
    images: tuple[ShownImage, ...]
    content: JSON = field(default_factory=dict)
    practice_level: str = ""


@dataclass(frozen=True)
class UnitAnswer:
    """A main, non-catch answer, as a protocol's unit statistics and answer comparisons see it (of a passing
    session, but for the answers compare_answers updates: those of any completed session)."""

    unit: int
    author: str
    answer: Mapping[str, Any]
    key: JSON
    correct: bool | None


@dataclass(frozen=True)
class Score:
    """A response's verdict: whether it was right (None where there is no right answer), a graded score,
    and the protocol's own numbers behind it (stored with the response, exported by its columns)."""

    correct: bool | None
    score: float | None = None
    details: JSON = field(default_factory=dict)


@dataclass(frozen=True)
class Answered:
    """A stored response, as the checks see it."""

    kind: str
    answer: Mapping[str, Any]
    correct: bool | None
    rt_ms: int
    details: Mapping[str, Any] = field(default_factory=dict)  # the verdict's Score.details


@dataclass(frozen=True)
class CheckResult:
    name: str
    value: float
    passed: bool
    rule: str


@dataclass(frozen=True)
class ExportColumn:
    """An export column: the `field` of the response's `source` ("answer", "key", or "details": the
    verdict's Score.details), of `type`
    ("int", "float", "bool", "str", or "json" for a list or object exported as its JSON text, as typed
    formats such as Parquet store it)."""

    source: str
    field: str
    type: str


@dataclass(frozen=True)
class Templates:
    """Template fragments of the participant page, as template names."""

    consent: str  # one sentence: what the participant will do
    instructions: str
    preview: str  # the MTurk preview's description and sample screen (context: `sample`, the payload)
    # A still drawing of one trial's payload (context: `sample`; in the admin's gallery also `key`, the
    # answer key, to mark the answer): the instructions' example screen and the gallery. Blank: none.
    sample: str = ""


@dataclass(frozen=True)
class BrowserModule:
    """The protocol's static files: a script that registers its trial module, and its stylesheet."""

    script: str
    stylesheet: str | None = None


class Protocol(ABC, Generic[P]):
    """Base class of every protocol; subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]  # the registry key, stored on studies
    title: ClassVar[str]  # shown in the admin
    params_class: type[P]
    recording: ClassVar[Recording] = Recording.CHANNEL_MEANS
    # The conditions (name: label) and unit kinds the protocol is implemented for.
    conditions: ClassVar[Mapping[str, str]] = {"natural": "natural references"}
    unit_kinds: ClassVar[tuple[str, ...]] = ("channel",)
    templates: ClassVar[Templates]
    browser: ClassVar[BrowserModule]
    # The payload fields beside the generic envelope, and the answer fields beside index,
    # rt_ms and client_id: they validate answers and make the OpenAPI schema.
    trial_serializer: ClassVar[type[Fields]]
    answer_serializer: ClassVar[type[Fields]]
    # Its export columns: each a field of the answer or of the key (read in the database, and written
    # back there when a dataset bundle is imported).
    export_columns: ClassVar[Mapping[str, ExportColumn]] = {}
    # Its columns of the units table (name: type), from unit_values: computed at export from the verdicts, so
    # always current. Statistics too costly for that (text embeddings) are unit_statistics, stored by a job.
    unit_columns: ClassVar[Mapping[str, str]] = {}
    check_names: ClassVar[tuple[str, ...]] = ()

    @property
    def folder(self) -> Path:
        """The protocol's package folder: its `static/` and `templates/` are served from here."""
        return Path(inspect.getfile(type(self))).parent

    def params(self, data: Mapping[str, Any] | None) -> P:
        """Validated parameters from a study's stored JSON (raises ParamsError)."""
        return self.params_class.from_stored(data)

    def prompt(self, params: P) -> str:
        """The question shown above every trial."""
        return str(getattr(params, "prompt", ""))

    # ---- rendering a study

    def check_design(self, design: Design[P]) -> None:
        """Raise ParamsError, naming the parameter at fault, when the design contradicts itself;
        called whenever a study is validated."""

    def check_pool(self, design: Design[P], n_images: int) -> None:
        """Raise DesignError when a pool of n_images cannot give the design's trials; called before recording."""

    @abstractmethod
    def build_trials(self, design: Design[P], unit: UnitActivations) -> list[TrialPlan]:
        """The trials of one unit (main and catch for a main unit, practice for a practice unit)."""

    def practice_choice(self, params: P) -> PracticeChoice:
        """How the study's practice units are chosen (hand-picked practice trials, where a study has them, are
        shown instead of its own practice units whatever this says)."""
        return DRAWN_PRACTICE

    def practice_value(
        self, plans: Sequence[TrialPlan], maps: Mapping[tuple[int, int], np.ndarray], params: P
    ) -> float:
        """How obvious a candidate practice unit is, the lower the more obvious; called only where
        practice_choice draws several candidates per practice unit. `plans` are the unit's practice trials
        (build_trials, built as the first practice unit), `maps` the unit's map on the stored image of each
        slot that asks for an overlay or a kept map, by (trial, slot) position in the plans."""
        raise NotImplementedError(f"{type(self).__name__} draws no practice candidates.")

    # ---- sessions

    @abstractmethod
    def layout(self, images: Sequence[ShownImage], content: JSON, params: P, rng: random.Random) -> Layout:
        """Where a session shows the trial's images, and the answer key; all randomness from rng. `content` is
        what the trial holds beside its images (TrialPlan.content: a known concept's label, a name to verify)."""

    def positions(self, display: JSON) -> list[tuple[str, int]]:
        """(position, image id) of every image a display shows, in display order: a list under a name
        gives `name.0`, `name.1`...; a single image id under a name gives the name. Text under a name
        (a name to verify) is no image."""
        shown: list[tuple[str, int]] = []
        for name, value in display.items():
            if isinstance(value, str):
                continue
            if isinstance(value, list):
                shown += [(f"{name}.{number}", image_id) for number, image_id in enumerate(value)]
            else:
                shown.append((name, value))
        return shown

    def image_ids(self, display: JSON) -> list[int]:
        """Every stored image a display shows, for URLs and preloading."""
        return [image_id for _, image_id in self.positions(display)]

    def display_at(self, positions: Sequence[tuple[str, int]]) -> JSON:
        """The display that shows these images at these positions (the inverse of positions)."""
        display: JSON = {}
        for position, image_id in positions:
            name, _, number = position.partition(".")
            if number:
                images = display.setdefault(name, [])
                images.extend([0] * (int(number) + 1 - len(images)))
                images[int(number)] = image_id
            else:
                display[name] = image_id
        return display

    @abstractmethod
    def payload(self, display: JSON, urls: Mapping[int, str], params: P) -> JSON:
        """The browser's trial fields: never the answer, the kind, or anything derivable from them."""

    def complete_answer(self, answer: Mapping[str, Any], params: P) -> JSON:
        """The answer as stored: checked against the study's own limits (raise AnswerRefused) and with what
        the server derives from it (a normalised text, quality signals)."""
        return dict(answer)

    def score(self, answer: Mapping[str, Any], key: JSON, params: P) -> Score:
        """The verdict on a validated answer (a protocol implements this, or judge where it reads kept maps)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither score nor judge.")

    def maps_read(self, key: JSON) -> list[int]:
        """The kept activation maps (ids, from ShownImage.map_id) that the verdict on this key reads."""
        return []

    def key_with_maps(self, key: JSON, maps: Sequence[int]) -> JSON:
        """The key reading these kept maps (ids, in maps_read's order) instead of its own: a dataset bundle's
        import stores the maps it carries under new ids."""
        if maps:
            raise NotImplementedError(f"{type(self).__name__} reads no kept maps.")
        return dict(key)

    def judge(self, answer: Mapping[str, Any], key: JSON, params: P, maps: Mapping[int, np.ndarray]) -> Score:
        """The verdict, given the kept maps maps_read names (map id -> array on the image's pixels)."""
        return self.score(answer, key, params)

    def overlay(self, activation_map: np.ndarray, params: P) -> np.ndarray:
        """The heat-map overlay of a map on an image's pixels: RGBA, uint8, (height, width, 4)."""
        raise NotImplementedError(f"{type(self).__name__} asks for no overlays.")

    def feedback_images(self, key: JSON) -> list[int]:
        """Stored images (ids) that only the reply to an answer shows: never sent or preloaded before it."""
        return []

    def feedback(self, answer: Mapping[str, Any], key: JSON, display: JSON, urls: Mapping[int, str]) -> JSON:
        """Extra fields of the reply to an answer (sent only once the answer is stored)."""
        return {}

    def unit_values(self, params: P, verdicts: Sequence[Score]) -> dict[str, Any]:
        """A unit's unit_columns, from the verdicts on its main, non-catch answers of passing sessions."""
        return {}

    def practice_passed(self, scores: Sequence[Score]) -> bool:
        """Whether a finished practice round lets the participant go on to the main block."""
        return all(score.correct for score in scores)

    def checks(self, params: P, main_block: Sequence[Answered], n_catch_trials: int) -> list[CheckResult]:
        """The protocol's share of the exclusion checks, over the main block's responses."""
        return []

    def rules(self, params: P, n_catch_trials: int) -> list[str]:
        """The protocol's exclusion checks as participants are told them before they start."""
        return []

    # ---- studies built from another study's responses (e.g. a verify stage fed by a describe stage)

    # The protocol whose studies this protocol's studies are built from; None: rendered from a network.
    derived_from: ClassVar[str | None] = None

    def derive(self, params: P, source: Sequence[SourceTrial], rng: np.random.Generator) -> list[DerivedTrial]:
        """The trials of a study built from the source study's trials and passing answers."""
        raise DesignError(f"Studies of {self.title} are rendered, not built from another study.")

    # ---- unit statistics, computed by a background job once responses are in: those that need more than the
    # verdicts and cost too much to compute at every export (unit_columns are the others)

    # name: type ("float", "int") of each statistic exported per unit.
    unit_statistics: ClassVar[Mapping[str, str]] = {}

    def summarize(self, params: P, answers: Sequence[UnitAnswer], work_dir: Path) -> dict[int, JSON]:
        """Per unit id, the values of unit_statistics over the main answers of passing sessions; work_dir
        is where the protocol may cache what it computed (e.g. text embeddings)."""
        return {}

    # ---- answer signals that compare an answer with other participants' answers (nameability: the nearest name
    # given for another unit), computed when a session completes and again with the unit statistics

    # Whether the protocol has such signals: only then does the core read the answers to compare.
    compares_answers: ClassVar[bool] = False

    def compare_answers(
        self, params: P, answers: Sequence[UnitAnswer], others: Sequence[UnitAnswer], work_dir: Path
    ) -> list[JSON]:
        """Per answer, in order, the fields to merge into it (stored with its other signals, before the checks
        run), from comparing it with `others`: the main answers of passing sessions so far, among them any of
        `answers` that count (the protocol leaves out the pairs it must not compare, such as an answer and
        itself); work_dir as for summarize."""
        return [{} for _ in answers]


def catch_check(main_block: Sequence[Answered], minimum: int, n_catch_trials: int) -> CheckResult:
    """At least `minimum` catch trials answered right: a check every protocol with catch trials shares."""
    right = sum(1 for answered in main_block if answered.kind == CATCH and answered.correct)
    return CheckResult(
        "catch_trials", right, right >= minimum, f"at least {minimum} of {n_catch_trials} correct"
    )



class GridSerializer(Fields):
    """grid_of's layout in a trial payload (one schema component for every protocol that lays out a grid)."""

    columns = serializers.IntegerField()
    rows = serializers.IntegerField()


def grid_of(n_images: int) -> dict[str, int]:
    """The most square grid for a block of images: 3 x 3 for nine, 2 x 2 for four, 4 x 3 for twelve."""
    columns = math.ceil(math.sqrt(n_images))
    return {"columns": columns, "rows": math.ceil(n_images / columns)}
