"""Prolific as a recruiter: the ids on the study link, the completion code, and Prolific's side of
launching, syncing and paying.

The work itself is in recruitment.prolific.services; this class is what the rest
of the platform calls.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType, ModuleType
from typing import Any, ClassVar

from experiments.models import Session, Study
from experiments.recruiters import Arrival, ArrivalRefused
from recruitment import selectors
from recruitment.backends import ServiceBackend, Work, recruitment_for
from recruitment.conf import prolific_api_token
from recruitment.errors import ConfigurationError
from recruitment.models import Payment, ProlificSubmission, Recruitment
from recruitment.prolific import services
from recruitment.prolific.inlines import SubmissionInline

# Prolific ids are 24 hexadecimal digits; accept any short alphanumeric id rather than guess.
PROLIFIC_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")


class ProlificRecruiter(ServiceBackend):
    name = "prolific"
    title = label = "Prolific"
    # What services.URL_PARAMETERS has Prolific put on the study link.
    url_params: Mapping[str, str] = MappingProxyType(
        {"prolific_pid": "PROLIFIC_PID", "study_id": "STUDY_ID", "session_id": "SESSION_ID"}
    )
    admin_inlines = (SubmissionInline,)
    service: ClassVar[ModuleType] = services

    # The participant side.

    def arrival(self, study: Study, data: dict[str, Any]) -> Arrival:
        values = {}
        for name in self.url_params:
            value = str(data.get(name) or "").strip()
            if not value:
                raise ValueError(f"{name}: missing; Prolific passes it on the study link")
            if not PROLIFIC_ID.match(value):
                raise ValueError(f"{name}: {value!r} is not a Prolific id")
            values[name] = value
        expected = getattr(getattr(study, "recruitment", None), "prolific_study_id", "")
        if not expected:
            raise ArrivalRefused("This study is not published on Prolific: please use the link Prolific gives you.")
        if values["study_id"] != expected:
            raise ArrivalRefused("This link belongs to another Prolific study.")
        return Arrival(participant_id=values["prolific_pid"], external=values)

    def hand_back(self, session: Session) -> dict[str, Any]:
        code = session.study.completion_code
        return {"completion_code": code, "redirect_url": services.COMPLETE_URL.format(code=code)}

    def session_started(self, session: Session) -> None:
        """Record the submission now; the sync fills in its status from Prolific."""
        submission, _ = ProlificSubmission.objects.get_or_create(
            submission_id=session.external["session_id"],
            defaults={
                "recruitment": recruitment_for(session.study),
                "participant_id": session.participant_id,
                "status": "ACTIVE",
                "started_at": session.created_at,
            },
        )
        submission.session = session
        submission.save(update_fields=["session", "updated_at"])

    # Launching, running and paying.

    def check_launch(self, recruitment: Recruitment, *, sandbox: bool) -> None:
        if sandbox:
            raise ConfigurationError("Prolific has no sandbox: try the study with a local link instead.")
        prolific_api_token()

    def can_resend_payment(self, payment: Payment) -> bool:
        # Paying a set-up bonus again pays it again, and Prolific pays bonuses a few minutes
        # later, so a bonus missing from the submission does not prove the call failed.
        return payment.kind != Payment.Kind.BONUS

    # Reads; the cost estimate is Backend's, before Prolific's fee.

    def payable(self, recruitment: Recruitment) -> list[Work]:
        """Submissions awaiting review, and approved ones that may still get a bonus."""
        submissions = (
            recruitment.submissions.filter(
                status__in=[selectors.PROLIFIC_AWAITING_REVIEW, selectors.PROLIFIC_APPROVED]
            )
            .select_related("session")
            .order_by("pk")
        )
        return [
            Work(
                external_id=submission.submission_id,
                worker_id=submission.participant_id,
                session=submission.session,
                reviewable=submission.status == selectors.PROLIFIC_AWAITING_REVIEW,
                sandbox=False,
            )
            for submission in submissions
        ]
