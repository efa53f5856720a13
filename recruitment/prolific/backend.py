"""Prolific as a recruiter: the ids Prolific puts on the study link, and the completion code."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from recruitment import services
from recruitment.base import Arrival, ArrivalRefused, register
from recruitment.models import ProlificSubmission
from recruitment.prolific.services import COMPLETE_URL

if TYPE_CHECKING:
    from experiments.models import Session, Study

# Prolific ids are 24 hexadecimal digits; accept any short alphanumeric id rather than guess.
PROLIFIC_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")
FIELDS = ("prolific_pid", "study_id", "session_id")


class ProlificRecruiter:
    name = "prolific"

    def arrival(self, study: "Study", data: dict[str, Any]) -> Arrival:
        values = {}
        for name in FIELDS:
            value = str(data.get(name) or "").strip()
            if not value:
                raise ValueError(f"{name}: missing; Prolific passes it on the study link")
            if not PROLIFIC_ID.match(value):
                raise ValueError(f"{name}: {value!r} is not a Prolific id")
            values[name] = value
        expected = getattr(getattr(study, "recruitment", None), "prolific_study_id", "")
        if expected and values["study_id"] != expected:
            raise ArrivalRefused("This link belongs to another Prolific study.")
        return Arrival(participant_id=values["prolific_pid"], external=values)

    def hand_back(self, session: "Session") -> dict[str, Any]:
        code = session.study.completion_code
        return {"completion_code": code, "redirect_url": COMPLETE_URL.format(code=code)}

    def session_started(self, session: "Session") -> None:
        """Record the submission now; the sync fills in its status from Prolific."""
        submission, _ = ProlificSubmission.objects.get_or_create(
            submission_id=session.external["session_id"],
            defaults={
                "recruitment": services.recruitment_for(session.study),
                "participant_id": session.participant_id,
                "status": "ACTIVE",
                "started_at": session.created_at,
            },
        )
        submission.session = session
        submission.save(update_fields=["session", "updated_at"])


register(ProlificRecruiter())
