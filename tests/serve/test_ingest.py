"""One request body into the landing buffer, without HTTP: line numbers, reconciliation, naming, failures."""

from __future__ import annotations

import errno
import json

import pytest

from ticklake.config import LakeConfig
from ticklake.errors import SchemaError, StorageError
from ticklake.landing.buffer import sealed_segments
from ticklake.landing.quarantine import read_quarantine
from ticklake.serve.ingest import ingest_body, is_disk_full, writer_of

from .conftest import SYNTAX

NS = 1641531600_000000000  # 2022-01-07T05:00:00Z


def test_rejects_carry_the_line_numbers_of_the_body_and_counts_reconcile(lake_config: LakeConfig) -> None:
    body = (
        b"# header comment\r\n"  # 1
        b'last contract_id=1i,price=1,note="two\\\nlines" 1641531600000000000\r\n'  # 2-3: one line, escaped break
        b"last contract_id=2i,price=oops 1641531600000000000\r\n"  # 4
        b"\r\n"  # 5
        b"last contract_id=3i,size=1 1641531600000000000\n"  # 6: no price
        b"last contract_id=4i,price=4 \xff\n"  # 7: not UTF-8
        b"bid_ask contract_id=5i,bid_price=5 1641538800000000000"  # 8: another hour, no final line break
    )
    outcome = ingest_body(lake_config, body, source="test")
    assert [(r.line, r.kind, r.field) for r in outcome.rejects] == [
        (4, SYNTAX, "price"),
        (6, "missing_field", "price"),
        (7, "invalid_utf8", None),
    ]
    assert (outcome.lines, outcome.stored, outcome.quarantined) == (5, 2, 3)
    assert outcome.lines == outcome.stored + outcome.already_present + outcome.quarantined
    assert outcome.message().startswith("line 4, field 'price': line protocol: column ")
    assert [q["raw"] for q in read_quarantine(lake_config.root)][0] == "last contract_id=2i,price=oops 1641531600000000000"
    assert {q["source"] for q in read_quarantine(lake_config.root)} == {"test"}
    stored = [json.loads(line) for s in sealed_segments(lake_config.root) for line in s.path.read_text().splitlines()]
    assert [t["contract_id"] for t in stored] == [1, 5] and stored[0]["note"] == "two\nlines"
    assert {s.path.name for s in sealed_segments(lake_config.root)} == {f"{writer_of(body, 'lp', 'n')}-000000.jsonl"}


def test_the_same_body_is_one_delivery_but_another_precision_is_another(lake_config: LakeConfig) -> None:
    body = b"last contract_id=1i,price=1 1641531600\n"
    first = ingest_body(lake_config, body, precision="s")
    again = ingest_body(lake_config, body, precision="s")
    assert (first.stored, again.stored, again.already_present, again.kept) == (1, 0, 1, 1)
    assert ingest_body(lake_config, body, precision="ms").stored == 1  # the same bytes in ms are other ticks (of 1970-01-20)
    assert writer_of(body, "lp", "s") != writer_of(body, "lp", "ms") != writer_of(body, "jsonl", "s")
    assert writer_of(body, "jsonl", "s") == writer_of(body, "jsonl", "n")  # JSONL has no precision


def test_lines_without_a_timestamp_get_the_receive_time(lake_config: LakeConfig) -> None:
    ingest_body(lake_config, b"mid_point contract_id=1i,price=1\n", received_ns=NS + 123_456_789)
    [segment] = sealed_segments(lake_config.root)
    assert json.loads(segment.path.read_text())["timestamp"] == "2022-01-07T05:00:00.123456Z"


def test_jsonl_bodies_keep_their_lines_byte_for_byte(lake_config: LakeConfig) -> None:
    line = b'{"timestamp": "2022-01-07T05:00:00Z", "contract_id": 1, "tick_type": "last", "price": 1e0, "x": [1]}'
    outcome = ingest_body(lake_config, b"\xef\xbb\xbf" + line + b"\n[]\n", fmt="jsonl")
    assert (outcome.stored, [(r.line, r.kind) for r in outcome.rejects]) == (1, [(2, "not_an_object")])
    assert [s.path.read_bytes() for s in sealed_segments(lake_config.root)] == [line + b"\n"]


def test_unknown_formats_and_precisions_are_schema_errors(lake_config: LakeConfig) -> None:
    with pytest.raises(SchemaError, match="precision 'fortnight': must be one of n, ns, u, us, ms, s, m, h"):
        ingest_body(lake_config, b"", precision="fortnight")
    with pytest.raises(SchemaError, match="format 'csv'"):
        ingest_body(lake_config, b"", fmt="csv")


def test_a_storage_failure_leaves_no_temp_files_and_the_retry_completes(lake_config: LakeConfig) -> None:
    body = b"last contract_id=1i,price=1 1641531600000000000\nlast contract_id=1i,price=1 1641535200000000000\n"
    blocked = lake_config.root / "landing" / "ticks" / "date=2022-01-07" / "hour=06"
    blocked.parent.mkdir(parents=True)
    blocked.write_bytes(b"")  # a file where the second hour's folder belongs
    with pytest.raises(StorageError) as e:
        ingest_body(lake_config, body)
    assert not is_disk_full(e.value)
    assert [p.name for p in (lake_config.root / "landing").rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"] == []
    blocked.unlink()
    retry = ingest_body(lake_config, body)
    assert (retry.stored, retry.already_present) == (1, 1)  # the first hour was sealed by the failed attempt
    assert len(sealed_segments(lake_config.root)) == 2


def test_disk_full_is_told_apart() -> None:
    full = OSError(errno.ENOSPC, "No space left on device")
    wrapped = StorageError("x: cannot write: No space left on device")
    wrapped.__cause__ = full
    assert is_disk_full(wrapped) and is_disk_full(full)
    assert not is_disk_full(StorageError("x")) and not is_disk_full(OSError(errno.EACCES, "denied"))
