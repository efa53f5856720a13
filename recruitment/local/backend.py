"""Lab and pilot studies: a shareable link carrying a participant id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from recruitment.base import Arrival, register

if TYPE_CHECKING:
    from experiments.models import Session, Study

MAX_PARTICIPANT_ID = 200


class LocalRecruiter:
    name = "local"

    def arrival(self, study: "Study", data: dict[str, Any]) -> Arrival:
        participant = str(data.get("participant") or "").strip()
        if not participant:
            raise ValueError("participant: a participant id is required for local links")
        if len(participant) > MAX_PARTICIPANT_ID:
            raise ValueError(f"participant: at most {MAX_PARTICIPANT_ID} characters")
        return Arrival(participant_id=participant)

    def hand_back(self, session: "Session") -> dict[str, Any]:
        return {"completion_code": session.study.completion_code}

    def session_started(self, session: "Session") -> None:
        """A local link has no recruiter to tell."""


register(LocalRecruiter())
