"""One study's (or condition's) whole analysis as JSON-ready data, and the comparison across several.

`analyze` takes the responses table (one row per response, the export's columns; the sessions'
`exclusion_reasons` merged in where known) and the units table (`relative_depth`), as an exported
bundle gives them (analysis.bundle) or the database does (experiments.analysis_frames).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.rows import RowFilter, Selection, select
from analysis.scores import SCORINGS, UNIT, scoring
from analysis.stats import (
    N_RESAMPLES,
    Comparison,
    Correlation,
    MeanCI,
    ParticipantSummary,
    bootstrap_mean,
    compare_groups,
    participant_summary,
    spearman,
)

# The confidence ratings compared (IMI: 1 is unsure, 3 is sure).
CONFIDENCE_LEVELS = (1, 3)


@dataclass
class GroupAnalysis:
    """Everything the report shows of one group of responses (a study, or one condition of it)."""

    name: str
    protocol: str
    condition: str
    selection: Selection
    units: pd.DataFrame  # per unit: score, n, relative_depth, its protocol's columns; indexed by UNIT
    model_score: MeanCI
    participants: ParticipantSummary
    layers: pd.DataFrame  # per layer: mean unit score, units, relative depth
    depth: Correlation
    confidence: dict[int, MeanCI]
    metrics: dict[str, Correlation]

    def to_json(self) -> dict[str, Any]:
        units = self.units.reset_index()
        return {
            "name": self.name,
            "protocol": self.protocol,
            "condition": self.condition,
            "score": scoring(self.protocol).label,
            "rows": self.selection.to_json(),
            "model_score": self.model_score.to_json(),
            "participants": self.participants.to_json(),
            "depth_correlation": {**self.depth.to_json(), "of": "layer-averaged unit score vs relative depth"},
            "layers": _records(self.layers.reset_index()),
            "confidence": {str(level): ci.to_json() for level, ci in self.confidence.items()},
            "metric_correlations": {name: c.to_json() for name, c in self.metrics.items()},
            "units": _records(units),
        }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows: NaN becomes None, numpy scalars plain numbers."""
    cleaned = frame.astype(object).where(frame.notna(), None)
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
            for row in cleaned.to_dict("records")]


def with_depth(scores: pd.DataFrame, units: pd.DataFrame | None) -> pd.DataFrame:
    """The unit scores with each unit's relative depth (from the units table), where known."""
    if units is None or units.empty:
        return scores.assign(relative_depth=np.nan)
    depth = (
        units.rename(columns={"kind": "unit_kind"})
        .drop_duplicates(UNIT)
        .set_index(UNIT)["relative_depth"]
        .astype(float)
    )
    return scores.join(depth, how="left")


def layer_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean unit score per layer, for the depth correlation. Layers are told apart by their relative depth
    where it is known (so that a layer's parts, such as an inception module's branches, are one layer),
    by their names where it is not."""
    frame = scores.reset_index()
    key = frame["relative_depth"].astype(object).where(frame["relative_depth"].notna(), "name:" + frame["layer"])
    grouped = frame.groupby(key.rename("group"), sort=False)
    layers = pd.DataFrame(
        {
            "layer": grouped["layer"].agg(lambda names: ", ".join(sorted(set(names)))),
            "score": grouped["score"].mean(),
            "units": grouped.size(),
            "relative_depth": grouped["relative_depth"].first(),
        }
    )
    return layers.sort_values(["relative_depth", "layer"], na_position="last").set_index("layer")


def confidence_split(protocol: str, rows: pd.DataFrame, *, seed: int, n_resamples: int) -> dict[int, MeanCI]:
    """Unit scores from only the responses given with each confidence, then their mean and CI."""
    if "confidence" not in rows:
        return {}
    split = {}
    for level in CONFIDENCE_LEVELS:
        chosen = rows[rows["confidence"] == level]
        scores = scoring(protocol).units(chosen)["score"] if len(chosen) else pd.Series(dtype=float)
        split[level] = bootstrap_mean(scores.to_numpy(), seed=seed, n_resamples=n_resamples)
    return split


def metric_correlations(scores: pd.DataFrame, metrics: pd.DataFrame | None) -> dict[str, Correlation]:
    """Spearman of the unit score against each per-unit metric (activation sparsity, an SAE's metrics...);
    metrics is indexed by UNIT, one column per metric."""
    if metrics is None or metrics.empty:
        return {}
    joined = scores[["score"]].join(metrics, how="inner")
    return {
        name: spearman(joined[name].to_numpy(), joined["score"].to_numpy(), x_name=str(name), y_name="unit score")
        for name in metrics.columns
    }


def unit_intervals(
    protocol: str, rows: pd.DataFrame, *, seed: int = 0, n_resamples: int = 2_000, method: str = "percentile"
) -> pd.DataFrame:
    """Per unit, its score with a bootstrap CI over its responses, and the CI's width: how well measured
    it is so far (the live view sorts by it). The trial values are resampled and their mean anchored as
    the protocol anchors its score (a monotone map, so the percentile bounds carry over)."""
    how = scoring(protocol)
    records = []
    for key, unit_rows in rows.groupby(UNIT, sort=True, dropna=False):
        ci = bootstrap_mean(unit_rows[how.trial_value].astype(float).to_numpy(), seed=seed,
                            n_resamples=n_resamples, methods=[method])
        low, high = how.anchor(np.array(ci.intervals[method]), unit_rows)
        [score] = how.anchor(np.array([ci.mean]), unit_rows)
        records.append((*key, float(score), len(unit_rows), float(low), float(high)))
    frame = pd.DataFrame.from_records(records, columns=[*UNIT, "score", "n", "low", "high"]).set_index(UNIT)
    frame["width"] = frame["high"] - frame["low"]
    return frame


def analyze(
    responses: pd.DataFrame,
    *,
    protocol: str,
    name: str,
    condition: str = "",
    units: pd.DataFrame | None = None,
    metrics: pd.DataFrame | None = None,
    row_filter: RowFilter | None = None,
    seed: int = 0,
    n_resamples: int = N_RESAMPLES,
) -> GroupAnalysis:
    selection = select(responses, row_filter)
    rows = selection.rows
    how = scoring(protocol)
    scores = with_depth(how.units(rows), units)
    layers = layer_scores(scores)
    return GroupAnalysis(
        name=name,
        protocol=protocol,
        condition=condition,
        selection=selection,
        units=scores,
        model_score=bootstrap_mean(scores["score"].to_numpy(), seed=seed, n_resamples=n_resamples),
        participants=participant_summary(rows, value=how.trial_value),
        layers=layers,
        depth=spearman(layers["relative_depth"].to_numpy(), layers["score"].to_numpy(), x_name="relative depth",
                       y_name="layer score"),
        confidence=confidence_split(protocol, rows, seed=seed, n_resamples=n_resamples),
        metrics=metric_correlations(scores, metrics),
    )


@dataclass
class CrossAnalysis:
    """Across groups: Kruskal-Wallis and Conover-Holm on unit scores, and Spearman of matched units'
    scores between each pair of groups that share units (natural vs synthetic)."""

    comparison: Comparison | None
    matched: dict[str, Correlation]

    def to_json(self) -> dict[str, Any]:
        return {
            "comparison": self.comparison.to_json() if self.comparison else None,
            "matched_units": {pair: c.to_json() for pair, c in self.matched.items()},
        }


def compare(groups: Mapping[str, GroupAnalysis]) -> CrossAnalysis:
    scored = {name: group.units["score"].dropna() for name, group in groups.items()}
    scored = {name: values for name, values in scored.items() if len(values)}
    comparison = compare_groups({n: v.to_numpy() for n, v in scored.items()}) if len(scored) >= 2 else None
    names = list(scored)
    matched = {}
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            both = pd.concat([scored[first], scored[second]], axis=1, join="inner")
            if len(both) >= 3:
                matched[f"{first} vs {second}"] = spearman(
                    both.iloc[:, 0].to_numpy(), both.iloc[:, 1].to_numpy(), x_name=first, y_name=second
                )
    return CrossAnalysis(comparison, matched)


def merge_exclusions(responses: pd.DataFrame, sessions: pd.DataFrame | None) -> pd.DataFrame:
    """The responses with each session's failed checks (the sessions table's `exclusion_reasons`)."""
    if sessions is None or sessions.empty or "exclusion_reasons" in responses:
        return responses
    reasons = sessions[["study", "session", "exclusion_reasons"]].drop_duplicates(["study", "session"])
    return responses.merge(reasons, on=["study", "session"], how="left")


def analyze_studies(
    responses: pd.DataFrame,
    units: pd.DataFrame | None = None,
    sessions: pd.DataFrame | None = None,
    *,
    metrics: Mapping[str, pd.DataFrame] | None = None,
    row_filter: RowFilter | None = None,
    seed: int = 0,
    n_resamples: int = N_RESAMPLES,
) -> dict[str, Any]:
    """Every study of the tables (the `study` column), each with its protocol and condition, and the
    comparison across them; studies of a protocol without a unit score are listed under `skipped`."""
    rows = merge_exclusions(responses, sessions)
    groups = {}
    skipped = {}
    for slug, study_rows in rows.groupby("study", sort=False):
        protocol = str(study_rows["protocol"].iloc[0])
        if protocol not in SCORINGS:
            skipped[str(slug)] = f"no unit score for the protocol {protocol!r} (known: {', '.join(SCORINGS)})"
            continue
        study_units = units[units["study"] == slug] if units is not None and not units.empty else None
        groups[str(slug)] = analyze(
            study_rows, protocol=protocol, name=str(slug),
            condition=str(study_rows["condition"].iloc[0]), units=study_units,
            metrics=(metrics or {}).get(str(slug)), row_filter=row_filter, seed=seed, n_resamples=n_resamples,
        )
    return {"studies": groups, "across": compare(groups) if len(groups) > 1 else None, "skipped": skipped}


def to_json(result: Mapping[str, Any]) -> dict[str, Any]:
    across = result["across"]
    return {
        "studies": [group.to_json() for group in result["studies"].values()],
        "across": across.to_json() if across else None,
        "skipped": dict(result.get("skipped", {})),
    }
