"""Landing buffer: the writer routes by event hour, seals atomically, rotates; readers see sealed segments only."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ticklake.build.compaction import pending_hours
from ticklake.config import LakeConfig
from ticklake.errors import SchemaError
from ticklake.landing.buffer import (
    Segment,
    purge_consumed,
    retire_segment,
    scan_buffer,
    sealed_segments,
    segment_name,
    write_segment,
)
from ticklake.landing.writer import LandingWriter
from ticklake.storage.layout import consumed_dir, landing_dir, parse_hour

H5 = parse_hour("2022-01-07T05")
H6 = parse_hour("2022-01-07T06")
Tick = Callable[..., dict[str, Any]]


def line(record: dict[str, Any]) -> bytes:
    """A tick as the writer serialises it: compact JSON, UTF-8, no ASCII escaping."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


def files_below(folder: Path) -> list[str]:
    """Files below `folder`, with LandingWriter's clock-based sequence numbers shown as SEQ."""
    return sorted(_seqless(p.relative_to(folder).as_posix()) for p in folder.rglob("*") if p.is_file())


def _seqless(name: str) -> str:
    return re.sub(r"-\d{16}\.jsonl", "-SEQ.jsonl", name)


def test_append_routes_by_event_hour_and_seals_on_close(config: LakeConfig, make_tick: Tick) -> None:
    a = make_tick("2022-01-07T05:59:59.999999Z", symbol="ÄBC")
    b = make_tick("2022-01-07T06:00:00Z", tick_type="bid_ask")
    c = make_tick("2022-01-07T07:30:00+01:00", contract_id=2)  # 06:30 UTC
    d = make_tick(1641531600.5, tick_type="mid_point")  # epoch seconds: 05:00:00.5 UTC
    with LandingWriter(config) as writer:
        assert writer.append([a, b, c, d]) == 4
    assert files_below(landing_dir(config.root)) == [
        "date=2022-01-07/hour=05/test-SEQ.jsonl",
        "date=2022-01-07/hour=06/test-SEQ.jsonl",
    ]
    hour5, hour6 = writer.sealed
    assert hour5.read_bytes() == line(a) + b"\n" + line(d) + b"\n"  # arrival order kept
    assert hour6.read_bytes() == line(b) + b"\n" + line(c) + b"\n"
    assert [(s.path, s.hour, s.bytes) for s in sealed_segments(config.root)] == [
        (hour5, H5, hour5.stat().st_size),
        (hour6, H6, hour6.stat().st_size),
    ]
    assert [s.path for s in sealed_segments(config.root, H6)] == [hour6]
    assert writer.sealed == [hour5, hour6]


def test_datetime_timestamps_are_written_as_iso_with_their_offset(config: LakeConfig, make_tick: Tick) -> None:
    cet = dt.timezone(dt.timedelta(hours=1))
    with LandingWriter(config) as writer:
        writer.append([make_tick(dt.datetime(2022, 1, 7, 6, 30, 0, 1, tzinfo=cet))])
    (segment,) = sealed_segments(config.root)
    assert segment.hour == H5
    assert json.loads(segment.path.read_bytes())["timestamp"] == "2022-01-07T06:30:00.000001+01:00"


def test_unsealed_segments_are_invisible(config: LakeConfig, make_tick: Tick) -> None:
    writer = LandingWriter(config)
    writer.append([make_tick()])
    writer.flush()
    folder = landing_dir(config.root) / "date=2022-01-07/hour=05"
    (tmp,) = list(folder.iterdir())
    assert re.fullmatch(r"\.test-\d{16}\.jsonl\.[0-9a-f]{8}\.tmp", tmp.name)
    assert tmp.read_bytes() == line(make_tick()) + b"\n"  # flushed, yet not sealed
    assert sealed_segments(config.root) == [] and pending_hours(config) == []
    (sealed,) = writer.seal()
    assert sealed.parent == folder and sealed.name == tmp.name[1:].rsplit(".", 2)[0]
    assert list(folder.iterdir()) == [sealed]  # no temp file left behind
    assert pending_hours(config) == [H5]
    writer.close()


def test_rotation_on_segment_max_bytes(config: LakeConfig, make_tick: Tick) -> None:
    small = replace(config, segment_max_bytes=1024)
    records = [make_tick(f"2022-01-07T05:00:{i:02d}.000001Z", contract_id=i + 1) for i in range(40)]
    with LandingWriter(small) as writer:
        for record in records:
            writer.append([record])
    segments = sealed_segments(config.root)
    seqs = [_seq(s) for s in segments]
    assert seqs == [seqs[0] + i for i in range(len(segments))]  # one writer: consecutive sequence numbers
    assert len(segments) >= 4
    longest = max(len(line(r)) + 1 for r in records)
    for s in segments[:-1]:
        assert 1024 <= s.bytes < 1024 + longest  # sealed as soon as it passed the limit
    assert b"".join(s.path.read_bytes() for s in segments) == b"".join(line(r) + b"\n" for r in records)


def test_more_than_four_open_hours_seals_the_oldest(config: LakeConfig, make_tick: Tick) -> None:
    writer = LandingWriter(config)
    for hour in range(5):
        writer.append([make_tick(f"2022-01-07T{hour:02d}:00:00Z")])
    assert [s.path.parent.name for s in sealed_segments(config.root)] == ["hour=00"]
    writer.close()
    assert len(sealed_segments(config.root)) == 5


def test_batch_is_all_or_nothing(config: LakeConfig, make_tick: Tick) -> None:
    writer = LandingWriter(config)
    with pytest.raises(SchemaError) as info:
        writer.append([make_tick(), make_tick("2022-01-07T06:00:00Z"), make_tick(price=None)])
    assert str(info.value) == "tick 3: field 'price' missing (required for tick_type 'last')"
    writer.close()
    assert not landing_dir(config.root).exists() or files_below(landing_dir(config.root)) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"timestamp": dt.datetime(2022, 1, 7, 5)}, "tick 1: field 'timestamp': datetime must be timezone-aware"),
        ({"price": float("nan")}, "tick 1: field 'price' is not finite: nan"),
        ({"contract_id": "7"}, "tick 1: field 'contract_id' must be an integer, got \"7\""),
        (
            {"tick_type": "bid_ask", "bid_price": None, "ask_price": None},
            "tick 1: fields 'bid_price' and 'ask_price' both missing (bid_ask needs one)",
        ),
        ({"timestamp": 1641531600123}, "tick 1: field 'timestamp' out of range 1970..2100: 1641531600123"),
    ],
)
def test_invalid_ticks_raise_schema_error(config: LakeConfig, make_tick: Tick, fields: dict[str, Any], message: str) -> None:
    with LandingWriter(config) as writer, pytest.raises(SchemaError) as info:
        writer.append([{**make_tick(), **fields}])
    assert str(info.value) == message


def test_unencodable_string_raises_schema_error(config: LakeConfig, make_tick: Tick) -> None:
    with LandingWriter(config) as writer, pytest.raises(SchemaError):
        writer.append([make_tick(symbol="\ud800")])


def test_one_sided_quotes_identical_ticks_and_extra_fields_are_written(config: LakeConfig, make_tick: Tick) -> None:
    bid_only = make_tick(tick_type="bid_ask", ask_price=None, ask_size=None, venue={"seq": 9})
    with LandingWriter(config) as writer:
        writer.append([bid_only, bid_only])
    (segment,) = sealed_segments(config.root)
    assert segment.path.read_bytes() == (line(bid_only) + b"\n") * 2


@pytest.mark.parametrize("writer_id", ["", "a/b", ".hidden"])
def test_writer_id_is_validated(config: LakeConfig, writer_id: str) -> None:
    with pytest.raises(SchemaError) as info:
        segment_name(writer_id, 1)
    assert str(info.value) == f"writer id {writer_id!r}: must be non-empty, without '/', not starting with '.'"
    if writer_id:
        with pytest.raises(SchemaError):
            LandingWriter(config, writer_id)


def test_default_writer_id_is_host_and_pid(tmp_path: Path, make_tick: Tick) -> None:
    config = LakeConfig(root=tmp_path / "lake")
    with LandingWriter(config) as writer:
        writer.append([make_tick()])
    (segment,) = sealed_segments(config.root)
    assert re.fullmatch(rf".+-{os.getpid()}-\d{{16}}\.jsonl", segment.path.name)


def _seq(segment: Segment) -> int:
    return int(segment.path.stem.rsplit("-", 1)[1])


def test_sequence_never_comes_back(config: LakeConfig, make_tick: Tick) -> None:
    """A name is a segment's identity: sequences rise above every seq still seen, and start at the
    clock, so a purged name is not reused either."""
    for _ in range(2):
        with LandingWriter(config) as writer:
            writer.append([make_tick()])
    first, second = sealed_segments(config.root)
    assert _seq(first) < _seq(second) and _seq(first) >= (time.time_ns() // 1000) - 60_000_000
    retire_segment(config.root, first.path, retention_hours=0)  # purged at once: its name is gone
    with LandingWriter(config) as writer:
        writer.append([make_tick()])
    names = [s.path.name for s in sealed_segments(config.root)]
    assert len(names) == 2 and first.path.name not in names and _seq(sealed_segments(config.root)[1]) > _seq(second)
    with LandingWriter(config, "other") as writer:
        writer.append([make_tick()])
    assert sealed_segments(config.root)[-1].path.name.startswith("other-")  # sealed last


def test_two_writers_with_one_id_keep_both(config: LakeConfig, make_tick: Tick) -> None:
    one, two = LandingWriter(config), LandingWriter(config)
    one.append([make_tick(price=1.0)])
    two.append([make_tick(price=2.0)])
    one.close()
    two.close()
    prices = sorted(json.loads(s.path.read_bytes())["price"] for s in sealed_segments(config.root))
    assert prices == [1.0, 2.0]


def test_empty_writer_leaves_nothing(config: LakeConfig) -> None:
    with LandingWriter(config) as writer:
        assert writer.append([]) == 0
    assert sealed_segments(config.root) == []


def test_write_segment_and_what_counts_as_sealed(config: LakeConfig) -> None:
    path = write_segment(config.root, H5, "ext-000001.jsonl", b'{"a":1}\n')
    assert path == landing_dir(config.root) / "date=2022-01-07/hour=05/ext-000001.jsonl"
    assert path.read_bytes() == b'{"a":1}\n'
    folder = path.parent
    (folder / ".ext-000002.jsonl").write_bytes(b"x")  # still being written
    (folder / "ext-000003.jsonl.tmp").write_bytes(b"x")
    (folder / "_ext-000004.jsonl").write_bytes(b"x")
    (folder / "notes.txt").write_bytes(b"x")
    (folder / "dir.jsonl").mkdir()
    assert [s.path.name for s in sealed_segments(config.root)] == ["ext-000001.jsonl"]
    assert sealed_segments(config.root, H6) == []


def test_retire_moves_or_deletes_and_purge_honours_retention(config: LakeConfig) -> None:
    kept = write_segment(config.root, H5, "w-000001.jsonl", b"1\n")
    gone = write_segment(config.root, H5, "w-000002.jsonl", b"2\n")
    before = time.time()
    retire_segment(config.root, kept, retention_hours=2)
    retire_segment(config.root, gone, retention_hours=0)
    moved = consumed_dir(config.root) / "ticks/date=2022-01-07/hour=05/w-000001.jsonl"
    assert moved.read_bytes() == b"1\n" and moved.stat().st_mtime >= before - 1
    assert not kept.exists() and not gone.exists()
    assert files_below(consumed_dir(config.root)) == ["ticks/date=2022-01-07/hour=05/w-000001.jsonl"]
    assert purge_consumed(config.root, 2) == 0  # retired just now
    assert purge_consumed(config.root, 2, now=time.time() + 2 * 3600 - 60) == 0
    assert purge_consumed(config.root, 2, now=time.time() + 2 * 3600 + 60) == 1
    assert not moved.exists()
    assert purge_consumed(config.root / "nowhere", 0) == 0


def test_odd_paths_in_the_buffer_are_strays_not_failures(config: LakeConfig) -> None:
    """A folder a producer (or a person) got wrong is named in a warning; every real hour goes on."""
    good = write_segment(config.root, H5, "w-000001.jsonl", b"{}\n")
    base = landing_dir(config.root)
    for odd in ("date=2022-01-07/hour=5", "date=2022-01-07/hour=05.bak", "date=2022-13-45/hour=05", "ticks-old/x"):
        (base / odd).mkdir(parents=True)
        (base / odd / "w-000001.jsonl").write_bytes(b"{}\n")
    (base / "date=2022-01-07" / "README").write_bytes(b"x")
    (good.parent / "notes.txt").write_bytes(b"x")
    scan = scan_buffer(config.root)
    assert [s.path for s in scan.segments] == [good]
    hour, day, segment = (
        "not a landing hour folder (hour=00 ... hour=23)",
        "not a landing date folder (date=YYYY-MM-DD)",
        "not a sealed segment (<writer>-<seq>.jsonl)",
    )
    expected = [
        (base / "date=2022-01-07/README", hour),
        (base / "date=2022-01-07/hour=05.bak", hour),
        (base / "date=2022-01-07/hour=5", hour),
        (base / "date=2022-13-45", day),
        (base / "ticks-old", day),
        (good.parent / "notes.txt", segment),
    ]
    assert sorted(s.warning() for s in scan.strays) == sorted(f"{p}: {why}; left in place, not compacted" for p, why in expected)
    assert pending_hours(config) == [H5]
