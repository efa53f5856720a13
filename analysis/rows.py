"""Which rows count, said out loud: every result carries the filter it was computed on, its n, and how
many rows each exclusion removed.

Reads the responses table's columns `phase`, `trial_kind`, `session`, `session_passed` and, where the
sessions table was merged in, `exclusion_reasons` (the failed checks, ';'-separated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

MAIN = "main"
CATCH = "catch"
# Sessions: only those that passed every exclusion check (the default, as IMI and Borowski did), or all.
PASSING = "passing"
ALL = "all"
SESSIONS = (PASSING, ALL)


@dataclass(frozen=True)
class RowFilter:
    """Main-block, non-catch responses of passing sessions by default."""

    sessions: str = PASSING
    phase: str = MAIN
    trial_kind: str = MAIN

    def __post_init__(self) -> None:
        if self.sessions not in SESSIONS:
            raise ValueError(f"sessions must be one of {', '.join(SESSIONS)}, not {self.sessions!r}")

    def describe(self) -> str:
        who = "passing sessions" if self.sessions == PASSING else "all sessions, failing ones included"
        return f"{self.phase} phase, {self.trial_kind} trials (no catch trials), {who}"

    def to_json(self) -> dict[str, str]:
        return {"sessions": self.sessions, "phase": self.phase, "trial_kind": self.trial_kind,
                "description": self.describe()}


@dataclass
class Selection:
    """The rows a result was computed on, with the filter that chose them and what it left out."""

    rows: pd.DataFrame
    filter: RowFilter
    # Rows removed, by reason, in the order the filter applies them; a failing session's rows count once
    # under each check it failed.
    excluded: dict[str, int] = field(default_factory=dict)
    excluded_sessions: dict[str, int] = field(default_factory=dict)

    @property
    def n_responses(self) -> int:
        return len(self.rows)

    @property
    def n_sessions(self) -> int:
        return int(self.rows["session"].nunique()) if len(self.rows) else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "filter": self.filter.to_json(),
            "n_responses": self.n_responses,
            "n_sessions": self.n_sessions,
            "excluded_responses": self.excluded,
            "excluded_sessions": self.excluded_sessions,
        }


def _failure_reasons(rows: pd.DataFrame) -> pd.Series:
    """Why each row's session does not count: its failed checks, or that it has no verdict yet."""
    if "exclusion_reasons" in rows:
        reasons = rows["exclusion_reasons"].fillna("").astype(str)
    else:
        reasons = pd.Series("", index=rows.index)
    unknown = rows["session_passed"].isna()
    reasons = reasons.where(~unknown, "no verdict (session not completed)")
    return reasons.where(reasons != "", "failed checks (not recorded)")


def select(responses: pd.DataFrame, row_filter: RowFilter | None = None) -> Selection:
    chosen = row_filter or RowFilter()
    excluded: dict[str, int] = {}
    excluded_sessions: dict[str, int] = {}
    rows = responses
    not_phase = rows["phase"] != chosen.phase
    if not_phase.any():
        excluded[f"not {chosen.phase} phase"] = int(not_phase.sum())
    rows = rows[~not_phase]
    other_kind = rows["trial_kind"] != chosen.trial_kind
    for kind, count in rows.loc[other_kind, "trial_kind"].value_counts().items():
        excluded[f"{kind} trials"] = int(count)
    rows = rows[~other_kind]
    if chosen.sessions == PASSING:
        failing = rows["session_passed"] != True  # noqa: E712 (None and NaN do not pass either)
        reasons = _failure_reasons(rows[failing])
        for reason, count in reasons.str.split(";").explode().value_counts().items():
            excluded[f"session: {reason}"] = int(count)
        per_session = rows.loc[failing, ["session"]].assign(reason=reasons).drop_duplicates("session")
        for reason, count in per_session["reason"].str.split(";").explode().value_counts().items():
            excluded_sessions[str(reason)] = int(count)
        rows = rows[~failing]
    return Selection(rows=rows, filter=chosen, excluded=excluded, excluded_sessions=excluded_sessions)
