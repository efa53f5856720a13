"""Reading a dataset bundle (the export's zip: responses.csv, units.csv, sessions.csv, shown_images.csv,
datasheet.json) into dataframes, with no Django: what a notebook starts from.

    from analysis.bundle import read_bundle
    from analysis.study import analyze_studies, to_json
    tables = read_bundle("dataset.zip")
    result = analyze_studies(tables.responses, tables.units, tables.sessions)
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd

# The export writes booleans as True/False and leaves unknowns empty.
BOOLEANS = ["correct", "session_passed", "passed"]


@dataclass
class BundleTables:
    responses: pd.DataFrame
    units: pd.DataFrame
    sessions: pd.DataFrame
    datasheet: dict[str, Any]


def _table(bundle: zipfile.ZipFile, name: str) -> pd.DataFrame:
    with bundle.open(name) as member:
        frame = pd.read_csv(member, keep_default_na=False, na_values=[""], dtype={"session": str, "study": str})
    for column in BOOLEANS:
        if column in frame:
            frame[column] = frame[column].map({True: True, False: False, "True": True, "False": False})
    if "exclusion_reasons" in frame:
        frame["exclusion_reasons"] = frame["exclusion_reasons"].astype("string").fillna("")
    return frame


def read_bundle(path: str | Path | IO[bytes]) -> BundleTables:
    with zipfile.ZipFile(path) as bundle:
        return BundleTables(
            responses=_table(bundle, "responses.csv"),
            units=_table(bundle, "units.csv"),
            sessions=_table(bundle, "sessions.csv"),
            datasheet=json.loads(bundle.read("datasheet.json")),
        )
