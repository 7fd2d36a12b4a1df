"""The read-only query surface: the statement check refuses every spelling of a write or a setting
change, DuckDB's own lock backs it up, and local reads and ``--output`` keep working."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

import ticklake
from tests.query.conftest import run_cli
from ticklake.errors import QueryError, QueryRefused
from ticklake.query.safety import ADVICE, check_read_only

REFUSED = [
    ("COPY (SELECT 1) TO 'x.csv'", "COPY reads or writes files directly"),
    ("copy (select 1) to 'x.parquet' (format parquet)", "COPY reads or writes files directly"),
    ("/* harmless */ COPY (SELECT 1) TO 'x.csv'", "COPY reads or writes files directly"),
    ("-- a comment\n  CoPy ticks TO 'x.csv'", "COPY reads or writes files directly"),
    ("COPY (WITH x AS (SELECT 1 AS a) SELECT * FROM x) TO 'x.csv'", "COPY reads or writes files directly"),
    ("COPY t FROM 'x.csv'", "COPY reads or writes files directly"),
    ("SELECT 1; COPY (SELECT 1) TO 'x.csv'", "statement 2 of 2: COPY reads or writes files directly"),
    ("SELECT 1;\nSELECT 2;copy(select 1)to'x.csv'", "statement 3 of 3: COPY reads or writes files directly"),
    ("EXPLAIN ANALYZE COPY (SELECT 1) TO 'x.csv'", "EXPLAIN ANALYZE COPY reads or writes files directly"),
    ("explain /* x */ analyze copy (select 1) to 'x.csv'", "EXPLAIN ANALYZE COPY reads or writes files directly"),
    ("EXPLAIN (FORMAT JSON, ANALYZE) COPY (SELECT 1) TO 'x.csv'", "EXPLAIN ANALYZE COPY reads or writes files directly"),
    ("EXPLAIN COPY (SELECT 1) TO 'x.csv'", "EXPLAIN COPY reads or writes files directly"),
    ("PREPARE p AS COPY (SELECT 1) TO 'x.csv'", "PREPARE COPY reads or writes files directly"),
    ("EXPORT DATABASE 'dump'", "EXPORT DATABASE writes files"),
    ("COPY FROM DATABASE memory TO other", "statement 2 of 4: COPY FROM DATABASE writes a database"),
    ("ATTACH 'other.duckdb' AS other", "ATTACH opens another database"),
    ("attach ':memory:' as m", "ATTACH opens another database"),
    ("DETACH other", "DETACH changes the attached databases"),
    ("INSTALL httpfs", "INSTALL loads extension code"),
    ("FORCE INSTALL httpfs", "FORCE INSTALL loads extension code"),
    ("LOAD httpfs", "LOAD loads extension code"),
    ("UPDATE EXTENSIONS", "UPDATE EXTENSIONS is not known to be read-only"),
    ("SET threads = 1", "SET changes settings"),
    ("SET GLOBAL threads = 1", "SET changes settings"),
    ("SET SESSION TimeZone = 'America/New_York'", "SET changes settings"),
    ("set enable_external_access = true", "SET changes settings"),
    ("SET lock_configuration = false", "SET changes settings"),
    ("SET variable = 1", "SET changes settings"),
    ("RESET threads", "RESET changes settings"),
    ("PRAGMA threads = 1", "PRAGMA changes settings"),
    ("PRAGMA enable_profiling", "PRAGMA changes settings"),
    ("PRAGMA disable_optimizer", "PRAGMA changes settings"),
    ("USE memory", "USE changes settings"),
    ("CALL enable_logging(storage = 'file', storage_path = 'logs')", "enable_logging() writes files or changes settings"),
    ("SELECT * FROM enable_logging()", "enable_logging() writes files or changes settings"),
    ('SELECT * FROM "Enable_Logging" /* x */ ()', "enable_logging() writes files or changes settings"),
    ("CALL enable_profiling(save_location = 'p.json')", "enable_profiling() writes files or changes settings"),
    ("CALL truncate_duckdb_logs()", "truncate_duckdb_logs() changes the logs"),
    ("SELECT * FROM query('SELECT * FROM enable_logging()')", "query() runs SQL text the check cannot read"),
    ("CREATE MACRO m() AS TABLE SELECT * FROM enable_logging()", "enable_logging() writes files or changes settings"),
    ("CREATE SECRET (TYPE s3, KEY_ID 'k', SECRET 's')", "CREATE SECRET stores credentials"),
    ("create or replace persistent secret s (type s3)", "CREATE SECRET stores credentials"),
    ("DROP PERSISTENT SECRET s", "DROP SECRET removes credentials"),
]

ALLOWED = [
    "SELECT 1",
    "select * from read_csv('/some/contracts.csv') c",
    "WITH x AS (SELECT 1 AS a) SELECT * FROM x",
    "SELECT 'COPY (SELECT 1) TO ''x''' AS text, 1 AS \"copy\", 2 AS query",
    "EXPLAIN SELECT 1",
    "EXPLAIN ANALYZE SELECT 1",
    "EXPLAIN (FORMAT JSON) SELECT 1",
    "DESCRIBE SELECT 1 AS a",
    "SUMMARIZE SELECT 1 AS a",
    "PIVOT (SELECT 1 AS a, 2 AS b) ON a USING sum(b)",
    "PRAGMA version",
    "CALL pragma_version()",
    "SET VARIABLE lo = 5",
    "RESET VARIABLE lo",
    "CREATE TEMP TABLE t AS SELECT 1 AS a; INSERT INTO t VALUES (2); SELECT * FROM t",
    "CREATE MACRO twice(x) AS 2 * x",
    "BEGIN; SELECT 1; COMMIT",
    "CHECKPOINT",
]


@pytest.mark.parametrize(("query", "why"), REFUSED)
def test_the_statement_check_refuses_writes_and_setting_changes_in_any_spelling(query: str, why: str) -> None:
    with pytest.raises(QueryRefused) as refused:
        check_read_only(duckdb.connect(), query)
    assert str(refused.value) == f"read-only query: {why}; {ADVICE}"


@pytest.mark.parametrize("query", ALLOWED)
def test_the_statement_check_lets_reads_and_session_state_through(query: str) -> None:
    check_read_only(duckdb.connect(), query)


@pytest.mark.parametrize("schema", ["CREATE TABLE harmless (a INT);\n", "COPY (SELECT 42) TO '{leak}';\n"])
def test_import_database_is_refused_unread(tmp_path: Path, schema: str) -> None:
    """Its files are read once to be checked and again to be run, so they could be swapped in between."""
    (tmp_path / "schema.sql").write_text(schema.format(leak=tmp_path / "leaked.csv"))
    (tmp_path / "load.sql").write_text("")
    for query in (f"IMPORT DATABASE '{tmp_path}'", f"select 1; /* x */ import\n database '{tmp_path}'"):
        with pytest.raises(QueryRefused, match=r"IMPORT DATABASE runs the SQL files of a folder; needs --unsafe"):
            check_read_only(duckdb.connect(), query)
    check_read_only(duckdb.connect(), "SELECT 'import database' AS words")  # words in a string are words
    assert not (tmp_path / "leaked.csv").exists()


@pytest.mark.parametrize(
    "query",
    [
        "WITH x AS (SELECT 1) COPY x TO 'x.csv'",  # not DuckDB SQL: it never runs
        "PRAGMA enable_external_access",  # no such pragma
    ],
)
def test_what_duckdb_cannot_parse_is_an_error_and_never_runs(history_lake: Path, query: str) -> None:
    with ticklake.connect(history_lake) as lake, pytest.raises(QueryError) as failed:
        lake.sql(query)
    assert not isinstance(failed.value, QueryRefused)
    assert str(failed.value).endswith(f"(query: {query})")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_copy_over_a_live_data_file_is_refused_and_the_file_unchanged(history_lake: Path) -> None:
    with ticklake.connect(history_lake) as lake:
        (live,) = {lake.root / f.path for r in lake.plan("SELECT * FROM ticks WHERE hour = 5").refs for f in r.plan.files}
    before = _sha(live)
    for query in (
        f"COPY (SELECT * FROM ticks LIMIT 3) TO '{live}' (FORMAT parquet)",
        f"EXPLAIN ANALYZE COPY (SELECT * FROM ticks LIMIT 3) TO '{live}' (FORMAT parquet)",
        f"SELECT 1; COPY (SELECT * FROM ticks LIMIT 3) TO '{live}' (FORMAT parquet)",
    ):
        result = run_cli("--root", str(history_lake), "sql", query)
        assert result.returncode == 1
        kind = "EXPLAIN ANALYZE COPY" if query.startswith("EXPLAIN") else "COPY"
        where = "statement 2 of 2: " if query.startswith("SELECT") else ""
        assert result.stderr == f"Error: read-only query: {where}{kind} reads or writes files directly; {ADVICE}\n"
        assert result.stdout == ""
    assert _sha(live) == before
    assert (
        run_cli("--root", str(history_lake), "sql", "--format", "csv", "SELECT count(*) FROM ticks").stdout
        == "count_star()\n14\n"
    )


def test_unsafe_allows_writes_and_settings(history_lake: Path, tmp_path: Path) -> None:
    target = tmp_path / "copied.csv"
    query = f"SET TimeZone = 'America/New_York'; COPY (SELECT count(*) AS n FROM ticks) TO '{target}'"
    assert run_cli("--root", str(history_lake), "sql", query).returncode == 1
    assert not target.exists()
    done = run_cli("--root", str(history_lake), "sql", "--unsafe", query)
    assert done.returncode == 0, done.stderr
    assert target.read_text() == "n\n14\n"
    with ticklake.connect(history_lake, unsafe=True) as lake:
        lake.execute("SET threads = 1")
        assert lake.execute("SELECT current_setting('threads')").fetchone() == (1,)


def test_local_files_stay_readable(history_lake: Path, tmp_path: Path) -> None:
    contracts = tmp_path / "contracts.csv"
    contracts.write_text("contract_id,name\n11,Alpha\n12,Beta\n")
    query = f"SELECT c.name, count(*) AS n FROM ticks JOIN read_csv('{contracts}') c USING (contract_id) GROUP BY ALL ORDER BY 1"
    result = run_cli("--root", str(history_lake), "sql", "--format", "csv", query)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "name,n\nAlpha,9\nBeta,5\n"


def test_duckdb_itself_is_locked_even_through_the_raw_connection(history_lake: Path) -> None:
    """Layer two: statements that bypass the check (``lake.con``) still cannot loosen the connection."""
    with ticklake.connect(history_lake) as lake:
        settings = dict(
            lake.con.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN ('lock_configuration', 'enable_external_access',"
                " 'autoinstall_known_extensions', 'autoload_known_extensions')"
            ).fetchall()
        )
        assert settings == {
            "lock_configuration": "true",
            "enable_external_access": "false",
            "autoinstall_known_extensions": "false",
            "autoload_known_extensions": "false",
        }
        for statement in ("SET enable_external_access = true", "SET lock_configuration = false", "RESET threads"):
            with pytest.raises(duckdb.InvalidInputException, match="the configuration has been locked"):
                lake.con.execute(statement)
        with pytest.raises(duckdb.PermissionException, match="Loading external extensions is disabled"):
            lake.con.execute("LOAD httpfs")
        # ...and the lake's own queries still run.
        assert lake.execute("SELECT count(*) FROM ticks WHERE hour = 6").fetchone() == (4,)


def test_the_python_api_refuses_like_the_cli(history_lake: Path, tmp_path: Path) -> None:
    with ticklake.connect(history_lake) as lake:
        for run in (lake.sql, lake.execute, lake.explain, lake.plan, lake.stream):
            with pytest.raises(QueryRefused, match="ATTACH opens another database"):
                run(f"ATTACH '{tmp_path / 'x.duckdb'}'")
        with pytest.raises(QueryRefused, match="COPY"):
            lake.executemany(f"COPY (SELECT ?) TO '{tmp_path / 'y.csv'}'", [[1]])
    assert not (tmp_path / "x.duckdb").exists() and not (tmp_path / "y.csv").exists()


def test_output_files_are_written_by_ticklake_and_never_into_the_lake(history_lake: Path, tmp_path: Path) -> None:
    for name in ("r.parquet", "r.csv"):
        out = tmp_path / "results" / name
        done = run_cli("--root", str(history_lake), "sql", "SELECT * FROM ticks WHERE hour = 7", "--output", str(out))
        assert done.returncode == 0 and done.stderr == f"wrote 2 rows to {out}\n"
    assert (tmp_path / "results" / "r.csv").read_text().count("\n") == 3
    for folder, inside in [
        ("lake", history_lake / "lake" / "ticks" / "result.parquet"),
        ("lake", history_lake / "lake" / "x.parquet"),  # not a dataset's folder, yet where check and vacuum look
        ("landing", history_lake / "landing" / "r.csv"),
    ]:
        refused = run_cli("--root", str(history_lake), "sql", "SELECT 1", "--output", str(inside))
        assert refused.returncode == 1
        own = history_lake.resolve() / folder
        assert refused.stderr == f"Error: {inside}: inside the lake's own folder {own}; write results elsewhere\n"
        assert not inside.exists()
