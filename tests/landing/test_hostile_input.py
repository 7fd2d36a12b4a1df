"""Hostile lines end as quarantine records, end to end: `ticklake ingest` of a file and `ticklake
compact` of a producer's segment finish, store every valid line, and quarantine each other line
with its reason and line number (a line nested 100,000 deep once crashed both, forever)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.landing.judging import split_lines, valid_line
from ticklake.landing.buffer import write_segment
from ticklake.landing.jsonl import parse_jsonl
from ticklake.landing.quarantine import read_quarantine
from ticklake.storage.layout import parse_hour

GOOD = valid_line(0)


def member(text: bytes) -> bytes:
    return GOOD[:-1] + b"," + text + b"}"


# (line, reason); valid lines between them. Every one of these is something a producer has written.
HOSTILE: list[tuple[bytes, str]] = [
    (b'{"a":' * 100_000, "too_deep"),
    (member(b'"x":' + b"[" * 100_000 + b"]" * 100_000), "too_deep"),
    (GOOD[:-1] + b',"price":2}', "duplicate_field"),
    (member(b'"venue":{"seq":1,"seq":2}'), "duplicate_field"),
    (GOOD.replace(b'"price":100.0', b'"price":1e400'), "bad_value"),
    (member(b'"x":1' + b"0" * 400), "bad_value"),
    (member(b'"x":' + b"9" * 5000), "bad_value"),
    (GOOD.replace(b'"price":100.0', b'"price":NaN'), "invalid_json"),
    (GOOD.replace(b"2022-01-07", b"0000-01-07"), "bad_timestamp"),
    (GOOD.replace(b"2022-01-07", b"10000-01-07"), "bad_timestamp"),
    (GOOD.replace(b'"2022-01-07T05:00:00.000000Z"', b"9223372036855"), "bad_timestamp"),
    (GOOD.replace(b'"2022-01-07T05:00:00.000000Z"', b"-1"), "bad_timestamp"),
    (GOOD.replace(b'"AB"', b'"A\x00B"'), "invalid_json"),
    (GOOD.replace(b'"AB"', b'"A\xffB"'), "invalid_utf8"),
    (GOOD.replace(b'"AB"', b'"\\ud800"'), "bad_value"),
    (b"\xef\xbb\xbf" + GOOD, "invalid_json"),
    (b"[]", "not_an_object"),
    (b"null", "not_an_object"),
    (b'"str"', "not_an_object"),
]
EXTRA = member(b'"feed_seq":7,"venue":{"name":"X"}')


def hostile_file() -> tuple[bytes, dict[int, str], int]:
    """The file's bytes, line number -> reason for each hostile line, and how many lines are valid."""
    lines: list[bytes] = []
    reasons: dict[int, str] = {}
    for i, (raw, reason) in enumerate(HOSTILE):
        lines.append(valid_line(i + 1, unknown=i % 2 == 0))
        lines.append(raw)
        reasons[len(lines)] = reason
        lines.append(b"  \r" if i % 5 == 0 else EXTRA)
    valid = len(lines) - len(HOSTILE) - sum(1 for line in lines if not line.strip())
    ends = [b"\r\n" if i % 3 == 0 else b"\n" for i in range(len(lines))]
    return b"".join(line + end for line, end in zip(lines, ends, strict=True)), reasons, valid


def ticklake(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).parent / "ticklake"
    return subprocess.run([str(command), "--root", str(root), *args], capture_output=True, text=True, timeout=300)


def stored_rows(root: Path) -> int:
    done = ticklake(root, "sql", "SELECT count(*) AS n FROM ticks", "--format", "csv")
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def test_the_parser_accounts_for_every_hostile_line() -> None:
    data, reasons, valid = hostile_file()
    parsed = parse_jsonl(data)
    assert {r.line: r.kind for r in parsed.rejects} == reasons
    assert parsed.table.num_rows == valid and parsed.rows_in + parsed.blank == len(split_lines(data))


@pytest.mark.slow  # three processes
def test_ingest_quarantines_each_hostile_line_and_keeps_the_rest(tmp_path: Path) -> None:
    data, reasons, valid = hostile_file()
    source = tmp_path / "hostile.jsonl"
    source.write_bytes(data)
    done = ticklake(tmp_path / "lake", "ingest", str(source))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"Error: {len(HOSTILE)} of {valid + len(HOSTILE)} lines quarantined in {tmp_path / 'lake' / 'landing' / '_quarantine'}; "
        "the valid lines were kept"
    )
    records = read_quarantine(tmp_path / "lake")
    assert {r["line"]: r["reason"] for r in records} == reasons
    assert all(r["source"] == str(source) and "\n" not in str(r["message"]) for r in records)
    assert ticklake(tmp_path / "lake", "compact", "--all").returncode == 0
    assert stored_rows(tmp_path / "lake") == valid


@pytest.mark.slow  # three processes
def test_compaction_of_a_producer_segment_with_hostile_lines_finishes(tmp_path: Path) -> None:
    data, reasons, valid = hostile_file()
    root = tmp_path / "lake"
    write_segment(root, parse_hour("2022-01-07T05"), "recorder-000001.jsonl", data)
    for _ in range(2):  # and again: nothing new, nothing counted twice
        done = ticklake(root, "compact", "--all")
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr and "Error" not in done.stderr
    assert {r["line"]: r["reason"] for r in read_quarantine(root)} == reasons
    assert stored_rows(root) == valid


@pytest.mark.slow
def test_a_line_of_50_megabytes_is_stored_or_rejected(tmp_path: Path) -> None:
    blob = b"a" * (50 << 20)
    lines = [valid_line(1), member(b'"blob":"' + blob + b'"'), valid_line(2), b"{" + blob, b"[" * len(blob), valid_line(3)]
    parsed = parse_jsonl(b"\n".join(lines) + b"\n")
    assert [(r.line, r.kind) for r in parsed.rejects] == [(4, "invalid_json"), (5, "too_deep")]
    assert parsed.table.column("_line").to_pylist() == [0, 1, 2, 5]
    assert len(parsed.table.column("extra")[1].as_py()) == len(blob) + len('{"blob":""}')
