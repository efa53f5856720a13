"""The IMI dataset's responses (Zimmermann et al. 2023), in the columns the IMI repository's analysis
reads (tools/data_analysis: its results table with the trial structure and the checks appended):

    task_id, worker_id (or participant_id)   a session is a (task_id, worker_id, response_index) triple
    response_index                           optional (default 0)
    trial_index (or corrected_trial_index)   the screen's position
    is_demo, catch_trial                     practice (demo) and catch trials
    passed_checks                            the session's verdict
    model, mode                              the network and the condition (natural, optimized -> synthetic)
    layer, channel, batch                    the unit and which of its trials
    correct                                  the verdict
    confidence, rt                           optional: the confidence (1-3) and the time (ms)
    relative_depth                           optional: the unit's layer depth (0..1)

One study per model and condition; the catch trials (IMI marks their model `catch/manual`) go to the
study of the session they were in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from experiments.models import Session, Study, Trial
from experiments.published.writer import PublishedDataError, read_table, write_trials

SOURCE = "imi"
NEEDED = ["task_id", "is_demo", "catch_trial", "passed_checks", "model", "mode", "layer", "channel", "batch", "correct"]
CONDITIONS = {"natural": "natural", "optimized": "synthetic"}


def _first(frame: pd.DataFrame, *names: str) -> str:
    for name in names:
        if name in frame.columns:
            return name
    raise PublishedDataError(f"The IMI responses lack a column {' or '.join(names)}.")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def read_trials(path: str | Path) -> pd.DataFrame:
    frame = read_table(path, NEEDED, f"{path} (IMI responses)")
    worker = _first(frame, "worker_id", "participant_id")
    index = _first(frame, "trial_index", "corrected_trial_index")
    response_index = frame["response_index"] if "response_index" in frame else 0
    session = frame["task_id"].astype(str) + "/" + frame[worker].astype(str) + "/" + pd.Series(
        response_index, index=frame.index
    ).astype(str)
    demo, catch = frame["is_demo"].astype(bool), frame["catch_trial"].astype(bool)
    # A session's model and condition are those of its main trials (catch trials carry IMI's `catch/manual`).
    main = frame[~demo & ~catch]
    if main.empty:
        raise PublishedDataError(f"{path}: no main trials.")
    unknown = sorted(set(main["mode"]) - set(CONDITIONS))
    if unknown:
        raise PublishedDataError(f"{path}: unknown mode {', '.join(map(str, unknown))} (known: natural, optimized).")
    of_session = main.assign(session=session[main.index]).groupby("session").agg(
        model=("model", "first"), mode=("mode", "first")
    )
    model = session.map(of_session["model"])
    condition = session.map(of_session["mode"]).map(CONDITIONS)
    if model.isna().any():
        raise PublishedDataError(f"{path}: some sessions have no main trial to tell their model and condition.")
    channel = pd.to_numeric(frame["channel"], errors="coerce")
    own_unit = ~(demo | catch) | channel.notna()
    # IMI's demo trials name no unit: they are stored as one practice unit.
    layer = frame["layer"].astype(str).where(frame["layer"].notna(), "practice")
    return pd.DataFrame(
        {
            "study": f"{SOURCE}-" + model.map(_slug) + "-" + condition,
            "study_name": "IMI (Zimmermann et al. 2023): " + model + ", " + condition,
            "condition": condition, "model": model.map(_slug),
            # Practice and catch units without a channel number keep their names as layers.
            "layer": np.where(own_unit, layer, layer + "/" + frame["channel"].astype(str).fillna("")),
            "channel": np.where(own_unit, channel.fillna(0), 0).astype(int),
            "relative_depth": frame["relative_depth"] if "relative_depth" in frame else np.nan,
            "participant": session, "passed": frame["passed_checks"].astype(bool),
            "trial_index": frame[index].astype(int),
            "phase": np.where(demo, Session.Phase.PRACTICE, Session.Phase.MAIN),
            "trial_kind": np.where(demo, Trial.Kind.PRACTICE, np.where(catch, Trial.Kind.CATCH, Trial.Kind.MAIN)),
            "batch": pd.to_numeric(frame["batch"], errors="coerce").fillna(0).clip(lower=0).astype(int),
            "choice": np.nan, "key_choice": np.nan,
            "confidence": frame["confidence"] if "confidence" in frame else np.nan,
            "correct": frame["correct"].astype(bool),
            "rt_ms": frame["rt"] if "rt" in frame else np.nan,
        }
    )


def import_file(path: str | Path) -> list[Study]:
    trials = read_trials(path)
    models = {name: f"{name} (IMI dataset)" for name in trials["model"].unique()}
    return write_trials(trials, models=models, source=SOURCE)
