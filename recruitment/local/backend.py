"""Lab and pilot studies: a shareable link carrying a participant id, and nothing to launch or pay."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from experiments.models import Session, Study
from experiments.recruiters import Arrival
from recruitment.backends import Backend

MAX_PARTICIPANT_ID = 200


class LocalRecruiter(Backend):
    name = "local"
    title = "local link"
    label = "the link its researchers share"
    url_params: Mapping[str, str] = MappingProxyType({"participant": "participant"})

    def arrival(self, study: Study, data: dict[str, Any]) -> Arrival:
        participant = str(data.get("participant") or "").strip()
        if not participant:
            raise ValueError("participant: a participant id is required for local links")
        if len(participant) > MAX_PARTICIPANT_ID:
            raise ValueError(f"participant: at most {MAX_PARTICIPANT_ID} characters")
        return Arrival(participant_id=participant)

    def hand_back(self, session: Session) -> dict[str, Any]:
        return {"completion_code": session.study.completion_code}
