"""The analysis as researchers look at it: the report's context (figures as inline SVG, tables) for the
admin's pages and for `manage.py analyze --report FILE`, a unit's drill-down, and the live view."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from analysis import plots
from analysis.rows import RowFilter, select
from analysis.scores import UNIT
from analysis.stats import bootstrap_mean
from analysis.study import merge_exclusions, to_json, unit_intervals
from experiments.analysis_frames import frame
from experiments.export.responses import responses_table
from experiments.export.tables import sessions_table
from experiments.models import Study, StudyUnit, Trial
from stimuli.models import Unit

# Below this CI width (on the score's scale) the live view calls a unit well measured.
WELL_MEASURED_WIDTH = 0.2


def _svg(text: str) -> SafeString:
    # matplotlib's own output, drawn from numbers and the study's names (which it escapes as XML text).
    return mark_safe(text)  # noqa: S308


def report_context(result: Mapping[str, Any], unit_url: Callable[[str, Mapping[str, Any]], str | None]
                   | None = None) -> dict[str, Any]:
    """What the report template shows: every study with its figures, and the comparison across them.

    unit_url(study slug, unit row) links a unit to its drill-down (the admin's), or None (a file)."""
    data = to_json(result)
    for study in data["studies"]:
        study["figures"] = {
            "depth": _svg(plots.layer_depth(study)),
            "distribution": _svg(plots.score_distribution(study)),
        }
        for unit in study["units"]:
            unit["url"] = unit_url(study["name"], unit) if unit_url else None
    across = data["across"]
    figures: dict[str, SafeString] = {}
    if data["studies"]:
        figures["model_scores"] = _svg(plots.model_scores(data["studies"]))
    if across and across["comparison"]:
        p = across["comparison"]["posthoc"]["p"]
        figures["posthoc"] = _svg(plots.posthoc_matrix(list(p), p))
        across["comparison"]["matrix"] = [(row, [p[row][column] for column in p]) for row in p]
    return {"analysis": data, "figures": figures, "generated_at": timezone.now()}


def write_report(result: Mapping[str, Any], path: str | Path) -> None:
    """The report as one self-contained HTML file (figures inline), to keep or print to PDF."""
    Path(path).write_text(render_to_string("analysis/report.html", report_context(result)), encoding="utf-8")


def study_unit_ids(studies: Sequence[Study]) -> dict[tuple[str, tuple[Any, ...]], int]:
    """(study slug, UNIT key) -> the Unit's id, for links from the report's rows."""
    rows = StudyUnit.objects.filter(study__in=studies).values_list(
        "study__slug", "unit__model__name", "unit__kind", "unit__layer", "unit__channel", "unit_id"
    )
    return {(slug, (model, kind, layer, channel)): pk for slug, model, kind, layer, channel, pk in rows}


def unit_key(unit: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(unit[name] for name in UNIT)


def _responses_and_sessions(study: Study) -> tuple[pd.DataFrame, pd.DataFrame]:
    # As the export writes them; not the units table, whose protocol columns are a second pass over the answers.
    return frame(responses_table([study])), frame(sessions_table([study]))


def _unit_rows(study: Study, unit: Unit, row_filter: RowFilter) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All of the unit's responses in the study (every phase and session) and the ones that count."""
    responses, sessions = _responses_and_sessions(study)
    if responses.empty:
        return responses, responses
    responses = merge_exclusions(responses, sessions)
    mine = responses[
        (responses["model"] == unit.model.name) & (responses["unit_kind"] == unit.kind)
        & (responses["layer"] == unit.layer) & (responses["channel"] == unit.channel)
    ]
    return mine, select(mine, row_filter).rows


def unit_detail(study: Study, unit: Unit, row_filter: RowFilter | None = None, seed: int = 0) -> dict[str, Any]:
    """One unit's score with its CI (10,000 resamples of its counted responses) and every trial of it."""
    chosen = row_filter or RowFilter()
    mine, counted = _unit_rows(study, unit, chosen)
    interval = unit_intervals(study.protocol, counted, seed=seed, n_resamples=10_000) if len(counted) else None
    row = interval.iloc[0].to_dict() if interval is not None else None
    columns = [c for c in ("session", "trial_index", "phase", "trial_kind", "batch", "choice", "confidence",
                           "correct", "score", "rt_ms", "session_passed", "exclusion_reasons") if c in mine]
    trials = mine.sort_values(["session", "trial_index"])[columns] if len(mine) else mine
    counted_ids = set(zip(counted["session"], counted["trial_index"], strict=True)) if len(counted) else set()
    return {
        "unit": unit,
        "filter": chosen.describe(),
        "score": row,
        "n_counted": len(counted),
        "columns": columns,
        "trials": [
            {"values": [record[c] for c in columns],
             "counts": (record["session"], record["trial_index"]) in counted_ids}
            for record in trials.astype(object).where(trials.notna(), None).to_dict("records")
        ],
    }


def live_units(study: Study, row_filter: RowFilter | None = None, seed: int = 0) -> dict[str, Any]:
    """Per main unit of the study, the running score and its CI width, the least measured first."""
    chosen = row_filter or RowFilter()
    responses, sessions = _responses_and_sessions(study)
    counted = select(merge_exclusions(responses, sessions), chosen).rows if not responses.empty else responses
    intervals = unit_intervals(study.protocol, counted, seed=seed) if len(counted) else pd.DataFrame()
    units = []
    # The units of main trials: a published study's hand-made catch units are not measured.
    main_units = (
        study.study_units.filter(
            role=StudyUnit.Role.MAIN, unit__trials__study=study, unit__trials__kind=Trial.Kind.MAIN
        )
        .distinct()
        .select_related("unit", "unit__model")
    )
    for study_unit in main_units:
        unit = study_unit.unit
        key = (unit.model.name, unit.kind, unit.layer, unit.channel)
        found = intervals.loc[key] if len(intervals) and key in intervals.index else None
        units.append({
            "unit": unit,
            "n": int(found["n"]) if found is not None else 0,
            "score": float(found["score"]) if found is not None else None,
            "low": float(found["low"]) if found is not None else None,
            "high": float(found["high"]) if found is not None else None,
            "width": float(found["width"]) if found is not None else None,
            "well_measured": found is not None and float(found["width"]) <= WELL_MEASURED_WIDTH,
        })
    units.sort(key=lambda u: (-(u["width"] if u["width"] is not None else 2.0), u["n"]))
    scores = [u["score"] for u in units if u["score"] is not None]
    return {
        "units": units,
        "filter": chosen.describe(),
        "target": study.target_per_unit,
        "well_measured_width": WELL_MEASURED_WIDTH,
        "n_well_measured": sum(u["well_measured"] for u in units),
        "model_score": bootstrap_mean(scores, seed=seed, n_resamples=2_000) if scores else None,
    }
