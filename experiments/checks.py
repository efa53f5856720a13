"""The five exclusion checks of PROTOCOLS §4, computed once a session completes."""

from __future__ import annotations

from dataclasses import dataclass

from experiments.models import Event, Response, Session, SessionCheck, Trial


@dataclass(frozen=True)
class CheckResult:
    name: str
    value: float
    passed: bool
    rule: str


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
    main = Response.objects.filter(session=session, session_trial__phase=Session.Phase.MAIN)
    catch = main.filter(session_trial__trial__kind=Trial.Kind.CATCH)
    catch_correct = catch.filter(correct=True).count()
    upper = main.filter(choice=0).count()
    lower = main.filter(choice=1).count()
    last = main.order_by("-created_at").values_list("created_at", flat=True).first()
    begun = session.consented_at or session.created_at
    total = (last - begun).total_seconds() if last else 0.0
    instructions = _instruction_seconds(session)
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
            "catch_trials",
            catch_correct,
            catch_correct >= study.min_catch_correct,
            f"at least {study.min_catch_correct} of {study.n_catch_trials} correct",
        ),
        CheckResult(
            "total_time",
            total,
            study.min_total_s <= total <= study.max_total_s,
            f"{study.min_total_s:g} s to {study.max_total_s:g} s",
        ),
        CheckResult(
            "position_bias",
            min(upper, lower),
            min(upper, lower) >= study.min_position_count,
            f"each position chosen at least {study.min_position_count} times",
        ),
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
