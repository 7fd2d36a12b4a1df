"""Results stream in every format, and DuckDB's errors (at bind time, while rows are fetched, from a
damaged data file) are the project's one-line errors naming the query or the file."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

import ticklake
from tests.query.conftest import run_cli
from ticklake.config import LakeConfig
from ticklake.errors import QueryError, StorageError
from ticklake.query.output import FORMATS, WIDTH_SAMPLE_ROWS, write_result
from ticklake.query.results import BATCH_ROWS

# Fails on row 300,001 only, while its results are fetched: binding it succeeds.
LATE_FAILURE = "SELECT i, CAST(CASE WHEN i < 300000 THEN '1' ELSE 'x' END AS INTEGER) AS v FROM range(400000) t(i)"
LATE_MESSAGE = f"Conversion Error: Could not convert string 'x' to INT32 (query: {LATE_FAILURE})"


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_writes_rows_as_they_come(fmt: str) -> None:
    """Each row is on `out` before the next rows are produced (the table's after its first rows)."""
    out = io.StringIO()
    seen: list[int] = []
    head = 2 if fmt == "table" else 1 if fmt == "csv" else 0
    total = 3 * WIDTH_SAMPLE_ROWS

    def rows() -> Iterator[tuple[Any, ...]]:
        for i in range(total):
            if i > WIDTH_SAMPLE_ROWS:
                seen.append(out.getvalue().count("\n") - head)
            yield (i, f"v{i}")

    assert write_result(["i", "s"], rows(), fmt, out) == total
    assert seen == list(range(WIDTH_SAMPLE_ROWS + 1, total))  # every earlier row already written


def test_table_widths_come_from_the_first_rows_and_nothing_is_cut() -> None:
    out = io.StringIO()
    rows = [(1, "ab", None)] * WIDTH_SAMPLE_ROWS + [(22222, "much wider than the rest", 3), (4, "cd", 5)]
    assert write_result(["n", "text", "x"], rows, "table", out) == WIDTH_SAMPLE_ROWS + 2
    lines = out.getvalue().splitlines()
    assert lines[:3] == ["n | text | x", "--+------+-----", "1 | ab   | NULL"]
    assert lines[-2:] == ["22222 | much wider than the rest | 3", "4 | cd   | 5"]


def test_cli_table_streams_a_large_result(history_lake: Path) -> None:
    result = run_cli("--root", str(history_lake), "sql", "SELECT i, i % 7 AS r FROM range(25000) t(i)")
    assert result.returncode == 0 and result.stderr == "(25,000 rows)\n"
    lines = result.stdout.splitlines()
    # Widths fit the first rows (up to 999); a wider value later widens only its own row.
    assert len(lines) == 25002 and lines[0] == "i   | r" and lines[2] == "0   | 0" and lines[-1] == "24999 | 2"


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_error_while_rows_are_fetched_is_one_line_naming_the_query(history_lake: Path, fmt: str) -> None:
    query = LATE_FAILURE.replace("300000", str(2 * BATCH_ROWS)).replace("400000", str(3 * BATCH_ROWS))
    result = run_cli("--root", str(history_lake), "sql", "--format", fmt, query)
    assert result.returncode == 1
    assert result.stderr == f"Error: Conversion Error: Could not convert string 'x' to INT32 (query: {query})\n"
    assert result.stdout.count("\n") <= 2 * BATCH_ROWS + 2


@pytest.mark.slow
def test_a_cast_failing_on_row_300000_is_one_line_and_verbose_shows_the_traceback(history_lake: Path) -> None:
    result = run_cli("--root", str(history_lake), "sql", LATE_FAILURE)
    assert result.returncode == 1 and result.stderr == f"Error: {LATE_MESSAGE}\n"
    assert 2 < result.stdout.count("\n") <= 300_002  # the rows before it were written as they came
    verbose = run_cli("--root", str(history_lake), "--verbose", "sql", LATE_FAILURE)
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr
    assert verbose.stderr.splitlines()[-1] == f"Error: {LATE_MESSAGE}"


def test_the_api_fetch_helpers_and_streams_raise_the_projects_errors(history_lake: Path) -> None:
    with ticklake.connect(history_lake) as lake:
        for fetch in ("fetchall", "df", "to_arrow_table"):
            with pytest.raises(QueryError) as failed:
                getattr(lake.execute(LATE_FAILURE), fetch)()
            assert str(failed.value) == LATE_MESSAGE
        with pytest.raises(QueryError, match="^Conversion Error"):
            lake.execute(LATE_FAILURE).fetchmany(400_000)
        stream = lake.stream(LATE_FAILURE)
        assert stream is not None and stream.columns == ["i", "v"]
        with pytest.raises(QueryError, match="^Conversion Error"):
            sum(1 for _ in stream)
        # A relation from `sql` is DuckDB's own: its fetch methods raise DuckDB's errors (documented).
        with pytest.raises(duckdb.Error):
            lake.sql(LATE_FAILURE).fetchall()
        assert lake.execute("SELECT count(*) FROM ticks").fetchone() == (14,)  # the connection is still usable


def test_an_interrupt_nobody_asked_for_reports_the_error_behind_it(history_lake: Path) -> None:
    """A DuckDB thread that fails raises the query's interrupt flag to stop the others, and a streamed
    result's next fetch may then report "Interrupted!" instead of the failure (a race, more likely under
    load). Raising the flag between two fetches puts DuckDB in that state every time."""
    with ticklake.connect(config=LakeConfig(root=history_lake, threads=2)) as lake:
        stream = lake.stream(LATE_FAILURE)
        assert stream is not None
        rows = iter(stream)
        assert next(rows) == (0, 1)
        lake.con.interrupt()  # DuckDB's own flag, as its failing thread raises it
        with pytest.raises(QueryError) as failed:
            sum(1 for _ in rows)
        assert str(failed.value) == LATE_MESSAGE
        assert isinstance(failed.value.__cause__, duckdb.ConversionException)

        lake.execute(LATE_FAILURE)
        assert len(lake.fetchmany(BATCH_ROWS)) == BATCH_ROWS
        lake.con.interrupt()
        with pytest.raises(QueryError) as failed:
            lake.fetchall()
        assert str(failed.value) == LATE_MESSAGE

        # An interrupt asked for through the lake is what it says: the query is not run again to look
        # for the cast's error.
        stream = lake.stream(LATE_FAILURE)
        assert stream is not None
        rows = iter(stream)
        next(rows)
        lake.interrupt()
        with pytest.raises(QueryError) as failed:
            sum(1 for _ in rows)
        assert str(failed.value) == f"INTERRUPT Error: Interrupted! (query: {LATE_FAILURE})"
        assert lake.execute("SELECT count(*) FROM ticks").fetchone() == (14,)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "SELECT * FROM read_csv('/nonexistent/contracts.csv')",
            'IO Error: No files found that match the pattern "/nonexistent/contracts.csv"',
        ),
        (
            "SELECT CAST(2 ^ 62 AS BIGINT) * 4 AS n",
            "Out of Range Error: Overflow in multiplication of INT64 (4611686018427387904 * 4)!",
        ),
        (
            "SELECT error('contract ' || contract_id || ' is bad') FROM ticks WHERE hour = 7",
            "Invalid Input Error: contract 12 is bad",
        ),
    ],
)
def test_run_time_errors_are_one_line_naming_the_query(history_lake: Path, query: str, message: str) -> None:
    result = run_cli("--root", str(history_lake), "sql", query)
    assert result.returncode == 1
    assert result.stderr == f"Error: {message} (query: {query})\n"


def damaged_copy(root: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the lake whose hour-06 data file lost its end (a truncated write, a full disk)."""
    copy = tmp_path / "lakehouse"
    shutil.copytree(root, copy)
    (data,) = (copy / "lake" / "ticks" / "tick_type=last" / "date=2022-01-07" / "hour=06").glob("*.parquet")
    data.write_bytes(data.read_bytes()[:-40])
    return copy, data.resolve()


def test_a_truncated_data_file_is_a_storage_error_naming_it(history_lake: Path, tmp_path: Path) -> None:
    copy, data = damaged_copy(history_lake, tmp_path)
    message = f"data file {data}: Invalid Input Error: No magic bytes found at end of file"
    for query in ("SELECT sum(price) FROM ticks", "SELECT * FROM ticks WHERE hour = 6", "SUMMARIZE ticks"):
        result = run_cli("--root", str(copy), "sql", query)
        assert result.returncode == 1
        assert result.stderr == f"Error: {message}\n", query
    with ticklake.connect(copy) as lake:
        with pytest.raises(StorageError) as failed:
            lake.execute("SELECT count(*) FROM ticks").fetchall()
        assert str(failed.value) == message
        # Files the catalog prunes away are never opened: other hours still answer.
        assert lake.execute("SELECT count(*) FROM ticks WHERE hour = 7").fetchone() == (2,)


@pytest.mark.slow
def test_a_failed_output_leaves_no_file(history_lake: Path, tmp_path: Path) -> None:
    for name in ("late.csv", "late.parquet"):
        out = tmp_path / name
        result = run_cli("--root", str(history_lake), "sql", LATE_FAILURE, "--output", str(out))
        assert result.returncode == 1 and len(result.stderr.splitlines()) == 1
        assert result.stderr.startswith("Error: Conversion Error: Could not convert string 'x' to INT32")
        assert list(tmp_path.iterdir()) == []


def test_batches_are_smaller_than_the_late_failure() -> None:
    assert BATCH_ROWS < 300_000  # else the failing row would be fetched with the first batch


@pytest.mark.parametrize("query", ["DESCRIBE ticks", "describe  ticks", "SUMMARIZE ticks", "SHOW ticks"])
def test_describe_and_summarize_name_a_dataset_as_a_table(history_lake: Path, query: str) -> None:
    result = run_cli("--root", str(history_lake), "sql", "--format", "csv", query)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith("timestamp,")
