"""Recruiters as recruitment runs them: the base class of every backend, and the lookup of one.

Each backend is one class, registered in the registry of experiments.recruiters
(see recruitment.apps), that implements both what the participant workflow asks
of a recruiter and everything recruitment does differently per recruiter.
Backend's defaults are those of a recruiter without a service of its own (a
local link): nothing to launch, sync or pay, no HITs or submissions to show;
MTurk and Prolific override them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from django.db.models import QuerySet

from experiments.models import Session, Study, cached_for_study
from experiments.recruiters import Recruiter, Spend, Terms, recruiter_for
from recruitment import budget
from recruitment.errors import ConfigurationError
from recruitment.models import Payment, Recruitment

if TYPE_CHECKING:
    from django.contrib.admin.options import InlineModelAdmin


@dataclass(frozen=True)
class Work:
    """One participant's work as the recruiter holds it, which a payment plan may approve, reject or bonus."""

    external_id: str  # MTurk assignment id, Prolific submission id
    worker_id: str
    session: Session | None
    reviewable: bool  # submitted, neither approved nor rejected yet
    sandbox: bool


def recruitment_for(study: Study) -> Recruitment:
    """The study's Recruitment row, created with its defaults the first time."""
    recruitment, _ = Recruitment.objects.get_or_create(study=study)
    return recruitment


def derivation_family(study: Study) -> set[int]:
    """The study, the study it was built from, and the studies built from either (a describe study and its
    verify studies): linked by how they were made, whatever their recruitment groups."""
    root = study.derived_from_id or study.pk
    derived = Study.objects.filter(derived_from_id__in={root, study.pk}).values_list("pk", flat=True)
    return {study.pk, root, *derived}


def linked_study_ids(study: Study) -> list[int]:
    """The study and every study linked to it (same LinkGroup, or built from one another). Every arrival asks,
    so a process keeps them a short while as it keeps the study (a change in this process forgets them)."""
    return cached_for_study("linked studies", study.pk, lambda: _linked_study_ids(study))


def _linked_study_ids(study: Study) -> list[int]:
    family = derivation_family(study)
    groups = Recruitment.objects.filter(study_id__in=family, group__isnull=False).values_list("group_id", flat=True)
    group_ids = set(groups)
    linked = Recruitment.objects.filter(group_id__in=group_ids).values_list("study_id", flat=True)
    return sorted(family | set(linked))


class Backend(Recruiter):
    """A recruiter: subclasses set name, title, label and url_params, and implement arrival and hand_back."""

    # The change page's tables of what the recruiter holds, above the ledger.
    admin_inlines: tuple[type[InlineModelAdmin[Any, Any]], ...] = ()

    # What the participant workflow asks (experiments.recruiters.Recruiter).

    def is_preview(self, query: Mapping[str, str]) -> bool:
        return False

    def has_taken_part(self, study: Study, participant_id: str) -> bool:
        studies = linked_study_ids(study)
        return Session.objects.filter(study_id__in=studies, participant_id=participant_id).exists()

    def prepare(self, study: Study) -> None:
        recruitment_for(study)

    def before_holding(self, session: Session) -> None:
        """Nothing to confirm where the recruiter has no service."""

    def session_started(self, session: Session) -> None:
        """Nothing to record where the recruiter has no service."""

    # The currency the recruiter's rewards are in, as participants read it.
    currency: ClassVar[str] = ""

    def terms(self, study: Study) -> Terms:
        """The reward and the payment rules of the study's recruitment (its defaults before it is set up)."""
        recruitment = Recruitment.objects.filter(study=study).first() or Recruitment(study=study)
        pay = f"{recruitment.reward} {self.currency}".strip() + " for the completed task"
        if recruitment.reject_failing:
            payment = "Work that fails the quality checks is rejected and not paid; all other work is paid."
        else:
            payment = "Everyone who completes the task is paid, whether or not the answers pass the quality checks."
        if recruitment.bonus_passing:
            payment += f" Work that passes the checks earns a bonus of {recruitment.bonus_passing} {self.currency}."
        return Terms(pay=pay, payment=payment)

    def spend(self, study: Study) -> Spend | None:
        """Every payment in the ledger that has not failed, against the budget cap."""
        from recruitment.selectors import budget_cap

        recruitment = Recruitment.objects.filter(study=study).first()
        if recruitment is None:
            return None
        return Spend(self.spent(recruitment), budget_cap(recruitment), self.currency)

    def spent(self, recruitment: Recruitment) -> Decimal:
        payments = recruitment.payments.exclude(status=Payment.Status.FAILED)
        return sum(payments.values_list("amount", flat=True), Decimal("0.00"))

    # Launching and running recruitment (recruitment.services and its tasks).

    def check_launch(self, recruitment: Recruitment, *, sandbox: bool) -> None:
        """Raise ConfigurationError if the recruiter cannot be launched as asked."""
        raise self._nothing_to_launch(recruitment)

    def sync(self, recruitment: Recruitment) -> None:
        """Read what the recruiter reports, then top up or close."""
        raise self._nothing_to_launch(recruitment)

    def pause(self, recruitment: Recruitment) -> None:
        raise self._nothing_to_launch(recruitment)

    def close(self, recruitment: Recruitment) -> None:
        raise self._nothing_to_launch(recruitment)

    def reconcile(self, recruitment: Recruitment) -> list[dict[str, str]]:
        """Differences between the ledger and what the recruiter reports."""
        raise self._nothing_to_launch(recruitment)

    # Paying (recruitment.ledger).

    def send_payment(self, payment: Payment) -> dict[str, Any]:
        """Make the call; return what to keep of the response."""
        raise self._nothing_to_launch(payment.recruitment)

    def verify_payment(self, payment: Payment) -> bool:
        """Whether the recruiter shows this payment as made."""
        raise self._nothing_to_launch(payment.recruitment)

    def can_resend_payment(self, payment: Payment) -> bool:
        """Whether sending again after an unknown outcome cannot pay twice."""
        raise self._nothing_to_launch(payment.recruitment)

    # Reads (recruitment.selectors and the admin).

    def recruited_sessions(self, recruitment: Recruitment) -> QuerySet[Session]:
        """The study's sessions that count toward its target and get paid."""
        return Session.objects.filter(study_id=recruitment.study_id, source=self.name)

    def cost_estimate(self, recruitment: Recruitment) -> budget.CostEstimate:
        return budget.estimate_cost_without_fee(
            sessions=recruitment.study.sessions_needed,
            reward=recruitment.reward,
            over_recruitment=recruitment.over_recruitment,
            bonus=recruitment.bonus_passing,
        )

    def payable(self, recruitment: Recruitment) -> list[Work]:
        """The work a payment plan decides on, in a stable order."""
        return []

    def marketplace(self, recruitment: Recruitment) -> str | None:
        """Where the recruitment runs, for a recruiter with a sandbox and a live marketplace."""
        return None

    def committed_spend(self, recruitment: Recruitment, now: datetime) -> Decimal | None:
        """Money spent or promised so far, where the recruiter's records let it be counted."""
        return None

    def _nothing_to_launch(self, recruitment: Recruitment) -> ConfigurationError:
        return ConfigurationError(
            f"Study {recruitment.study.slug} recruits by {self.name!r}: there is nothing to launch."
        )


def backend_for(name: str) -> Backend:
    """The registered recruiter of that name (ValueError if none is), as recruitment runs it."""
    recruiter = recruiter_for(name)
    if not isinstance(recruiter, Backend):
        # Only recruitment registers recruiters, so another kind is a programming error.
        raise TypeError(f"recruiter {name!r} is a {type(recruiter).__name__}, not a recruitment backend")
    return recruiter


class ServiceBackend(Backend):
    """A recruiter with a service of its own (MTurk, Prolific), whose work is in its services module:
    sync, pause, close, reconcile, send_payment and payment_made, each taking the row it acts on."""

    service: ClassVar[ModuleType]

    def sync(self, recruitment: Recruitment) -> None:
        self.service.sync(recruitment)

    def pause(self, recruitment: Recruitment) -> None:
        self.service.pause(recruitment)

    def close(self, recruitment: Recruitment) -> None:
        self.service.close(recruitment)

    def reconcile(self, recruitment: Recruitment) -> list[dict[str, str]]:
        differences: list[dict[str, str]] = self.service.reconcile(recruitment)
        return differences

    def send_payment(self, payment: Payment) -> dict[str, Any]:
        response: dict[str, Any] = self.service.send_payment(payment)
        return response

    def verify_payment(self, payment: Payment) -> bool:
        return bool(self.service.payment_made(payment))
