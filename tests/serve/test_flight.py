"""Flight SQL end to end: a real server on a free port over a real lake, driven by ADBC's Flight SQL driver
(its DBAPI into Arrow and pandas) and by pyarrow's own Flight client for the protocol's corners."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import pyarrow.flight as flight
import pytest

import ticklake
from ticklake.build.compaction import compact_all
from ticklake.config import LakeConfig
from ticklake.demo.eurusd import eurusd_ticks
from ticklake.demo.synthetic import make_contracts, synthetic_ticks, to_jsonl
from ticklake.landing.ingest import ingest_files
from ticklake.serve import protocol
from ticklake.serve.flight import FlightSqlServer
from ticklake.serve.settings import ServeSettings
from ticklake.serve.tokens import Tokens

READ, WRITE = "r-0b1f-reader", "w-77c2-writer"
TOKENS = Tokens.parse_env(f"read:{READ},write:{WRITE}")
SLOW = "SELECT count(*) FROM range(40000000000) t(i) WHERE i % 7 = 3"  # many seconds of work on any machine here
EURUSD = 12087792


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> LakeConfig:
    """A compacted lake: a synthetic day of 30 contracts (all tick types) and the real EUR/USD quotes."""
    root = tmp_path_factory.mktemp("flight") / "lake"
    config = LakeConfig(root=root, writer_id="test")
    source = root.parent / "ticks.jsonl"
    synthetic = synthetic_ticks(dt.date(2022, 1, 7), make_contracts(30), 40_000, seed=3)
    source.write_bytes(to_jsonl(synthetic) + to_jsonl(eurusd_ticks()))
    report = ingest_files(config, [source])
    assert report.quarantined == 0
    compact_all(config)
    return config


def start(config: LakeConfig, **limits: Any) -> FlightSqlServer:
    return FlightSqlServer(config, TOKENS, "grpc://127.0.0.1:0", ServeSettings(**limits))


@pytest.fixture(scope="module")
def server(lake: LakeConfig) -> Iterator[FlightSqlServer]:
    srv = start(lake, serve_queries=3, serve_wait_seconds=5)
    yield srv
    srv.shutdown()


def adbc(port: int, token: str | None = READ, **kwargs: Any) -> Any:
    db_kwargs = {"adbc.flight.sql.authorization_header": f"Bearer {token}"} if token else {}
    return flightsql.connect(f"grpc://127.0.0.1:{port}", db_kwargs={**db_kwargs, **kwargs}, autocommit=True)


def lake_answer(config: LakeConfig, query: str, params: Any = None) -> pa.Table:
    with ticklake.connect(config=config) as con:
        return con.execute(query, params).to_arrow_table()


QUERIES = [
    "SELECT tick_type, count(*) AS n, sum(size) AS size FROM ticks GROUP BY ALL ORDER BY 1",
    f"SELECT timestamp, bid_price, ask_price FROM ticks WHERE contract_id = {EURUSD} ORDER BY timestamp LIMIT 500",
    "SELECT * FROM ticks WHERE symbol = 'EUR.USD' AND hour = 20 ORDER BY timestamp, bid_price",
    "SELECT contract_id, conditions, extra, date, hour FROM ticks WHERE tick_type = 'last' ORDER BY ALL LIMIT 50",
]


@pytest.mark.parametrize("query", QUERIES)
def test_adbc_results_equal_the_lakes_own(server: FlightSqlServer, lake: LakeConfig, query: str) -> None:
    with adbc(server.port) as conn, conn.cursor() as cur:
        cur.execute(query)
        got = cur.fetch_arrow_table()
    assert got.num_rows > 0
    assert got.equals(lake_answer(lake, query))


def test_pandas_and_bound_parameters_through_a_prepared_statement(server: FlightSqlServer, lake: LakeConfig) -> None:
    query = "SELECT count(*) AS n, min(timestamp) AS first FROM ticks WHERE contract_id = ? AND timestamp >= ?"
    since = dt.datetime(2020, 1, 1, 12, tzinfo=dt.UTC)
    with adbc(server.port) as conn, conn.cursor() as cur:
        cur.execute(query, (EURUSD, since))
        frame = cur.fetch_df()
        cur.execute("SELECT symbol FROM ticks WHERE symbol = ? LIMIT 1", ("EUR.USD",))
        assert cur.fetchall() == [("EUR.USD",)]
    expected = lake_answer(lake, query, [EURUSD, since]).to_pandas()
    assert frame.equals(expected)
    assert int(frame["n"][0]) > 1000


def test_metadata_lists_the_datasets_with_their_schemas(server: FlightSqlServer, lake: LakeConfig) -> None:
    with adbc(server.port) as conn:
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        tables = {t["table_name"] for c in objects for s in c["catalog_db_schemas"] for t in s["db_schema_tables"]}
        assert {"ticks", "bars_1m"} <= tables
        assert conn.adbc_get_table_types() == ["TABLE"]
        schema = conn.adbc_get_table_schema("ticks")
        assert conn.adbc_get_info()["vendor_name"] == "ticklake"
        only = conn.adbc_get_objects(depth="tables", table_name_filter="bar%").read_all().to_pylist()
        assert [t["table_name"] for c in only for s in c["catalog_db_schemas"] for t in s["db_schema_tables"]] == ["bars_1m"]
    assert schema.equals(lake_answer(lake, "SELECT * FROM ticks LIMIT 0").schema)
    assert lake_answer(lake, "SELECT * FROM bars_1m LIMIT 0").num_columns > 0


ESCAPES = {
    "COPY (SELECT * FROM ticks) TO '{root}/stolen.csv'": "COPY is refused",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '{root}/x.csv'": "EXPLAIN of COPY",
    "ATTACH '{root}/catalog.sqlite' AS c": "ATTACH is refused",
    "SELECT * FROM read_csv('/etc/passwd')": 'Cannot access file "/etc/passwd"',
    "SELECT * FROM read_text('{root}/../../../../etc/hostname')": "Cannot access file",
    "SELECT * FROM glob('/*')": "Cannot access file",
    "INSTALL httpfs": "LOAD is refused",
    "LOAD httpfs": "LOAD is refused",
    "SET enable_external_access = true": "SET is refused",
    "RESET allowed_directories": "SET is refused",
    "CREATE TEMP TABLE t AS SELECT 1": "CREATE is refused",
    "SELECT 1; SELECT 2": "2 statements",
    "SELECT * FROM query('COPY (SELECT 1) TO ''/tmp/x.csv''')": "query() runs SQL text",
    "CALL enable_logging()": "CALL is refused",
}


@pytest.mark.parametrize("escape", ESCAPES)
def test_every_sandbox_escape_is_refused_and_the_server_stays_up(server: FlightSqlServer, lake: LakeConfig, escape: str) -> None:
    query = escape.format(root=lake.root)
    with adbc(server.port) as conn, conn.cursor() as cur:
        with pytest.raises(Exception) as refused:  # noqa: B017 - the message is asserted below
            cur.execute(query)
            cur.fetchall()
        assert ESCAPES[escape] in str(refused.value).replace("\\", ""), str(refused.value)
        cur.execute("SELECT 42 AS answer")
        assert cur.fetchall() == [(42,)]
    assert not (lake.root / "stolen.csv").exists() and not (lake.root / "x.csv").exists()


def test_which_duckdb_locks_hold_without_the_statement_check(lake: LakeConfig) -> None:
    """The served connection's DuckDB, statement check bypassed: what DuckDB's own settings refuse, and what they do not."""
    import duckdb

    with ticklake.LakeConnection(lake, readable=[lake.root]) as con:
        raw = con.con
        with pytest.raises(duckdb.Error, match="lock_configuration|locked"):
            raw.execute("SET enable_external_access = true")
        with pytest.raises(duckdb.PermissionException, match="/etc/passwd"):
            raw.execute("SELECT * FROM read_csv('/etc/passwd')")
        with pytest.raises(duckdb.Error, match="disabled|Permission"):
            raw.execute("INSTALL httpfs")
        with pytest.raises(duckdb.Error):
            raw.execute("ATTACH '/tmp/elsewhere.db'")
        # DuckDB cannot make a folder readable and not writable: only the statement check keeps COPY out.
        target = lake.root / "written-by-duckdb.csv"
        raw.execute(f"COPY (SELECT 1) TO '{target}'")
    assert target.exists()
    target.unlink()


def test_tokens_are_required_and_never_logged(server: FlightSqlServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ticklake.serve")
    for token in (None, "not-a-token"):
        with pytest.raises(Exception, match="UNAUTHENTICATED|Unauthenticated"):
            with adbc(server.port, token) as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchall()
    with adbc(server.port, WRITE) as conn, conn.cursor() as cur:  # a write token may read
        cur.execute("SELECT 1")
        assert cur.fetchall() == [(1,)]
    # Basic auth, the password being the token: the server answers with the bearer to use from then on.
    with adbc(server.port, None, username="quant", password=READ) as conn, conn.cursor() as cur:
        cur.execute("SELECT 2")
        assert cur.fetchall() == [(2,)]
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refusals and all("not-a-token" not in m and READ not in m for m in caplog.messages)


def test_a_query_past_its_time_is_cancelled_while_another_succeeds(lake: LakeConfig) -> None:
    srv = start(lake, serve_queries=2, serve_query_seconds=1.5)
    try:
        errors: list[str] = []

        def slow() -> None:
            with adbc(srv.port) as conn, conn.cursor() as cur:
                try:
                    cur.execute(SLOW)
                    cur.fetchall()
                except Exception as e:  # noqa: BLE001 - the error is the outcome
                    errors.append(str(e))

        runner = threading.Thread(target=slow)
        began = time.monotonic()
        runner.start()
        time.sleep(0.3)
        with adbc(srv.port) as conn, conn.cursor() as cur:
            cur.execute(QUERIES[0])
            assert cur.fetch_arrow_table().equals(lake_answer(lake, QUERIES[0]))
        runner.join(60)
        assert errors and "serve_query_seconds" in errors[0], errors
        assert time.monotonic() - began < 30
        with adbc(srv.port) as conn, conn.cursor() as cur:  # its slot came back
            cur.execute("SELECT 3")
            assert cur.fetchall() == [(3,)]
    finally:
        srv.shutdown()


def pyarrow_client(port: int, token: str = READ) -> tuple[flight.FlightClient, flight.FlightCallOptions]:
    return flight.connect(f"grpc://127.0.0.1:{port}"), flight.FlightCallOptions(
        headers=[(b"authorization", f"Bearer {token}".encode())]
    )


def statement(query: str) -> flight.FlightDescriptor:
    return flight.FlightDescriptor.for_command(protocol.pack(protocol.make("CommandStatementQuery", query=query)))


def test_cancel_flight_info_stops_a_running_statement(server: FlightSqlServer) -> None:
    client, options = pyarrow_client(server.port)
    with client:
        info = client.get_flight_info(statement(SLOW), options)
        body = protocol.make("CancelFlightInfoRequest", info=info.serialize()).SerializeToString()
        results = list(client.do_action(flight.Action("CancelFlightInfo", body), options))
        status = protocol.parse("CancelFlightInfoResult", results[0].body.to_pybytes()).status
        assert status == protocol.CANCELLED
        with pytest.raises(flight.FlightError, match="unknown or finished statement|cancelled"):
            client.do_get(info.endpoints[0].ticket, options).read_all()
        again = client.get_flight_info(statement("SELECT 5 AS five"), options)
        assert client.do_get(again.endpoints[0].ticket, options).read_all().to_pylist() == [{"five": 5}]


LEAVER = """
import os, sys
import pyarrow.flight as flight
from ticklake.serve import protocol
port, token = sys.argv[1], sys.argv[2]
client = flight.connect(f"grpc://127.0.0.1:{port}")
options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])
command = protocol.pack(protocol.make("CommandStatementQuery", query="SELECT * FROM ticks, range(20) r"))
info = client.get_flight_info(flight.FlightDescriptor.for_command(command), options)
reader = client.do_get(info.endpoints[0].ticket, options)
print(reader.read_chunk().data.num_rows, flush=True)
os._exit(0)  # gone mid-stream, as a crashed notebook is
"""


def test_results_stream_in_batches_and_a_client_leaving_frees_its_slot(lake: LakeConfig) -> None:
    srv = start(lake, serve_queries=1, serve_wait_seconds=20)
    try:
        left = subprocess.run([sys.executable, "-c", LEAVER, str(srv.port), READ], capture_output=True, text=True, timeout=120)
        assert left.returncode == 0, left.stderr
        assert 0 < int(left.stdout) < 990_000  # one batch of a 990,000-row result: it streams, it is not sent whole
        client, options = pyarrow_client(srv.port)
        with client:  # the one slot came back
            done = client.get_flight_info(statement("SELECT count(*) AS n FROM ticks"), options)
            assert client.do_get(done.endpoints[0].ticket, options).read_all()["n"][0].as_py() == 49_500
    finally:
        srv.shutdown()


def test_all_slots_busy_is_a_clear_unavailable(lake: LakeConfig) -> None:
    srv = start(lake, serve_queries=1, serve_wait_seconds=0.2)
    try:
        client, options = pyarrow_client(srv.port)
        with client:
            held = client.get_flight_info(statement("SELECT 1 AS one"), options)  # holds the slot until fetched
            with pytest.raises(flight.FlightUnavailableError, match="busy: all 1 query slots"):
                client.get_flight_info(statement("SELECT 2"), options)
            assert client.do_get(held.endpoints[0].ticket, options).read_all().num_rows == 1
            after = client.get_flight_info(statement("SELECT 2 AS two"), options)
            assert client.do_get(after.endpoints[0].ticket, options).read_all().to_pylist() == [{"two": 2}]
    finally:
        srv.shutdown()


def test_updates_and_unknown_commands_are_refused(server: FlightSqlServer) -> None:
    client, options = pyarrow_client(server.port, WRITE)
    with client:
        update = flight.FlightDescriptor.for_command(
            protocol.pack(protocol.make("CommandStatementUpdate", query="DELETE FROM ticks"))
        )
        writer, _ = client.do_put(update, pa.schema([]), options)
        with pytest.raises(flight.FlightUnauthorizedError, match="read-only"):
            writer.close()
        with pytest.raises(flight.FlightError, match="unknown Flight SQL command"):
            client.get_flight_info(flight.FlightDescriptor.for_command(b"\x0a\x03abc"), options)
        with pytest.raises(flight.FlightError, match="command descriptors"):
            client.get_flight_info(flight.FlightDescriptor.for_path("ticks"), options)


def test_a_memory_limit_fails_a_query_that_needs_more(tmp_path: Path, lake: LakeConfig) -> None:
    srv = start(lake, serve_query_memory="40MB")
    try:
        with adbc(srv.port) as conn, conn.cursor() as cur:
            with pytest.raises(Exception, match="Out of Memory|memory"):
                cur.execute("SELECT string_agg(repeat('x', 1000), ',') FROM range(200000)")
                cur.fetchall()
            cur.execute("SELECT count(*) FROM ticks")
            assert cur.fetchall() == [(49_500,)]
    finally:
        srv.shutdown()


STALLER = LEAVER.replace(
    "os._exit(0)  # gone mid-stream, as a crashed notebook is", "import time; time.sleep(120)  # stops reading, keeps the call"
)


def test_a_client_that_stops_reading_loses_its_slot_at_the_timeout_and_shutdown_does_not_hang(lake: LakeConfig) -> None:
    srv = start(lake, serve_queries=1, serve_wait_seconds=20, serve_query_seconds=1.5)
    staller = subprocess.Popen([sys.executable, "-c", STALLER, str(srv.port), READ], stdout=subprocess.PIPE, text=True)
    try:
        assert staller.stdout is not None and int(staller.stdout.readline()) > 0
        began = time.monotonic()
        client, options = pyarrow_client(srv.port)
        with client:  # waits for the one slot: the timeout stops the stalled stream, the reaper reopens the slot
            done = client.get_flight_info(statement("SELECT count(*) AS n FROM ticks"), options)
            assert client.do_get(done.endpoints[0].ticket, options).read_all()["n"][0].as_py() == 49_500
        assert time.monotonic() - began < 15
        stopped = time.monotonic()
        srv.shutdown(timeout=2)  # the stalled call may still be in flight: shutdown gives up waiting, it does not hang
        assert time.monotonic() - stopped < 10
    finally:
        staller.kill()
        staller.wait()
        assert staller.stdout is not None
        staller.stdout.close()


def test_parameters_bind_by_name_or_position_and_a_flood_of_them_is_refused_at_its_second_row(server: FlightSqlServer) -> None:
    from ticklake.serve.flight import _parameters

    assert _parameters("SELECT $c + $d", {"c": 1, "d": 2}) == {"c": 1, "d": 2}
    assert _parameters("SELECT ? + ?", {"0": 1, "1": 2}) == [1, 2]
    client, options = pyarrow_client(server.port)
    with client:
        body = protocol.pack(protocol.make("ActionCreatePreparedStatementRequest", query="SELECT $c::INT + 1 AS n"))
        created = next(iter(client.do_action(flight.Action("CreatePreparedStatement", body), options)))
        handle = protocol.unpack(created.body.to_pybytes())[1].prepared_statement_handle
        prepared = flight.FlightDescriptor.for_command(
            protocol.pack(protocol.make("CommandPreparedStatementQuery", prepared_statement_handle=handle))
        )
        one = pa.record_batch({"c": [41]})
        writer, _ = client.do_put(prepared, one.schema, options)
        writer.write_batch(one)
        writer.close()
        info = client.get_flight_info(prepared, options)
        assert client.do_get(info.endpoints[0].ticket, options).read_all().to_pylist() == [{"n": 42}]
        writer, _ = client.do_put(prepared, one.schema, options)
        with pytest.raises(flight.FlightError, match="one set of parameters"):
            for _ in range(1000):  # refused at the second row, not after reading them all
                writer.write_batch(one)
            writer.close()


def test_malformed_requests_get_one_line_errors(server: FlightSqlServer) -> None:
    client, options = pyarrow_client(server.port)
    with client:
        wrong = protocol.pack(protocol.make("ActionClosePreparedStatementRequest", prepared_statement_handle=b"x"))
        with pytest.raises(flight.FlightServerError, match="expected a ActionCreatePreparedStatementRequest") as e:
            list(client.do_action(flight.Action("CreatePreparedStatement", wrong), options))
        assert "Traceback" not in str(e.value)
        with pytest.raises(flight.FlightServerError, match="malformed Flight SQL CancelFlightInfoRequest"):
            list(client.do_action(flight.Action("CancelFlightInfo", b"\xff\xff\xff"), options))
        not_utf8 = protocol.pack(protocol.make("CommandStatementQuery", query="SELECT 1"))[:-2] + b"\xff\xfe"
        with pytest.raises(flight.FlightServerError, match="not UTF-8 text"):
            client.get_flight_info(flight.FlightDescriptor.for_command(not_utf8), options)
        with pytest.raises(flight.FlightServerError, match="a query of 300,001 bytes"):
            client.get_flight_info(statement("SELECT 1" + " " * 299_993), options)


def test_table_shorthand_and_what_a_served_connection_may_read(server: FlightSqlServer, lake: LakeConfig) -> None:
    with adbc(server.port) as conn, conn.cursor() as cur:
        cur.execute("TABLE ticks LIMIT 0")
        assert cur.fetch_arrow_table().schema.names[:3] == ["timestamp", "contract_id", "tick_type"]
        cur.execute("SELECT unnest(current_setting('allowed_directories'))")
        allowed = [row[0] for row in cur.fetchall()]
    served = server.config.cache_folder
    assert served.parent.name == "served" and served.parent.parent == lake.cache_folder  # the lake's own read cache
    assert sorted(allowed) == sorted([str(lake.root.resolve()) + "/", str(served.resolve()) + "/", str(served / "spill") + "/"])
