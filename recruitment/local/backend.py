"""Lab and pilot studies: a shareable link carrying a participant id, and nothing to launch or pay."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from experiments.links import is_signed
from experiments.models import Session, Study
from experiments.recruiters import Arrival, ArrivalRefused, Spend, Terms
from recruitment.backends import Backend

MAX_PARTICIPANT_ID = 200


class LocalRecruiter(Backend):
    name = "local"
    title = "local link"
    label = "the link its researchers share"
    url_params: Mapping[str, str] = MappingProxyType({"participant": "participant", "sig": "sig"})

    def arrival(self, study: Study, data: dict[str, Any]) -> Arrival:
        """A participant id and the platform's signature of it; unsigned ids only where the study
        accepts them (pilots, the demo): anyone can make those up."""
        participant = str(data.get("participant") or "").strip()
        if not participant:
            raise ValueError("participant: a participant id is required for local links")
        if len(participant) > MAX_PARTICIPANT_ID:
            raise ValueError(f"participant: at most {MAX_PARTICIPANT_ID} characters")
        sig = str(data.get("sig") or "").strip()
        signed = bool(sig) and is_signed(study, participant, sig)
        if sig and not signed:
            raise ArrivalRefused("This link's signature is not valid: please open the exact link you were given.",
                                 reason="unsigned")
        if not signed and not study.accepts_unsigned_links:
            raise ArrivalRefused("This link is incomplete: please open the exact link you were given.",
                                 reason="unsigned")
        return Arrival(participant_id=participant, signed=signed)

    def terms(self, study: Study) -> Terms:
        # A local link pays nothing through the platform: what participants get is the study's own statement.
        return Terms(pay="", payment="")

    def spend(self, study: Study) -> Spend | None:
        return None

    def hand_back(self, session: Session) -> dict[str, Any]:
        # The session's own code: a participant's code cannot be passed on as anyone else's.
        return {"completion_code": session.completion_code or session.study.completion_code}
