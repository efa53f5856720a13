"""The Parquet export's Arrow columns, built from buffers: the same values as pa.array gives, nulls kept,
and no pandas loaded to make them."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from experiments.export.arrow import arrow_column, arrow_type

COLUMNS = {
    "int": [1, None, -3, 2**40],
    "float": [0.5, None, 1e300, -2.0],
    "bool": [True, None, False, True, True, False, False, True, None, True],
    "str": ["a", None, "", "ünïcode ✓"],
    "datetime": [
        datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), None,
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=2))),
    ],
}


@pytest.mark.parametrize("kind", COLUMNS)
def test_a_column_equals_what_pa_array_makes(kind):
    ours = arrow_column(COLUMNS[kind], kind)
    ours.validate(full=True)
    assert ours.equals(pa.array(COLUMNS[kind], type=arrow_type(kind)))


def test_values_of_a_text_column_that_are_not_text_are_written_as_text():
    assert arrow_column(["a", 7, None], "str").to_pylist() == ["a", "7", None]


def test_a_column_without_nulls_has_no_validity_bitmap():
    column = arrow_column([1, 2, 3], "int")
    assert column.null_count == 0 and column.buffers()[0] is None


def test_building_columns_and_writing_parquet_never_loads_pandas(tmp_path):
    script = (
        "import sys, pyarrow as pa, pyarrow.parquet as pq\n"
        "from experiments.export.arrow import arrow_column\n"
        "table = pa.Table.from_arrays([arrow_column([1, None], 'int'), arrow_column(['a', None], 'str')], "
        "names=['n', 's'])\n"
        f"pq.write_table(table, {str(tmp_path / 'out.parquet')!r})\n"
        "print('pandas' in sys.modules)\n"
    )
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=".")
    assert found.stdout.strip() == "False"
