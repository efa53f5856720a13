"""The exclusion checks of a completed session: the generic ones here, then its protocol's own.

Generic: practice attempts, instruction time, total time, and two on the
server's own timing of the answers (from sending a trial to receiving its
answer), which a script cannot fake from the browser: answers fired as soon as
the lock allows, and a metronome's regularity. The protocol adds its share
(2-AFC: catch trials and position bias) over the main block.
"""

from __future__ import annotations

import statistics

from experiments.models import Event, Response, Session, SessionCheck, Study
from protocols.base import Answered, CheckResult

GENERIC_CHECKS = ("practice_attempts", "instruction_time", "total_time", "lock_boundary", "timing_regularity")
# An answer this soon after the lock ends was fired as soon as it was allowed.
BOUNDARY_MS = 250
# Fewer timed answers than this say too little about their regularity: the check passes.
MIN_TIMED_ANSWERS = 10


def timing_checks(study: Study, intervals: list[int]) -> list[CheckResult]:
    """The two timing checks over the server-timed intervals (ms) of a session's main answers."""
    at_boundary = sum(1 for ms in intervals if ms <= study.lock_ms + BOUNDARY_MS)
    share = at_boundary / len(intervals) if intervals else 0.0
    mean = statistics.fmean(intervals) if intervals else 0.0
    enough = len(intervals) >= MIN_TIMED_ANSWERS and mean > 0
    variation = statistics.pstdev(intervals) / mean if enough else 0.0
    return [
        CheckResult(
            "lock_boundary",
            share,
            share <= study.max_lock_boundary_share,
            f"at most {study.max_lock_boundary_share:.0%} of answers within {BOUNDARY_MS} ms after the lock",
        ),
        CheckResult(
            "timing_regularity",
            variation,
            not enough or variation >= study.min_timing_variation,
            f"answer intervals vary by at least {study.min_timing_variation:g} (coefficient of variation), "
            f"over {MIN_TIMED_ANSWERS} answers or more",
        ),
    ]


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
        *timing_checks(study, [r.server_ms for r in main if r.server_ms is not None]),
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
