"""The exclusion checks of a completed session: the generic ones here, then its protocol's own.

Generic: practice attempts, instruction time, total time; two on the server's
own timing of the answers (from sending a trial to receiving its answer),
which a script cannot fake from the browser: answers fired as soon as the lock
allows, and a metronome's regularity; and accuracy on the hardest units
against the other participants' (an answer key learnt over sessions;
experiments/plausibility.py). The protocol adds its share (2-AFC: catch trials
and position bias) over the main block.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from experiments.models import Event, Response, Session, SessionCheck, Study, Trial
from experiments.plausibility import Answers, hard_units_test
from protocols.base import Answered, CheckResult

GENERIC_CHECKS = (
    "practice_attempts", "instruction_time", "total_time", "lock_boundary", "timing_regularity", "hard_units",
)
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


def _others_answers(session: Session) -> list[Answers]:
    """The main, non-catch, scored answers of the study's other passing sessions, per session."""
    rows = (
        Response.objects.counted()
        .filter(session__study_id=session.study_id, correct__isnull=False)
        .exclude(session=session)
        .values_list("session_id", "session_trial__trial__unit_id", "correct")
    )
    by_session: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    for session_id, unit_id, correct in rows.iterator():
        by_session[session_id].append((unit_id, bool(correct)))
    return list(by_session.values())


def _hard_units(session: Session, main: list[Response]) -> CheckResult:
    study = session.study
    mine = [
        (r.session_trial.trial.unit_id, r.correct)
        for r in main
        if r.session_trial.trial.kind == Trial.Kind.MAIN and r.correct is not None
    ]
    verdict = hard_units_test(mine, _others_answers(session), study.hard_units_share, study.hard_units_min_answers)
    if verdict.tested:
        rule = f"p >= {study.hard_units_max_p:g} ({verdict.right} of its {verdict.answered} hardest units right)"
    else:
        minimum = study.hard_units_min_answers
        rule = f"untested: none of its units is among the hardest with {minimum}+ answers of others"
    return CheckResult("hard_units", verdict.p_value, verdict.p_value >= study.hard_units_max_p, rule)


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
    answered = [Answered(r.session_trial.trial.kind, r.answer, r.correct, r.rt_ms, r.details) for r in main]
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
        _hard_units(session, main),
        *study.protocol_plugin.checks(study.protocol_params, answered, study.n_catch_trials),
    ]


def record_checks(session: Session) -> bool:
    """Store every check's value and verdict; returns whether the session passed them all."""
    results = evaluate(session)
    # One statement for all of them (an upsert, so that a rerun replaces the stored verdicts).
    SessionCheck.objects.bulk_create(
        [SessionCheck(session=session, name=r.name, value=r.value, passed=r.passed, rule=r.rule) for r in results],
        update_conflicts=True,
        unique_fields=["session", "name"],
        update_fields=["value", "passed", "rule"],
    )
    return all(r.passed for r in results)
