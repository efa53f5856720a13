"""Answer signals that compare an answer with other participants' answers (nameability: the nearest name given
by another participant for another unit, and whether it is a near-duplicate), for a protocol whose
`compares_answers` says it has them.

Computed for a session's answers about units when it completes, against the counted answers stored so far (the
main answers of passing sessions), before its checks run, so that a check can use them; and again for every
completed session's answers by the unit-statistics job (experiments/summaries.py), so that an early answer is
compared with the answers that came after it. The fields are merged into Response.answer, beside the protocol's
other signals, and exported by its columns.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import transaction

from experiments.models import Response, ResponseQuerySet, Session, Study
from protocols.base import UnitAnswer

# (response id, whether its session passed, the answer)
Row = tuple[int, bool, UnitAnswer]
WRITE_BATCH = 1000


def read_answers(responses: ResponseQuerySet) -> list[Row]:
    """The responses as the protocol sees them, in session and trial order."""
    rows = responses.order_by("session_id", "session_trial__index").values_list(
        "id", "session__passed", "session_trial__trial__unit_id", "session__pseudonym", "answer",
        "session_trial__key", "correct",
    )
    return [
        (pk, bool(passed), UnitAnswer(unit, author, answer, key, correct))
        for pk, passed, unit, author, answer, key, correct in rows.iterator()
    ]


def _store(study: Study, rows: list[Row], others: list[UnitAnswer]) -> int:
    """Merge the protocol's comparison of these answers with the others into them; returns how many changed."""
    answers = [answer for _, _, answer in rows]
    if not answers:
        return 0
    fields = study.protocol_plugin.compare_answers(study.protocol_params, answers, others, Path(settings.WORK_DIR))
    changed = [
        Response(pk=pk, answer=merged)
        for (pk, _, answer), new in zip(rows, fields, strict=True)
        if (merged := {**answer.answer, **new}) != answer.answer
    ]
    with transaction.atomic():
        Response.objects.bulk_update(changed, ["answer"], batch_size=WRITE_BATCH)
    return len(changed)


def compare_session(session: Session) -> int:
    """A completing session's answers about units, against the counted answers of the study so far."""
    study = session.study
    if not study.protocol_plugin.compares_answers:
        return 0
    mine = read_answers(Response.objects.about_units().filter(session=session))
    if not mine:
        return 0
    others = read_answers(Response.objects.counted().filter(session__study=study))
    return _store(study, mine, [answer for _, _, answer in others])


def compare_study(study: Study) -> int:
    """Every completed session's answers about units, against all the counted answers of the study."""
    if not study.protocol_plugin.compares_answers:
        return 0
    rows = read_answers(
        Response.objects.about_units().filter(session__study=study, session__status=Session.Status.COMPLETED)
    )
    return _store(study, rows, [answer for _, passed, answer in rows if passed])
