"""The kept activation maps a dataset's verdicts read (Protocol.maps_read), so that a study read back from a
bundle judges its answers as the original did.

kept_maps.csv: one row per map a response's verdict reads: its study, session and trial index (as in
responses.csv, in the same order), its place in maps_read's order, the map's name in kept_maps.npz, and what
the map is of (the unit, the image by its hash and pool key) with its size. kept_maps.npz: each map once, as
the server keeps it (float16, on the image's pixels), under that name. A bundle whose studies keep no maps
(2-AFC, nameability) has neither member.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from itertools import chain, islice
from typing import IO, Any

import numpy as np

from experiments.export.table import CHUNK, Table
from experiments.models import Response, Study, TrialImage
from protocols import get_protocol
from stimuli.kept_maps import stored_values
from stimuli.models import KeptMap

KEPT_MAP_COLUMNS = [
    ("study", "str"), ("session", "str"), ("trial_index", "int"), ("read", "int"), ("map", "str"),
    ("unit_kind", "str"), ("layer", "str"), ("channel", "int"), ("image_sha256", "str"), ("pool_key", "str"),
    ("height", "int"), ("width", "int"),
]
ARRAYS = "kept_maps.npz"


class KeptMapsTable:
    """kept_maps.csv's rows, naming each map they read for kept_maps.npz as they go."""

    def __init__(self, studies: list[Study]) -> None:
        # Only studies whose trials keep maps can have verdicts that read them.
        self.studies = [
            study for study in studies if TrialImage.objects.filter(trial__study=study, kept_map__isnull=False).exists()
        ]
        self.names: dict[int, str] = {}  # kept map id -> its array's name in kept_maps.npz

    def table(self) -> Table | None:
        """The table, or None when no verdict reads a kept map."""
        rows = self._rows()
        first = next(rows, None)
        return None if first is None else Table("kept_maps", KEPT_MAP_COLUMNS, chain([first], rows))

    def _rows(self) -> Iterator[tuple[Any, ...]]:
        protocols = {study.pk: get_protocol(study.protocol) for study in self.studies}
        answered = (
            Response.objects.filter(session__study__in=self.studies)
            .order_by("session_id", "session_trial__index")
            .values_list("session__study_id", "session__study__slug", "session__pseudonym", "session_trial__index",
                         "session_trial__key")
            .iterator(chunk_size=CHUNK)
        )
        while chunk := list(islice(answered, CHUNK)):
            reads = [(row[1:4], protocols[row[0]].maps_read(row[4])) for row in chunk]
            maps = {
                pk: rest
                for pk, *rest in KeptMap.objects.filter(pk__in={pk for _, read in reads for pk in read}).values_list(
                    "pk", "unit__kind", "unit__layer", "unit__channel", "image__sha256", "image__source_key",
                    "height", "width",
                )
            }
            for trial, read in reads:
                for place, pk in enumerate(read):
                    name = self.names.setdefault(pk, f"map_{len(self.names)}")
                    yield *trial, place, name, *maps[pk]

    def write_arrays(self, out: IO[bytes]) -> None:
        """kept_maps.npz of the maps the rows named (once they are all written), read a chunk at a time."""
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as arrays:
            wanted = iter(self.names)
            while chunk := list(islice(wanted, CHUNK)):
                for kept in KeptMap.objects.filter(pk__in=chunk):
                    with arrays.open(f"{self.names[kept.pk]}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, stored_values(kept), allow_pickle=False)


@contextmanager
def kept_arrays(bundle: zipfile.ZipFile) -> Iterator[Mapping[str, np.ndarray]]:
    """kept_maps.npz's arrays by name, each read when asked for (none for a bundle without kept maps)."""
    if ARRAYS not in bundle.namelist():
        yield {}
        return
    # Stored, not compressed, in the bundle (write_bundle), so that reading one array seeks rather than inflates.
    with bundle.open(ARRAYS) as member, np.load(member, allow_pickle=False) as arrays:
        yield arrays
