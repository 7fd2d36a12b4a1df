"""Bound parameters prune like the literals they stand for (the demo's SQL binds its values)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest

import ticklake
from tests.conftest import tick
from ticklake.build.compaction import compact_all
from ticklake.config import LakeConfig
from ticklake.landing.ingest import ingest_files


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ticklake.LakeConnection]:
    """Three hours of trades and quotes for two contracts: six files."""
    folder = tmp_path_factory.mktemp("params")
    lines = [
        json.dumps(tick(f"2022-01-07T0{h}:{m:02d}:00Z", contract, kind))
        for h in (5, 6, 7)
        for m in (0, 30)
        for contract in (11, 22)
        for kind in ("last", "bid_ask")
    ]
    (folder / "in.jsonl").write_text("\n".join(lines) + "\n")
    config = LakeConfig(root=folder / "lake", writer_id="test")
    ingest_files(config, [folder / "in.jsonl"])
    compact_all(config)
    with ticklake.connect(config.root) as connection:
        yield connection


def files_read(con: ticklake.LakeConnection, query: str, params: object = None) -> int:
    (ref,) = con.plan(query, params).refs
    return len(ref.plan.files)


HOUR = dt.datetime(2022, 1, 7, 6, tzinfo=dt.UTC)
WITH_PARAMS = "SELECT count(*) FROM ticks WHERE contract_id = $c AND timestamp >= $t AND timestamp < $t + INTERVAL 1 HOUR"
WITH_LITERALS = (
    "SELECT count(*) FROM ticks WHERE contract_id = 11"
    " AND timestamp >= TIMESTAMPTZ '2022-01-07 06:00:00+00' AND timestamp < TIMESTAMPTZ '2022-01-07 07:00:00+00'"
)


def test_named_parameters_prune_like_literals(con: ticklake.LakeConnection) -> None:
    assert files_read(con, "SELECT count(*) FROM ticks") == 6
    assert files_read(con, WITH_PARAMS, {"c": 11, "t": HOUR}) == files_read(con, WITH_LITERALS) == 2
    assert con.sql(WITH_PARAMS, {"c": 11, "t": HOUR}).fetchall() == con.sql(WITH_LITERALS).fetchall() == [(4,)]


def test_each_run_prunes_by_its_own_values(con: ticklake.LakeConnection) -> None:
    query = "SELECT count(*) FROM ticks WHERE hour = $h AND tick_type = $k"
    assert [files_read(con, query, {"h": h, "k": "last"}) for h in (5, 6, 8)] == [1, 1, 0]
    assert [con.sql(query, {"h": h, "k": "last"}).fetchone() for h in (5, 8)] == [(4,), (0,)]


def test_positional_parameters_run_unpruned_but_right(con: ticklake.LakeConnection) -> None:
    query = "SELECT count(*) FROM ticks WHERE contract_id = ?"
    assert files_read(con, query, [22]) == 6
    assert con.sql(query, [22]).fetchone() == (12,)


def test_a_parameter_without_a_value_does_not_prune(con: ticklake.LakeConnection) -> None:
    refs = con._references("SELECT * FROM ticks WHERE contract_id = $missing", {"other": 1})
    assert refs is not None and [r.predicates for r, _ in refs] == [()]


def test_names_that_differ_only_in_case_prune_nothing_and_stay_right(con: ticklake.LakeConnection) -> None:
    query = "SELECT count(*) FROM ticks WHERE hour = $H"
    assert files_read(con, query, {"H": 6}) == 2  # DuckDB matches names without case
    both = {"H": 6, "h": 7}  # which one DuckDB binds is its business: nothing is pruned
    assert files_read(con, query, both) == 6
    unpruned = con.con.execute("SELECT count(*) FROM ticks WHERE hour = $H", both).fetchone()  # the whole snapshot
    assert con.sql(query, both).fetchone() == unpruned == (8,)
