"""Borowski et al. 2021 (ICLR): the released trial CSVs of Experiment I and II, into studies.

The files are those of the paper's `data/` folder (their README describes every column). One study
per published condition, each a 2-AFC study on GoogLeNet:

- Experiment I: natural, synthetic (the paper's `optimized`), and the no-reference baselines none_pre
  and none_post; the trials repeated at the end (`trial_type` repeated) go to a study of their own per
  condition, so that the main analysis never counts a trial twice.
- Experiment II: natural and synthetic, each with Max-1, Max-9, Min-Max-1 and Min-Max-9 references.

Each participant is one session per study, passing (the files hold the participants the paper
analysed). A unit is a GoogLeNet inception module's branch (the module from `unit_name`, e.g. "4e";
the branch from `kernel_size`: 1x1, 3x3, 5x5, pool) and the paper's channel index (0: the randomly
sampled feature map, 1: the hand-picked one); the hand-made practice and catch units keep their
letters. Relative depth is the module's place among GoogLeNet's nine.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.models import Session, Study, Trial
from experiments.published.writer import PublishedDataError, read_table, write_trials

MODEL = "googlenet-borowski2021"
MODEL_DESCRIPTION = "googlenet (torchvision's GoogLeNet, as Borowski et al. 2021 used it; not a timm network)"
SOURCE = "borowski2021"
MODULES = 9  # GoogLeNet's inception modules 3a ... 5b, the files' layer_0 ... layer_8
NEEDED = [
    "subject_id", "trial_nr", "instr_type", "trial_type", "catch_trial", "batch", "layer", "kernel_size", "channel",
    "correct", "response", "correct_response", "abs_conf_rating", "RT", "unit_name",
]
CONDITIONS = {"natural": "natural", "optimized": "synthetic", "none_pre": "none_pre", "none_post": "none_post"}
# The files' kernel_size, as GoogLeNet's inception branches.
BRANCHES = {"0": "1x1", "1": "3x3", "2": "5x5", "3": "pool"}
NUMBERED = re.compile(r"^(layer|channel)_(\d+)$")


def _number(text: str) -> int | None:
    found = NUMBERED.match(str(text))
    return int(found.group(2)) if found else None


def _units(frame: pd.DataFrame) -> pd.DataFrame:
    """layer, channel and relative depth of every row's unit."""
    module = frame["layer"].map(_number)
    channel = frame["channel"].map(_number)
    name = frame["unit_name"].str.strip()
    branch = frame["kernel_size"].astype(str).map(BRANCHES)
    numbered = module.notna() & channel.notna() & branch.notna()
    inception = "inception" + name.str.split(",").str[0].str.strip() + "." + branch.fillna("")
    return pd.DataFrame(
        {
            "layer": np.where(numbered, inception, name + "/" + frame["channel"].astype(str)),
            "channel": np.where(numbered, channel.fillna(0), 0).astype(int),
            "relative_depth": np.where(numbered, module / (MODULES - 1), np.nan),
        },
        index=frame.index,
    )


def _experiment(frame: pd.DataFrame) -> int:
    return 2 if "condition_name" in frame.columns else 1


def _study_keys(frame: pd.DataFrame, experiment: int) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(slug, name, condition) of every row's study."""
    unknown = sorted(set(frame["instr_type"]) - set(CONDITIONS))
    if unknown:
        raise PublishedDataError(f"Unknown instr_type values {', '.join(unknown)} (known: {', '.join(CONDITIONS)}).")
    condition = frame["instr_type"].map(CONDITIONS)
    label = condition
    if experiment == 2:
        label = condition + "-" + frame["condition_name"].str.lower()
    repeated = frame["trial_type"] == "repeated"
    label = label.where(~repeated, label + "-repeated")
    slug = f"{SOURCE}-exp{experiment}-" + label
    title = "Borowski et al. 2021, Experiment " + ("I" if experiment == 1 else "II") + ": " + label
    return slug, title, condition


def read_trials(path: str | Path) -> pd.DataFrame:
    """One released file (CSV, or gzipped CSV) as the writer's trials table."""
    frame = read_table(path, NEEDED, f"{path} (a Borowski et al. 2021 trial file)")
    experiment = _experiment(frame)
    slug, title, condition = _study_keys(frame, experiment)
    practice = frame["trial_type"] == "practice"
    catch = frame["catch_trial"].astype(bool)
    return pd.DataFrame(
        {
            "study": slug, "study_name": title, "condition": condition, "model": MODEL,
            **_units(frame),
            "participant": f"{SOURCE}-exp{experiment}-subject-" + frame["subject_id"].astype(str),
            "passed": True,
            "trial_index": frame["trial_nr"],
            "phase": np.where(practice, Session.Phase.PRACTICE, Session.Phase.MAIN),
            "trial_kind": np.where(practice, Trial.Kind.PRACTICE, np.where(catch, Trial.Kind.CATCH, Trial.Kind.MAIN)),
            "batch": frame["batch"].astype(int),
            # a is the upper query, b the lower.
            "choice": frame["response"].map({"a": 0, "b": 1}),
            "key_choice": frame["correct_response"].map({"a": 0, "b": 1}),
            "confidence": frame["abs_conf_rating"],
            "correct": frame["correct"].astype(bool),
            "rt_ms": frame["RT"] * 1000,
        }
    )


def import_files(paths: Sequence[str | Path]) -> list[Study]:
    if not paths:
        raise PublishedDataError("Name at least one Borowski et al. 2021 trial file.")
    trials = pd.concat([read_trials(path) for path in paths], ignore_index=True)
    return write_trials(trials, models={MODEL: MODEL_DESCRIPTION}, source=SOURCE)
