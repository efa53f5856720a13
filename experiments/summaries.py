"""Unit statistics a protocol computes once responses are in (nameability: names' agreement); those computed
from the verdicts alone (verify scores) are unit_columns, computed at export instead.

Run by a background job (workers.tasks.summarize_responses) over the main, non-catch answers of passing
sessions; the values go to StudyUnit.statistics, which the admin shows and the units table exports. The job
first compares every completed session's answers with the others again (experiments/comparisons.py), so that
answers stored before later ones were given are compared with those too. Rerunnable: each run replaces the last
one's values.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import transaction

from experiments.comparisons import compare_study, read_answers
from experiments.models import Response, Study, StudyUnit
from protocols.base import UnitAnswer
from stimuli.recording import Progress, no_progress

STAGE = "computing unit statistics"


def unit_answers(study: Study) -> list[UnitAnswer]:
    return [answer for _, _, answer in read_answers(Response.objects.counted().filter(session__study=study))]


def summarize_study(study: Study, progress: Progress = no_progress) -> int:
    """Compute and store the study's unit statistics; returns how many units got values."""
    protocol = study.protocol_plugin
    progress(STAGE, 0, 1)
    compare_study(study)
    statistics = protocol.summarize(study.protocol_params, unit_answers(study), Path(settings.WORK_DIR))
    units = list(StudyUnit.objects.filter(study=study, role=StudyUnit.Role.MAIN))
    for study_unit in units:
        study_unit.statistics = statistics.get(study_unit.unit_id, {})
    with transaction.atomic():
        StudyUnit.objects.bulk_update(units, ["statistics"])
    progress(STAGE, 1, 1)
    return sum(1 for study_unit in units if study_unit.statistics)
