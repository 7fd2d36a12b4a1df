"""Tests for ticklake.landing.sidecar: ingest keeps its parsed rows beside each segment; compaction reuses them
only when they are bound to the segment's exact content, and stores the same data either way."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from ticklake.build.compaction import compact_all
from ticklake.config import LakeConfig
from ticklake.demo.eurusd import eurusd_ticks
from ticklake.demo.synthetic import to_jsonl
from ticklake.landing.buffer import purge_orphan_sidecars, sealed_segments
from ticklake.landing.ingest import ingest_files
from ticklake.landing.jsonl import LINE, parse_jsonl
from ticklake.landing.sidecar import read_sidecar, sidecar_path
from ticklake.storage.files import sha256_hex
from ticklake.storage.layout import consumed_dir, landing_dir

Write = Callable[[str, list[Any]], Path]


def _records(make_tick: Callable[..., dict[str, Any]]) -> list[Any]:
    """Two hours out of line order, every tick type, an unknown field, conditions, and bad lines."""
    rows: list[Any] = to_jsonl(eurusd_ticks().slice(0, 300)).splitlines()  # real quotes
    rows += [
        make_tick("2022-01-07T06:59:59.999999Z", 9, "last", conditions=["T", "I"]),
        make_tick("2022-01-07T05:00:00Z", 7, "bid_ask", venue_seq=12),  # an unknown field goes to `extra`
        "{not json",
        make_tick("2022-01-07T05:30:00+02:00", 7, "mid_point"),
        make_tick("2022-01-07T06:00:00", 8, "last", size=None),  # no size: valid
        '{"timestamp":"2022-01-07T05:00:00Z","contract_id":-1,"tick_type":"last","price":1}',
    ]
    return rows


def _stored(config: LakeConfig) -> pa.Table:
    """Every stored row, in a deterministic order."""
    files = sorted((config.root / "lake" / "ticks").rglob("*.parquet"))
    table = pa.concat_tables([pq.read_table(f) for f in files])
    return table.sort_by([("timestamp", "ascending"), ("contract_id", "ascending"), ("price", "ascending")])


def test_ingest_writes_sidecars_bound_to_each_segment(config: LakeConfig, write_jsonl: Write, make_tick: Any) -> None:
    report = ingest_files(config, [write_jsonl("in.jsonl", _records(make_tick))])
    assert report.quarantined == 2 and len(report.segments) >= 3  # EUR/USD hours plus 05:00 and 06:00
    for segment in sealed_segments(config.root):
        data = segment.path.read_bytes()
        lines = data.count(b"\n")
        rows = read_sidecar(segment.path, sha256_hex(data), len(data), lines)
        assert rows is not None
        assert rows.equals(parse_jsonl(data).table.drop_columns([LINE]))  # exactly what parsing gives


def _copy_without_sidecars(config: LakeConfig, root: Path) -> LakeConfig:
    """A copy of the lake whose segments must all be parsed: the reference a sidecar must match."""
    shutil.copytree(config.root, root)
    for sidecar in landing_dir(root).rglob("*.arrow"):
        sidecar.unlink()
    return LakeConfig(root=root, writer_id="test")


def test_compaction_reuses_sidecars_and_stores_the_same_rows(
    config: LakeConfig, tmp_path: Path, write_jsonl: Write, make_tick: Any
) -> None:
    ingest_files(config, [write_jsonl("in.jsonl", _records(make_tick))])
    parsed = _copy_without_sidecars(config, tmp_path / "parsed")

    with_sidecars = compact_all(config)
    without = compact_all(parsed)
    assert sum(r.from_sidecar for r in with_sidecars) == sum(r.segments for r in with_sidecars) > 0
    assert sum(r.from_sidecar for r in without) == 0
    assert [(r.lines, r.stored, r.quarantined) for r in with_sidecars] == [(r.lines, r.stored, r.quarantined) for r in without]
    assert _stored(config).equals(_stored(parsed))
    assert not list(landing_dir(config.root).rglob("*.arrow"))  # retired with their segments
    assert not list(consumed_dir(config.root).rglob("*.arrow"))  # only the JSONL is retained


def test_damaged_or_foreign_sidecar_is_ignored(config: LakeConfig, write_jsonl: Write, make_tick: Any) -> None:
    ingest_files(config, [write_jsonl("a.jsonl", [make_tick(contract_id=1)])])
    ingest_files(config, [write_jsonl("b.jsonl", [make_tick(contract_id=2, price=5.5)])])
    first, second = sorted(sealed_segments(config.root), key=lambda s: s.path.read_bytes())
    sidecar_path(first.path).write_bytes(sidecar_path(first.path).read_bytes()[:-20])  # torn
    shutil.copy(sidecar_path(first.path), sidecar_path(second.path))  # bound to other content

    [result] = compact_all(config)
    assert (result.segments, result.from_sidecar, result.stored) == (2, 0, 2)
    stored = _stored(config)
    assert sorted(zip(stored["contract_id"].to_pylist(), stored["price"].to_pylist(), strict=True)) == [(1, 100.25), (2, 5.5)]


def test_orphan_sidecars_are_purged_once_old(config: LakeConfig, write_jsonl: Write, make_tick: Any) -> None:
    ingest_files(config, [write_jsonl("in.jsonl", [make_tick()])])
    [segment] = sealed_segments(config.root)
    orphan = sidecar_path(segment.path).with_name("gone-000001.arrow")
    shutil.copy(sidecar_path(segment.path), orphan)
    assert purge_orphan_sidecars(landing_dir(config.root)) == 0  # young: an ingest may be about to seal its segment
    old = time.time() - 2 * 3600
    os.utime(orphan, (old, old))
    assert purge_orphan_sidecars(landing_dir(config.root)) == 1
    assert not orphan.exists() and sidecar_path(segment.path).exists()


def _flip(at: float) -> Callable[[Path], None]:
    """Flip one byte at offset `at` (from the end when negative, a fraction of the size when below 1)."""

    def damage(path: Path) -> None:
        raw = bytearray(path.read_bytes())
        i = int(at * len(raw)) if 0 < at < 1 else int(at)
        raw[i] ^= 0x40
        path.write_bytes(bytes(raw))

    return damage


def _rewrite(*, keep_header: bool, edit: bool = True, version: bytes | None = None) -> Callable[[Path], None]:
    """Rewrite the sidecar's Arrow file with pyarrow, keeping its schema metadata, one contract_id changed."""

    def damage(path: Path) -> None:
        raw = path.read_bytes()
        start = raw.index(b"ARROW1")  # where the Arrow file begins, after whatever precedes it
        table = ipc.open_file(pa.py_buffer(raw[start:])).read_all()
        if edit:
            ids = table.column("contract_id").to_pylist()
            ids[0] += 1
            table = table.set_column(table.schema.get_field_index("contract_id"), "contract_id", pa.array(ids))
            table = table.cast(ipc.open_file(pa.py_buffer(raw[start:])).schema)  # the metadata as it was
        if version is not None:
            table = table.replace_schema_metadata({**table.schema.metadata, b"ticklake.sidecar": version})
        sink = pa.BufferOutputStream()
        with ipc.new_file(sink, table.schema) as out:
            out.write_table(table)
        path.write_bytes((raw[:start] if keep_header else b"") + sink.getvalue().to_pybytes())

    return damage


DAMAGE = {
    **{f"flipped byte at {at}": _flip(at) for at in (3, 30, 70, 0.25, 0.5, 0.75, -3)},
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "truncated inside the header": lambda path: path.write_bytes(path.read_bytes()[:40]),
    "empty": lambda path: path.write_bytes(b""),
    "rewritten with pyarrow, one value changed": _rewrite(keep_header=False),
    "rewritten with pyarrow behind the original header": _rewrite(keep_header=True),
    "old format (no digest)": _rewrite(keep_header=False, edit=False, version=b"1"),
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_sidecar_not_exactly_as_written_is_never_used(
    config: LakeConfig, tmp_path: Path, write_jsonl: Write, make_tick: Any, damage: Callable[[Path], None]
) -> None:
    ingest_files(config, [write_jsonl("in.jsonl", _records(make_tick))])
    parsed = _copy_without_sidecars(config, tmp_path / "parsed")
    segments = sealed_segments(config.root)
    for segment in segments:
        damage(sidecar_path(segment.path))
        data = segment.path.read_bytes()
        assert read_sidecar(segment.path, sha256_hex(data), len(data), data.count(b"\n")) is None

    results = compact_all(config)
    assert sum(r.from_sidecar for r in results) == 0 and sum(r.segments for r in results) == len(segments)
    assert [(r.lines, r.stored, r.quarantined) for r in results] == [
        (r.lines, r.stored, r.quarantined) for r in compact_all(parsed)
    ]
    assert _stored(config).equals(_stored(parsed))  # exactly the segments' ticks, parsed from the JSONL
