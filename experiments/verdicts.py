"""Judging stored answers again: every response's verdict from its stored answer and key and the kept maps
the key reads, as the answer was judged when it came. A study read back from a dataset bundle judges its
answers as the study it came from did (manage.py rejudge checks it)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from experiments.export.table import CHUNK
from experiments.models import Response, Study
from protocols.base import Score
from stimuli.kept_maps import kept_maps


def rejudged(study: Study) -> Iterator[tuple[Response, Score]]:
    """Each of the study's responses with its verdict judged again, a trial's responses after one another so
    that only one trial's kept maps are read and held at a time."""
    protocol, params = study.protocol_plugin, study.protocol_params
    maps: dict[int, np.ndarray] = {}
    responses = (
        Response.objects.filter(session__study=study)
        .select_related("session_trial")
        .order_by("session_trial__trial_id", "pk")
    )
    for response in responses.iterator(chunk_size=CHUNK):
        key = response.session_trial.key
        read = protocol.maps_read(key)
        if set(read) != set(maps):
            maps = kept_maps(read)
        yield response, protocol.judge(response.answer, key, params, maps)


def stored_verdict(response: Response) -> Score:
    """The verdict as it was stored with the response."""
    return Score(response.correct, response.score, response.details)
