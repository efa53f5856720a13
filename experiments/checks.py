"""The exclusion checks of a completed session: the generic ones here, then its protocol's own.

Generic: practice attempts, instruction time and total time. The protocol adds
its share (2-AFC: catch trials and position bias) over the main block.
"""

from __future__ import annotations

from experiments.models import Event, Response, Session, SessionCheck
from protocols.base import Answered, CheckResult

GENERIC_CHECKS = ("practice_attempts", "instruction_time", "total_time")


def _instruction_seconds(session: Session) -> float:
    events = list(
        session.events.filter(
            type__in=[Event.Type.INSTRUCTIONS_START, Event.Type.INSTRUCTIONS_END]
        ).order_by("created_at", "pk")
    )
    start = next((e.created_at for e in events if e.type == Event.Type.INSTRUCTIONS_START), None)
    end = next(
        (e.created_at for e in events if e.type == Event.Type.INSTRUCTIONS_END and start and e.created_at >= start),
        None,
    )
    return (end - start).total_seconds() if start and end else 0.0


def evaluate(session: Session) -> list[CheckResult]:
    study = session.study
    main = list(
        Response.objects.filter(session=session, session_trial__phase=Session.Phase.MAIN)
        .select_related("session_trial__trial")
        .order_by("created_at")
    )
    last = main[-1].created_at if main else None
    begun = session.consented_at or session.created_at
    total = (last - begun).total_seconds() if last else 0.0
    instructions = _instruction_seconds(session)
    answered = [Answered(r.session_trial.trial.kind, r.answer, r.correct, r.rt_ms) for r in main]
    return [
        CheckResult(
            "practice_attempts",
            session.practice_attempts,
            session.practice_attempts <= study.max_practice_attempts,
            f"at most {study.max_practice_attempts}",
        ),
        CheckResult(
            "instruction_time",
            instructions,
            instructions >= study.min_instruction_s,
            f"at least {study.min_instruction_s:g} s",
        ),
        CheckResult(
            "total_time",
            total,
            study.min_total_s <= total <= study.max_total_s,
            f"{study.min_total_s:g} s to {study.max_total_s:g} s",
        ),
        *study.protocol_plugin.checks(study.protocol_params, answered, study.n_catch_trials),
    ]


def record_checks(session: Session) -> bool:
    """Store every check's value and verdict; returns whether the session passed them all."""
    results = evaluate(session)
    for result in results:
        SessionCheck.objects.update_or_create(
            session=session,
            name=result.name,
            defaults={"value": result.value, "passed": result.passed, "rule": result.rule},
        )
    return all(r.passed for r in results)
