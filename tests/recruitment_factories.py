"""Factories for the recruitment tests; their fixtures (public_https, mturk) are in conftest.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import factory
from django.utils import timezone

from experiments.models import Session, Study
from recruitment.models import HIT, Assignment, LinkGroup, Payment, Recruitment
from recruitment.mturk.client import WORKER_SITES
from tests.conftest import Participant
from tests.factories import StudyFactory

SANDBOX_HIT_ID = "3CAMPAIGNHIT00000000000000000A"


class RecruitmentFactory(factory.django.DjangoModelFactory):
    """An MTurk study needing 12 passing sessions: ceil(6 units x 8 participants / 4 main trials)."""

    class Meta:
        model = Recruitment

    study = factory.SubFactory(
        StudyFactory, recruiter="mturk", n_units=6, target_per_unit=8, n_main_trials=4
    )


class LaunchedRecruitmentFactory(RecruitmentFactory):
    group = factory.LazyAttribute(lambda o: LinkGroup.objects.get_or_create(name=f"study {o.study.slug}")[0])
    launched_at = factory.LazyFunction(timezone.now)
    hit_type_id = "HITTYPE1"


class HITFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HIT

    recruitment = factory.SubFactory(LaunchedRecruitmentFactory)
    sandbox = factory.LazyAttribute(lambda o: o.recruitment.sandbox)
    hit_type_id = "HITTYPE1"
    hit_id = factory.Sequence(lambda n: f"3HIT{n:026d}")
    token = factory.Sequence(lambda n: f"test:hit:{n}")
    state = HIT.State.CREATED
    max_assignments = 9
    mturk_status = "Assignable"
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=4))
    available = factory.LazyAttribute(lambda o: o.max_assignments)
    refreshed_at = factory.LazyFunction(timezone.now)


def make_session(
    recruitment: Recruitment,
    worker_id: str,
    *,
    assignment_id: str | None = None,
    hit_id: str = "3HIT00000000000000000000000000",
    passed: bool | None = None,
    status: str = Session.Status.COMPLETED,
    **fields: Any,
) -> Session:
    """An experiments.Session the way the participant API stores an MTurk or Prolific arrival.

    assignment_id is the MTurk assignment id, or on Prolific the submission (SESSION_ID).
    """
    study = recruitment.study
    if study.recruiter == "prolific":
        external = {"prolific_pid": worker_id, "study_id": recruitment.prolific_study_id or "S1", "session_id": assignment_id}
    else:
        external = {
            "assignment_id": assignment_id or f"3ASG{worker_id}",
            "hit_id": hit_id,
            "worker_id": worker_id,
            "turk_submit_to": WORKER_SITES[recruitment.sandbox],
        }
    return Session.objects.create(
        study=study,
        source=study.recruiter,
        pseudonym=f"pseudo-{study.recruiter}-{worker_id}",
        participant_id=worker_id,
        external=external,
        status=status,
        passed=passed,
        completed_at=timezone.now() if status == Session.Status.COMPLETED else None,
        **fields,
    )


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assignment

    hit = factory.SubFactory(HITFactory)
    recruitment = factory.SelfAttribute("hit.recruitment")
    assignment_id = factory.Sequence(lambda n: f"3ASG{n:026d}")
    worker_id = factory.Sequence(lambda n: f"AWORKER{n:06d}")
    status = Assignment.Status.SUBMITTED


class PaymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Payment

    recruitment = factory.SubFactory(LaunchedRecruitmentFactory)
    backend = "mturk"
    sandbox = True
    kind = Payment.Kind.BONUS
    external_id = factory.Sequence(lambda n: f"3ASG{n:026d}")
    worker_id = factory.Sequence(lambda n: f"AWORKER{n:06d}")
    amount = "0.50"
    message = "Thank you for your careful answers."
    token = factory.LazyAttribute(lambda o: f"{o.kind}:{o.external_id}")


class MTurkWorker(Participant):
    """An MTurk sandbox worker who accepted a HIT: MTurk opens the study page with its parameters,
    and the page's script starts the session from them (as tests.conftest.Participant does)."""

    def __init__(self, study: Study, number: int, hit_id: str = SANDBOX_HIT_ID) -> None:
        super().__init__(study, f"AWORKER{number}")
        # The ids tests.test_mturk_sync.assignment lists for the same number.
        self.number = number
        self.assignment_id = f"3ASG{number:026d}"
        self.hit_id = hit_id

    def start(self):
        page = self.client.get(
            f"/s/{self.study.slug}/",
            {
                "assignmentId": self.assignment_id,
                "hitId": self.hit_id,
                "workerId": self.participant,
                "turkSubmitTo": WORKER_SITES[True],
            },
        )
        assert page.status_code == 200
        return super().start(
            source="mturk",
            assignment_id=self.assignment_id,
            hit_id=self.hit_id,
            worker_id=self.participant,
            turk_submit_to=WORKER_SITES[True],
        )

    def answer_main_block(self, *, careful: bool) -> None:
        """A careless worker gets every main trial wrong, the catch trial included."""
        self.through_instructions()
        self.pass_practice()
        self.answer_all(right=careful)
