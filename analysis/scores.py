"""Unit scores, one function per protocol, registered by the protocol's name (SCORINGS), with the column a
participant summary averages.

Each takes the selected responses (rows.select) and returns one row per unit, indexed by UNIT
(model, unit_kind, layer, channel), with `score`, `n` (responses) and its own columns. The columns
each reads:

- 2-AFC: `correct` (bool). Score: proportion correct.
- localizability: `hit` (bool: the click fell inside the top region, the smallest set of pixels
  holding 50% of the activation map's mass) and `p0` (that region's area fraction, the chance of a
  random click); `graded` optional ((A(click) - mean A) / (max A - mean A)). Score:
  S = (hit rate - p0) / (1 - p0), p0 averaged over the unit's queries.
- nameability, verify stage: `correct` (bool: the unit's own image was picked) and `n_candidates` (m).
  Score: S = (a - 1/m) / (1 - 1/m).
- nameability, agreement (no second study): `agreement_scores` over the names' sentence embeddings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

UNIT = ["model", "unit_kind", "layer", "channel"]

UnitScores = Callable[[pd.DataFrame], pd.DataFrame]


def _by_unit(rows: pd.DataFrame) -> pd.api.typing.DataFrameGroupBy:
    return rows.groupby(UNIT, sort=True, dropna=False)


def chance_anchored(rate: pd.Series | np.ndarray | float, chance: pd.Series | np.ndarray | float) -> pd.Series:
    """(rate - chance) / (1 - chance): 0 is what guessing gets, 1 is perfect."""
    return (rate - chance) / (1 - chance)


def proportion_correct(rows: pd.DataFrame) -> pd.DataFrame:
    """2-AFC: the share of a unit's responses that picked the positive query."""
    grouped = _by_unit(rows)["correct"]
    return pd.DataFrame({"score": grouped.mean().astype(float), "n": grouped.size()})


def _chance_column(rows: pd.DataFrame) -> str:
    # The export's `chance` is p0 for one click and 1 - (1 - p0)^n for the best of n; older rows have p0 only.
    return "chance" if "chance" in rows else "p0"


def localizability(rows: pd.DataFrame) -> pd.DataFrame:
    grouped = _by_unit(rows)
    hit_rate = grouped["hit"].mean().astype(float)
    p0 = grouped[_chance_column(rows)].mean().astype(float)
    scores = pd.DataFrame(
        {"score": chance_anchored(hit_rate, p0), "n": grouped.size(), "hit_rate": hit_rate, "p0": p0}
    )
    if "graded" in rows:
        scores["graded"] = grouped["graded"].mean().astype(float)
    return scores


def verification(rows: pd.DataFrame) -> pd.DataFrame:
    grouped = _by_unit(rows)
    accuracy = grouped["correct"].mean().astype(float)
    chance = (1 / rows["n_candidates"].astype(float)).groupby([rows[c] for c in UNIT], dropna=False).mean()
    return pd.DataFrame(
        {"score": chance_anchored(accuracy, chance), "n": grouped.size(), "accuracy": accuracy, "chance": chance}
    )


def _mean_offdiagonal(similarity: np.ndarray) -> float:
    n = len(similarity)
    return float((similarity.sum() - np.trace(similarity)) / (n * (n - 1))) if n > 1 else float("nan")


def agreement_scores(embeddings: np.ndarray, units: pd.DataFrame) -> pd.DataFrame:
    """Nameability without a second study: per unit, the mean pairwise cosine similarity of its names'
    embeddings (`within`), anchored by the mean similarity between names of different units (`between`):
    S = (within - between) / (1 - between).

    embeddings: one row per name; units: the names' UNIT columns, in the same order.
    """
    vectors = np.asarray(embeddings, dtype=float)
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = vectors @ vectors.T
    labels = units[UNIT].astype(str).agg("\x1f".join, axis=1).to_numpy()
    same = labels[:, None] == labels[None, :]
    between = float(similarity[~same].mean()) if (~same).any() else float("nan")
    records = []
    for key, group in units.reset_index(drop=True).groupby(UNIT, sort=True, dropna=False):
        members = group.index.to_numpy()
        within = _mean_offdiagonal(similarity[np.ix_(members, members)])
        records.append((*key, within, len(members)))
    frame = pd.DataFrame.from_records(records, columns=[*UNIT, "within", "n"]).set_index(UNIT)
    frame["between"] = between
    frame["score"] = chance_anchored(frame["within"], between)
    return frame[["score", "n", "within", "between"]]


@dataclass(frozen=True)
class Scoring:
    """How a protocol's responses are scored: per unit, and per trial for participant summaries."""

    units: UnitScores
    trial_value: str  # the column a participant's mean (and a unit's bootstrap) is taken over
    label: str
    # A unit's chance level from its rows, for scores anchored at chance: (rate - chance) / (1 - chance).
    chance: Callable[[pd.DataFrame], float] | None = None

    def anchor(self, rate: np.ndarray, rows: pd.DataFrame) -> np.ndarray:
        """The trial value's mean (rate) as this protocol's score for a unit with these rows."""
        return rate if self.chance is None else np.asarray(chance_anchored(rate, self.chance(rows)))


SCORINGS: dict[str, Scoring] = {
    "2afc": Scoring(proportion_correct, "correct", "proportion correct"),
    "localizability": Scoring(
        localizability, "hit", "chance-anchored localizability", lambda rows: rows[_chance_column(rows)].mean()
    ),
    "nameability_verify": Scoring(
        verification, "correct", "chance-anchored nameability (verify stage)",
        lambda rows: (1 / rows["n_candidates"].astype(float)).mean(),
    ),
}


def scoring(protocol: str) -> Scoring:
    if protocol not in SCORINGS:
        raise ValueError(f"No unit score for the protocol {protocol!r} (known: {', '.join(SCORINGS)}).")
    return SCORINGS[protocol]


def unit_scores(protocol: str, rows: pd.DataFrame) -> pd.DataFrame:
    return scoring(protocol).units(rows)


def activation_sparsity(activations: np.ndarray) -> np.ndarray:
    """Hoyer's sparsity of each column's activations (pool images x units), clipped at 0: 0 when every
    image activates the unit equally, 1 when one image alone does."""
    positive = np.clip(np.asarray(activations, dtype=float), 0, None)
    n = positive.shape[0]
    l1, l2 = positive.sum(axis=0), np.sqrt((positive**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(l2 > 0, l1 / l2, np.sqrt(n))
    return (np.sqrt(n) - ratio) / (np.sqrt(n) - 1)
