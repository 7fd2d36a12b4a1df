"""Ingest: valid lines land byte for byte, bad lines go to quarantine with their reason, counts reconcile."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import ticklake.landing.ingest as ingest_module
from ticklake.build.compaction import compact_all
from ticklake.config import LakeConfig
from ticklake.errors import StorageError
from ticklake.landing.buffer import sealed_segments
from ticklake.landing.ingest import IngestReport, ingest_files
from ticklake.landing.quarantine import read_quarantine
from ticklake.storage.layout import landing_dir, quarantine_dir

Tick = Callable[..., dict[str, Any]]
Write = Callable[[str, Any], Path]
GOOD = '{"timestamp":"2022-01-07T05:00:00.000001Z","contract_id":1,"tick_type":"last","price":100.25,"size":100}'

# (raw line, reason, field, message): every reason a line can be quarantined for at ingest
BAD: list[tuple[bytes, str, str | None, str]] = [
    (b'{"timestamp":', "invalid_json", None, "line is not valid JSON: Expecting value: line 1 column 14 (char 13)"),
    (GOOD.replace("100.25", "NaN").encode(), "invalid_json", None, "line is not valid JSON: NaN is not a JSON number"),
    (b"\xff\xfe\x00", "invalid_utf8", None, "line is not UTF-8 (byte 0)"),
    (b"[1, 2]", "not_an_object", None, "line is a JSON array, not an object"),
    (
        GOOD.replace('"timestamp":"2022-01-07T05:00:00.000001Z",', "").encode(),
        "missing_field",
        "timestamp",
        "field 'timestamp' missing",
    ),
    (GOOD.replace('"contract_id":1,', "").encode(), "missing_field", "contract_id", "field 'contract_id' missing"),
    (GOOD.replace('"tick_type":"last",', "").encode(), "missing_field", "tick_type", "field 'tick_type' missing"),
    (
        GOOD.replace('"price":100.25,', "").encode(),
        "missing_field",
        "price",
        "field 'price' missing (required for tick_type 'last')",
    ),
    (
        GOOD.replace('"last"', '"mid_point"').replace('"price":100.25,', "").encode(),
        "missing_field",
        "price",
        "field 'price' missing (required for tick_type 'mid_point')",
    ),
    (
        GOOD.replace('"last"', '"bid_ask"').replace('"price":100.25,', "").encode(),
        "missing_field",
        "bid_price",
        "fields 'bid_price' and 'ask_price' both missing (bid_ask needs one)",
    ),
    (
        GOOD.replace('"contract_id":1', '"contract_id":"1"').encode(),
        "wrong_type",
        "contract_id",
        "field 'contract_id' must be an integer, got \"1\"",
    ),
    (
        GOOD.replace('"contract_id":1', '"contract_id":1.5').encode(),
        "wrong_type",
        "contract_id",
        "field 'contract_id' must be an integer, got 1.5",
    ),
    (
        GOOD.replace('"contract_id":1', '"contract_id":false').encode(),
        "wrong_type",
        "contract_id",
        "field 'contract_id' must be an integer, got false",
    ),
    (GOOD.replace("100.25", '"100.25"').encode(), "wrong_type", "price", "field 'price' must be a number, got \"100.25\""),
    (GOOD.replace('"size":100', '"size":"100"').encode(), "wrong_type", "size", "field 'size' must be a number, got \"100\""),
    (
        GOOD.replace("}", ',"conditions":[1]}').encode(),
        "wrong_type",
        "conditions",
        "field 'conditions' must be a list of strings, got [1]",
    ),
    (GOOD.replace("}", ',"symbol":42}').encode(), "wrong_type", "symbol", "field 'symbol' must be a string, got 42"),
    (
        GOOD.replace('"last"', '"trade"').encode(),
        "bad_value",
        "tick_type",
        "field 'tick_type' must be one of last, bid_ask, mid_point, got \"trade\"",
    ),
    (
        GOOD.replace('"contract_id":1', '"contract_id":0').encode(),
        "bad_value",
        "contract_id",
        "field 'contract_id' out of range: 0",
    ),
    (
        GOOD.replace('"contract_id":1', '"contract_id":-7').encode(),
        "bad_value",
        "contract_id",
        "field 'contract_id' out of range: -7",
    ),
    (GOOD.replace('"size":100', '"size":-100').encode(), "bad_value", "size", "field 'size' is negative: -100"),
    (GOOD.replace("100.25", "1e999").encode(), "bad_value", "price", "field 'price' is not finite: inf"),
    (
        GOOD.replace('"2022-01-07T05:00:00.000001Z"', '"7 Jan 2022"').encode(),
        "bad_timestamp",
        "timestamp",
        "field 'timestamp' is not ISO-8601: '7 Jan 2022'",
    ),
    (
        GOOD.replace('"2022-01-07T05:00:00.000001Z"', "1641531600000").encode(),
        "bad_timestamp",
        "timestamp",
        "field 'timestamp' out of range 1970..2100: 1641531600000",
    ),
]


def reconciles(report: IngestReport) -> bool:
    return report.lines == report.appended + report.already_present + report.quarantined


def landed(config: LakeConfig) -> bytes:
    return b"".join(s.path.read_bytes() for s in sealed_segments(config.root))


@pytest.mark.parametrize("big", [False, True], ids=["small file", "big file"])
def test_every_bad_line_is_quarantined_with_its_reason(config: LakeConfig, tmp_path: Path, big: bool) -> None:
    valid = [GOOD.replace("100.25", f"{100 + i / 100:.2f}").encode() for i in range(12_000 if big else 3)]
    lines = [valid[0]]
    for raw, *_ in BAD:
        lines += [raw, valid[len(lines) % len(valid)]]
    lines += valid[len(lines) :]
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")

    report = ingest_files(config, [source])

    records = read_quarantine(config.root)
    assert [(r["line"], r["reason"], r["field"], r["message"]) for r in records] == [
        (2 + 2 * i, reason, field, message) for i, (_, reason, field, message) in enumerate(BAD)
    ]
    assert all(r["source"] == str(source) for r in records)
    assert [r["raw"] for r in records] == [raw.decode("utf-8", errors="replace") for raw, *_ in BAD]
    assert (report.lines, report.quarantined, report.appended, report.already_present) == (
        len(lines),
        len(BAD),
        len(lines) - len(BAD),
        0,
    )
    assert reconciles(report)
    assert [p.parent for p in report.quarantine_files] == [quarantine_dir(config.root)]
    bad = {raw for raw, *_ in BAD}
    assert landed(config) == b"".join(line + b"\n" for line in lines if line not in bad)  # byte for byte, in order


def test_invalid_utf8_record_keeps_the_exact_bytes(config: LakeConfig, write_jsonl: Write) -> None:
    ingest_files(config, [write_jsonl("bad.jsonl", [b'{"symbol":"\xe9"}'])])
    (record,) = read_quarantine(config.root)
    assert (record["reason"], record["message"]) == ("invalid_utf8", "line is not UTF-8 (byte 11)")
    assert record["raw"] == '{"symbol":"\ufffd"}'
    assert base64.b64decode(record["raw_base64"]) == b'{"symbol":"\xe9"}'


def test_summary_and_problems(config: LakeConfig, write_jsonl: Write) -> None:
    path = write_jsonl("in.jsonl", [GOOD, "", "[1]", "[2]", GOOD.replace('"size":100', '"size":-1')])
    report = ingest_files(config, [path])
    assert report.problems == [
        f"not_an_object: 2 lines, first at {path}:3: line is a JSON array, not an object",
        f"bad_value (size): 1 line, first at {path}:5: field 'size' is negative: -1",
    ]
    assert report.summary().startswith("ingested 4 lines: 1 appended, 3 quarantined, 1 blank lines skipped; 1 segments in ")


def test_lines_are_routed_to_their_event_hour_byte_for_byte(config: LakeConfig, write_jsonl: Write, make_tick: Tick) -> None:
    lines = [
        json.dumps(make_tick("2022-01-07T06:10:00Z", venue={"seq": 1})),  # unknown field kept as sent
        '{"timestamp": 1641531600.000001, "contract_id": 2, "tick_type": "mid_point", "price": 1.50}',
        json.dumps(make_tick("2022-01-07T05:59:59.999999Z", tick_type="bid_ask", ask_price=None)),
        json.dumps(make_tick("2022-01-07T07:00:00+01:00")),  # 06:00 UTC
    ]
    report = ingest_files(config, [write_jsonl("in.jsonl", lines)])
    assert (report.appended, report.quarantined) == (4, 0)
    by_hour = {s.path.parent.name: s.path.read_text() for s in sealed_segments(config.root)}
    assert by_hour == {"hour=05": lines[1] + "\n" + lines[2] + "\n", "hour=06": lines[0] + "\n" + lines[3] + "\n"}
    assert sorted(p.parent.name for p in report.segments) == ["hour=05", "hour=06"]


def test_a_clean_single_hour_file_lands_as_is(config: LakeConfig, write_jsonl: Write, make_tick: Tick) -> None:
    path = write_jsonl("in.jsonl", [make_tick(f"2022-01-07T05:00:0{i}Z") for i in range(5)])
    report = ingest_files(config, [path])
    (segment,) = report.segments
    assert segment.read_bytes() == path.read_bytes()
    size = path.stat().st_size
    assert re.fullmatch(rf"ingest-[0-9a-f]{{16}}-0{{12}}-0*{size}\.jsonl", segment.name)  # source, bytes 0..end


def test_identical_lines_are_two_ticks(config: LakeConfig, write_jsonl: Write) -> None:
    report = ingest_files(config, [write_jsonl("in.jsonl", [GOOD, GOOD, GOOD])])
    assert report.appended == 3 and landed(config) == (GOOD.encode() + b"\n") * 3


def test_blank_lines_are_skipped_and_counted(config: LakeConfig, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n" + GOOD.encode() + b"\n   \n\t\n[1]\n" + GOOD.encode() + b"\n\n")
    report = ingest_files(config, [source])
    assert (report.lines, report.blank, report.appended, report.quarantined) == (3, 4, 2, 1)
    assert [r["line"] for r in read_quarantine(config.root)] == [5]
    assert reconciles(report)


def test_crlf_line_endings(config: LakeConfig, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(GOOD.encode() + b"\r\n[1]\r\n\r\n" + GOOD.replace("05:00", "05:01").encode() + b"\r\n")
    report = ingest_files(config, [source])
    assert (report.appended, report.quarantined, report.blank) == (2, 1, 1)
    (record,) = read_quarantine(config.root)
    assert (record["line"], record["reason"]) == (2, "not_an_object")
    (result,) = compact_all(config)
    assert (result.stored, result.quarantined) == (2, 0)


def test_no_final_newline(config: LakeConfig, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(GOOD.encode() + b"\n" + GOOD.encode())
    report = ingest_files(config, [source])
    assert report.appended == 2 and landed(config) == (GOOD.encode() + b"\n") * 2


def test_line_numbers_run_on_across_chunks(config: LakeConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 1000)
    lines = [GOOD.replace("100.25", f"{100 + i / 100:.2f}").encode() for i in range(100)]
    bad_at = [1, 9, 10, 50, 77, 100]
    for n in bad_at:
        lines[n - 1] = b"[%d]" % n
    lines[30] = b""
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    report = ingest_files(config, [source])
    records = sorted(read_quarantine(config.root), key=lambda r: r["line"])  # one quarantine file per chunk
    assert [(r["line"], r["raw"]) for r in records] == [(n, f"[{n}]") for n in bad_at]
    assert len(report.quarantine_files) > 1
    assert (report.lines, report.blank, report.appended) == (99, 1, 93) and reconciles(report)


def test_identical_chunks_of_one_file_are_all_kept(config: LakeConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # chunks are 64 MiB in production; a small chunk size stands in for a big file of repeated lines
    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 1000)
    source = tmp_path / "in.jsonl"
    source.write_bytes((GOOD.encode() + b"\n") * 100)
    report = ingest_files(config, [source])
    assert (report.appended, report.already_present) == (100, 0)


def test_same_file_twice_is_read_once(config: LakeConfig, write_jsonl: Write, make_tick: Tick) -> None:
    path = write_jsonl("in.jsonl", [make_tick(), make_tick("2022-01-07T06:00:00Z"), "[1]"])
    first = ingest_files(config, [path])
    second = ingest_files(config, [path])
    assert (first.appended, first.quarantined) == (2, 1) and reconciles(first)
    assert (second.lines, second.appended, second.before_checkpoint, second.segments) == (0, 0, 3, [])
    assert second.summary().startswith("ingested 0 new lines (3 before the checkpoint ingested earlier): 0 appended")
    assert len(sealed_segments(config.root)) == 2
    assert len(read_quarantine(config.root)) == 1


def test_copy_under_another_name_is_the_same_source(config: LakeConfig, write_jsonl: Write, make_tick: Tick) -> None:
    path = write_jsonl("in.jsonl", [make_tick()])
    copy = shutil.copy(path, path.with_name("copy.jsonl"))
    report = ingest_files(config, [path, copy])
    assert (report.appended, report.before_checkpoint) == (1, 1)


@pytest.mark.parametrize("retention", [0, 168])
def test_reingest_after_compaction_appends_nothing(
    config: LakeConfig, write_jsonl: Write, make_tick: Tick, retention: float
) -> None:
    config = replace(config, segment_retention_hours=retention)
    path = write_jsonl("in.jsonl", [make_tick(), make_tick()])
    ingest_files(config, [path])
    (result,) = compact_all(config)
    assert result.stored == 2 and sealed_segments(config.root) == []
    again = ingest_files(config, [path])
    assert (again.appended, again.before_checkpoint, again.segments) == (0, 2, [])
    assert compact_all(config) == []


def test_a_grown_file_appends_only_its_new_lines(config: LakeConfig, tmp_path: Path) -> None:
    """A recorder's log shipped again after it grew: 1,000 + 10 lines are 1,010 rows, not 2,010."""
    lines = [GOOD.replace("100.25", str(i)) for i in range(1010)]
    source = tmp_path / "recorder.jsonl"
    source.write_text("\n".join(lines[:1000]) + "\n")
    assert ingest_files(config, [source]).appended == 1000
    compact_all(config)
    with source.open("a") as f:
        f.write("\n".join(lines[1000:]) + "\n")
    grown = ingest_files(config, [source])
    assert (grown.lines, grown.appended, grown.before_checkpoint) == (10, 10, 1000)
    (result,) = compact_all(config)
    assert result.rows == 1010


def test_a_rewritten_file_is_reported_not_doubled(config: LakeConfig, tmp_path: Path) -> None:
    source = tmp_path / "day.jsonl"
    source.write_text(GOOD + "\n" + GOOD.replace("100.25", "1") + "\n")
    ingest_files(config, [source])
    source.write_text(GOOD + "\n" + GOOD.replace("100.25", "2") + "\n" + GOOD + "\n")  # same first line, other bytes
    report = ingest_files(config, [source])
    assert report.appended == 0 and len(report.rewritten) == 1
    assert report.rewritten[0].startswith(f"{source}: changed since it was ingested")
    assert report.rewritten[0].endswith("nothing appended — `ticklake ingest --again` ingests it whole as a new source")
    again = ingest_files(config, [source], again=True)
    assert (again.appended, again.rewritten) == (3, [])
    source.write_text(GOOD + "\n")  # truncated: shorter than what was ingested
    (shorter,) = ingest_files(config, [source]).rewritten
    first = len(GOOD + "\n" + GOOD.replace("100.25", "1") + "\n")  # what the first ingest read
    assert f"but it is shorter than the {first:,} bytes ingested" in shorter


def test_an_unterminated_last_line_waits_until_it_is_complete(config: LakeConfig, tmp_path: Path) -> None:
    source = tmp_path / "live.jsonl"
    source.write_text(GOOD + "\n" + GOOD[:40])  # the recorder is mid-line
    first = ingest_files(config, [source])
    assert (first.appended, first.quarantined, first.held_back) == (1, 0, 1)
    source.write_text(GOOD + "\n" + GOOD + "\n")
    second = ingest_files(config, [source])
    assert (second.lines, second.appended, second.quarantined) == (1, 1, 0)
    (result,) = compact_all(config)
    assert result.rows == 2


@pytest.mark.parametrize("via", ["file", "stdin"])
def test_an_interrupted_run_is_finished_not_doubled(
    config: LakeConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, via: str
) -> None:
    """A chunk recorded as pending whose segments were partly sealed: the next run seals the rest under
    the same names, even after the file grew (the pending range is replayed exactly)."""
    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 1000)
    hours = [GOOD.replace("T05", f"T{h:02d}").replace("100.25", str(i)) for i in range(20) for h in (5, 6)]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(hours) + "\n")
    ingest_files(config, [source])
    (cp_file,) = (config.root / "landing/_checkpoints").glob("*.json")
    done = json.loads(cp_file.read_text())
    # Back to "the last chunk pending, its hour-06 segment not sealed": as a kill -9 would leave it.
    last = sorted(sealed_segments(config.root), key=lambda s: s.path.name)[-1]
    start, end = (int(x) for x in last.path.stem.split("-")[-2:])
    line_no = source.read_bytes()[:start].count(b"\n") + 1
    undone = dict(
        done,
        offset=start,
        lines=line_no - 1,
        pending=[
            {
                "start": start,
                "end": end,
                "first_line": line_no,
                "sha256": hashlib.sha256(source.read_bytes()[start:end]).hexdigest(),
            }
        ],
    )
    tail = source.read_bytes()[max(0, start - 65536) : start]
    undone["tail_sha256"] = hashlib.sha256(tail).hexdigest()
    cp_file.write_text(json.dumps(undone))
    for s in sealed_segments(config.root):
        if s.path.stem.endswith(f"{start:012d}-{end:06d}") and s.path.parent.name == "hour=06":
            s.path.unlink()
    with source.open("a") as f:
        f.write(GOOD.replace("100.25", "999") + "\n")
    if via == "file":
        report = ingest_files(config, [source])
    else:
        report = ingest_files(config, ["-"], stdin=io.BytesIO(source.read_bytes()))
    assert report.already_present >= 1 and report.appended >= 2
    results = compact_all(config)
    assert sum(r.rows for r in results) == 41


def test_stdin(config: LakeConfig) -> None:
    report = ingest_files(config, ["-"], stdin=io.BytesIO(GOOD.encode() + b"\n{\n"))
    assert (report.appended, report.quarantined) == (1, 1)
    assert read_quarantine(config.root)[0]["source"] == "<stdin>"


def test_missing_source_raises_storage_error(config: LakeConfig, tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(StorageError) as info:
        ingest_files(config, [missing])
    assert str(info.value) == f"{missing}: cannot read: No such file or directory"


def test_progress_reports_lines(config: LakeConfig, write_jsonl: Write) -> None:
    seen: list[str] = []
    path = write_jsonl("in.jsonl", [GOOD, GOOD])
    ingest_files(config, [path], progress=seen.append)
    assert seen == [f"{path}: 2 lines"]


def test_nothing_is_written_to_the_working_directory(
    config: LakeConfig, write_jsonl: Write, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    ingest_files(config, [write_jsonl("in.jsonl", [GOOD, "[1]"])])
    assert list(cwd.iterdir()) == [] and landing_dir(config.root).is_dir()


def test_invalid_utf8_inside_a_string_is_quarantined(config: LakeConfig, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(
        GOOD.encode() + b"\n" + GOOD.encode().replace(b"}", b',"symbol":"A\xffB"}') + b"\n"  # a raw 0xFF byte
    )
    report = ingest_files(config, [source])
    assert (report.appended, report.quarantined) == (1, 1)
    assert read_quarantine(config.root)[0]["reason"] == "invalid_utf8"
    compact_all(config)


_INGEST_IN_CHILD = """
import sys
from ticklake.config import LakeConfig
from ticklake.landing.ingest import ingest_files
report = ingest_files(LakeConfig(root=sys.argv[1], writer_id="t"), [sys.argv[2]])
print(report.appended, report.quarantined)
"""


def test_file_starting_with_null_is_quarantined(config: LakeConfig, write_jsonl: Write, tmp_path: Path) -> None:
    path = write_jsonl("in.jsonl", ["null", GOOD])
    done = subprocess.run(
        [sys.executable, "-c", _INGEST_IN_CHILD, str(config.root), str(path)], capture_output=True, cwd=tmp_path, timeout=120
    )
    assert (done.returncode, done.stdout) == (0, b"1 1\n")


@pytest.mark.parametrize("trailing_newline", [True, False])
def test_hours_in_order_become_exact_byte_ranges(config: LakeConfig, tmp_path: Path, trailing_newline: bool) -> None:
    lines = [
        json.dumps({"timestamp": f"2022-01-07T{h:02d}:{m:02d}:00Z", "contract_id": 7, "tick_type": "mid_point", "price": m})
        for h in (5, 6, 7)
        for m in range(3)
    ]
    source = tmp_path / "sorted.jsonl"
    source.write_bytes(("\n".join(lines) + ("\n" if trailing_newline else "")).encode())
    report = ingest_files(config, [source])
    assert (report.appended, report.quarantined) == (9, 0)
    by_hour = {s.parent.name: s.read_text() for s in report.segments}
    assert by_hour == {f"hour={h:02d}": "\n".join(lines[i * 3 : i * 3 + 3]) + "\n" for i, h in enumerate((5, 6, 7))}


def test_appended_per_hour_is_what_compaction_stores(config: LakeConfig, tmp_path: Path) -> None:
    """Every report reconciles: lines appended per hour = rows stored + rows quarantined for that hour."""
    lines = [GOOD.replace("T05", f"T{h:02d}").replace("100.25", str(i)) for i in range(7) for h in (5, 6, 9)]
    lines += [GOOD] * 3 + ["{bad"]  # identical ticks are real ticks; a bad line is quarantined at ingest
    source = tmp_path / "day.jsonl"
    source.write_text("\n".join(lines) + "\n")
    report = ingest_files(config, [source])
    assert report.appended_by_hour == {"2022-01-07T05": 10, "2022-01-07T06": 7, "2022-01-07T09": 7}
    results = {r.hour: r for r in compact_all(config)}
    assert {h: r.stored + r.quarantined for h, r in results.items()} == report.appended_by_hour
    assert all(r.quarantined == 0 for r in results.values()) and report.quarantined == 1
