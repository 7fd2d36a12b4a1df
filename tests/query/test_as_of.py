"""Time travel by time: the newest snapshot committed at or before a moment, and `ticklake snapshots`.

Commit times are whatever the clock said when the fixture's lake was built; every moment below is
derived from the committed_at values the catalog recorded, so nothing depends on timing.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

import ticklake
from tests.query.conftest import run_cli
from ticklake.catalog import Catalog
from ticklake.errors import ConfigError, NotFoundError
from ticklake.query.history import AS_OF_FORMS, parse_as_of

ROWS_PER_SNAPSHOT = {1: 6, 2: 10, 3: 12, 4: 14}


def committed(root: Path) -> dict[int, datetime]:
    with Catalog(root / "catalog.sqlite", read_only=True) as catalog:
        return {int(s["snapshot_id"]): datetime.fromisoformat(str(s["committed_at"])) for s in catalog.snapshots()}


def count(root: Path, **pin: object) -> int:
    with ticklake.connect(root, **pin) as lake:  # type: ignore[arg-type]
        row = lake.execute("SELECT count(*) FROM ticks").fetchone()
    return int(row[0])


def test_as_of_reads_the_newest_snapshot_committed_at_or_before_the_moment(history_lake: Path) -> None:
    times = committed(history_lake)
    assert sorted(times) == [1, 2, 3, 4]
    for snapshot, moment in times.items():
        assert count(history_lake, as_of=moment) == ROWS_PER_SNAPSHOT[snapshot]  # at: that snapshot
        after = moment + timedelta(microseconds=1)
        assert count(history_lake, as_of=after.isoformat()) == ROWS_PER_SNAPSHOT[snapshot]
        if snapshot > 1:
            before = moment - timedelta(microseconds=1)  # just before: the one before it
            assert count(history_lake, as_of=before.isoformat()) == ROWS_PER_SNAPSHOT[snapshot - 1]


def test_as_of_takes_z_offsets_naive_utc_datetimes_and_dates(history_lake: Path) -> None:
    second = committed(history_lake)[2]
    east = second.astimezone(timezone(timedelta(hours=5, minutes=30)))
    for spelling in (
        second.isoformat().replace("+00:00", "Z"),
        east.isoformat(),
        east.isoformat(sep=" "),
        second.replace(tzinfo=None).isoformat(),  # naive: UTC
        second.replace(tzinfo=None),
        east,
    ):
        with ticklake.connect(history_lake, as_of=spelling) as lake:  # type: ignore[arg-type]
            assert lake.snapshot == 2, spelling
    tomorrow = (second + timedelta(days=1)).date()
    assert count(history_lake, as_of=tomorrow) == 14
    assert count(history_lake, as_of=tomorrow.isoformat()) == 14


def test_a_future_moment_reads_the_newest_snapshot(history_lake: Path) -> None:
    with ticklake.connect(history_lake, as_of="2999-01-01T00:00:00Z") as lake:
        assert lake.snapshot == 4
        assert lake.choice.reason.startswith("the newest committed at or before 2999-01-01T00:00:00+00:00")


def test_as_of_before_the_first_snapshot_is_an_error(history_lake: Path) -> None:
    first = committed(history_lake)[1]
    before = first - timedelta(microseconds=1)
    with pytest.raises(NotFoundError) as missing:
        ticklake.connect(history_lake, as_of=before)
    message = (
        f"lake {history_lake}: no snapshot as of {before.isoformat()}: the first snapshot was committed at {first.isoformat()}"
    )
    assert str(missing.value) == message
    result = run_cli("--root", str(history_lake), "sql", "--as-of", "2000-01-01", "SELECT 1")
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: lake {history_lake}: no snapshot as of 2000-01-01T00:00:00+00:00:"
        f" the first snapshot was committed at {first.isoformat()}\n"
    )


@pytest.mark.parametrize("text", ["yesterday", "2022-01-07T25:00:00Z", "2022-13-01", "07/01/2022", "1641536400", ""])
def test_an_unparseable_as_of_names_the_accepted_forms(history_lake: Path, text: str) -> None:
    with pytest.raises(ConfigError, match=r"^as-of .*expected " + AS_OF_FORMS.replace("(", r"\(").replace(")", r"\)") + "$"):
        parse_as_of(text)
    result = run_cli("--root", str(history_lake), "sql", "--as-of", text, "SELECT 1")
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"Error: as-of {text!r}: ") and result.stderr.endswith(f"expected {AS_OF_FORMS}\n")


def test_snapshot_and_as_of_exclude_each_other(history_lake: Path) -> None:
    result = run_cli("--root", str(history_lake), "sql", "--snapshot", "2", "--as-of", "2999-01-01", "SELECT 1")
    assert result.returncode == 1
    assert result.stderr == "Error: give either --snapshot or --as-of, not both (snapshot= or as_of= in Python)\n"
    with pytest.raises(ConfigError, match="not both"):
        ticklake.connect(history_lake, snapshot=2, as_of="2999-01-01")


def test_explain_says_which_snapshot_is_read(history_lake: Path) -> None:
    times = committed(history_lake)
    moment = (times[3] + timedelta(microseconds=1)).isoformat()
    lines = run_cli("--root", str(history_lake), "sql", "--explain", "--as-of", moment, "SELECT * FROM ticks").stdout.splitlines()
    assert lines[0] == (f"reading snapshot 3: the newest committed at or before {moment} (at {times[3].isoformat()})")
    assert lines[1] == "ticks (snapshot 3):"
    pinned = run_cli("--root", str(history_lake), "sql", "--explain", "--snapshot", "2", "SELECT 1").stdout.splitlines()
    assert pinned[0] == "reading snapshot 2: as asked"
    newest = run_cli("--root", str(history_lake), "sql", "--explain", "SELECT 1").stdout.splitlines()
    assert newest[0] == "reading snapshot 4: the newest"


def test_the_cli_reads_the_lake_as_of_a_moment(history_lake: Path) -> None:
    moment = committed(history_lake)[2].astimezone(timezone(timedelta(hours=-5))).isoformat()
    result = run_cli(
        "--root",
        str(history_lake),
        "sql",
        "--as-of",
        moment,
        "--format",
        "csv",
        "SELECT hour, count(*) AS n FROM ticks GROUP BY 1 ORDER BY 1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hour,n\n5,6\n6,4\n"


def test_snapshots_lists_what_each_commit_changed(history_lake: Path) -> None:
    times = committed(history_lake)
    result = run_cli("--root", str(history_lake), "snapshots", "--format", "json")
    assert result.returncode == 0 and result.stderr == ""
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {
            "snapshot": snapshot,
            "committed_at": times[snapshot].isoformat(),
            "operation": "compact",
            "dataset": "ticks",
            "hour": hour,
            "files_added": 1,
            "files_removed": removed,
            "rows_added": added,
            "rows_removed": rows_removed,
            "expired_at": None,
        }
        for snapshot, hour, removed, added, rows_removed in [
            (1, "2022-01-07T05", 0, 6, 0),
            (2, "2022-01-07T06", 0, 4, 0),
            (3, "2022-01-07T07", 0, 2, 0),
            (4, "2022-01-07T05", 1, 8, 6),  # late data: the hour's file rewritten
        ]
    ]
    as_csv = list(csv.reader(io.StringIO(run_cli("--root", str(history_lake), "snapshots", "--format", "csv").stdout)))
    assert as_csv[0] == ["snapshot", "committed_at", "operation", "dataset", "hour"] + [
        "files_added",
        "files_removed",
        "rows_added",
        "rows_removed",
        "expired_at",
    ]
    assert as_csv[4] == ["4", times[4].isoformat(), "compact", "ticks", "2022-01-07T05", "1", "1", "8", "6", ""]
    table = run_cli("--root", str(history_lake), "snapshots")
    assert table.stdout.splitlines()[0].split(" | ")[:3] == ["snapshot", "committed_at                    ", "operation"]
    assert len(table.stdout.splitlines()) == 6 and table.stderr == "(4 snapshots)\n"


def test_committed_at_is_utc_iso_text_with_microseconds(history_lake: Path) -> None:
    for moment in committed(history_lake).values():
        assert moment.tzinfo == UTC or moment.utcoffset() == timedelta(0)
    with Catalog(history_lake / "catalog.sqlite", read_only=True) as catalog:
        assert catalog.committed_at(1) is not None and len(catalog.committed_at(1) or "") == len(
            "2022-01-07T06:30:00.000000+00:00"
        )
        assert catalog.committed_at(99) is None
        assert catalog.snapshot_at(datetime(1999, 1, 1, tzinfo=UTC)) is None
