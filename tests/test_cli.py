"""The ticklake command as a user runs it: a real process, exit codes, exact one-line errors."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.conftest import jsonl, tick

COMMANDS = ("ingest", "compact", "sql", "has", "status", "demo")


def run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``ticklake ARGS`` in a new process."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ticklake.cli", *args],
        cwd=cwd,
        env=full_env,
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def lake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small compacted lake: two hours, two contracts, all tick types."""
    root = tmp_path_factory.mktemp("cli") / "lake"
    source = root.parent / "ticks.jsonl"
    records = [
        tick("2022-01-07T05:00:00.000001Z", 11, "last", price=10.5, size=100, symbol="AAA", exchange="NYSE"),
        tick("2022-01-07T05:30:00.5Z", 11, "bid_ask", symbol="AAA", exchange="NYSE"),
        tick("2022-01-07T06:15:00+01:00", 22, "mid_point", price=20.25, symbol="BBB", exchange="ARCA"),
        tick(
            "2022-01-07T06:59:59.999999Z", 22, "last", price=20.5, size=3, symbol="BBB", exchange="ARCA", conditions=["ODD_LOT"]
        ),
    ]
    source.write_bytes(jsonl(records))
    assert run("--root", str(root), "ingest", str(source)).returncode == 0
    done = run("--root", str(root), "compact", "--all")
    assert done.returncode == 0, done.stderr
    return root


def test_help_lists_every_command_and_each_has_help() -> None:
    top = run("--help")
    assert top.returncode == 0
    for name in COMMANDS:
        assert name in top.stdout
        sub = run(name, "--help")
        assert sub.returncode == 0, name
        assert "Usage: ticklake " + name in sub.stdout
    assert "--root" in top.stdout


def test_ingest_quarantines_bad_lines_keeps_good_ones_and_exits_1(tmp_path: Path) -> None:
    source = tmp_path / "mixed.jsonl"
    source.write_bytes(
        jsonl(
            [
                tick(),
                '{"timestamp":"2022-01-07T05:00:00Z","contract_id":"x","tick_type":"last","price":1}',
                tick(contract_id=2),
                "{oops",
            ]
        )
    )
    result = run("--root", str(tmp_path / "lake"), "ingest", str(source))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if not line.startswith(str(source) + ":")]
    assert errors == [
        f"quarantined invalid_json: 1 line, first at {source}:4: line is not valid JSON: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        f"quarantined wrong_type (contract_id): 1 line, first at {source}:2: field 'contract_id' must be an integer, got \"x\"",
        f"Error: 2 of 4 lines quarantined in {tmp_path / 'lake' / 'landing' / '_quarantine'}; the valid lines were kept",
    ]
    assert result.stdout.startswith("ingested 4 lines: 2 appended, 2 quarantined")
    records = [json.loads(x) for q in (tmp_path / "lake/landing/_quarantine").glob("*.jsonl") for x in q.read_text().splitlines()]
    assert sorted((r["line"], r["reason"], r["field"]) for r in records) == [
        (2, "wrong_type", "contract_id"),
        (4, "invalid_json", None),
    ]
    assert all(r["source"] == str(source) for r in records)


def test_ingest_reads_stdin_and_twice_the_same_input_appends_nothing(tmp_path: Path) -> None:
    data = jsonl([tick(), tick()])  # two identical ticks: two real ticks
    first = run("--root", str(tmp_path), "ingest", "-", stdin=data)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("ingested 2 lines: 2 appended, 0 quarantined;")
    again = run("--root", str(tmp_path), "ingest", "-", stdin=data)
    assert again.stdout.startswith("ingested 0 new lines (2 before the checkpoint ingested earlier): 0 appended, 0 quarantined")
    assert run("--root", str(tmp_path), "compact", "--all").returncode == 0
    third = run("--root", str(tmp_path), "ingest", "-", stdin=data)
    assert third.stdout.startswith("ingested 0 new lines (2 before the checkpoint ingested earlier): 0 appended")
    count = run("--root", str(tmp_path), "sql", "SELECT count(*) AS n FROM ticks", "--format", "csv")
    assert count.stdout == "n\n2\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compact"], "Error: give either --hour YYYY-MM-DDTHH (one or more) or --all"),
        (["compact", "--hour", "2022-13-01T05"], "Error: hour '2022-13-01T05': month must be in 1..12"),
        (["compact", "--hour", "yesterday"], "Error: hour 'yesterday': expected YYYY-MM-DDTHH, e.g. 2022-01-07T05"),
        (["ingest", "/nonexistent/ticks.jsonl"], "Error: /nonexistent/ticks.jsonl: cannot read: No such file or directory"),
    ],
)
def test_usage_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = run("--root", str(tmp_path), *args)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == message
    assert "Traceback" not in result.stderr


def test_sql_on_a_lake_without_catalog(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()  # a folder with no catalog (no folder at all is "no lake": tests/test_cli_errors.py)
    result = run("--root", str(tmp_path / "empty"), "sql", "SELECT 1")
    assert result.returncode == 1
    assert result.stderr == f"Error: lake {tmp_path / 'empty'}: no catalog.sqlite (nothing compacted yet?)\n"


def test_sql_error_is_one_line_and_verbose_shows_traceback(lake_root: Path) -> None:
    result = run("--root", str(lake_root), "sql", "SELECT nonexistent FROM ticks")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith('Error: Binder Error: Referenced column "nonexistent" not found')
    verbose = run("--root", str(lake_root), "--verbose", "sql", "SELECT nonexistent FROM ticks")
    assert "Traceback" in verbose.stderr and verbose.returncode == 1


def test_sql_csv_has_one_header_and_iso_timestamps(lake_root: Path) -> None:
    result = run(
        "--root",
        str(lake_root),
        "sql",
        "SELECT timestamp, contract_id, tick_type, price, conditions FROM ticks ORDER BY timestamp",
        "--format",
        "csv",
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows == [
        ["timestamp", "contract_id", "tick_type", "price", "conditions"],
        ["2022-01-07T05:00:00.000001+00:00", "11", "last", "10.5", ""],
        ["2022-01-07T05:15:00+00:00", "22", "mid_point", "20.25", ""],
        ["2022-01-07T05:30:00.500000+00:00", "11", "bid_ask", "", ""],
        ["2022-01-07T06:59:59.999999+00:00", "22", "last", "20.5", '["ODD_LOT"]'],
    ]
    assert result.stderr == ""


def test_sql_json_lines(lake_root: Path) -> None:
    result = run(
        "--root",
        str(lake_root),
        "sql",
        "SELECT contract_id, max(timestamp) AS last_seen, list(DISTINCT tick_type ORDER BY tick_type) AS types"
        " FROM ticks GROUP BY 1 ORDER BY 1",
        "--format",
        "json",
    )
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"contract_id": 11, "last_seen": "2022-01-07T05:30:00.500000+00:00", "types": ["bid_ask", "last"]},
        {"contract_id": 22, "last_seen": "2022-01-07T06:59:59.999999+00:00", "types": ["last", "mid_point"]},
    ]


def test_sql_table_and_output_files(lake_root: Path, tmp_path: Path) -> None:
    table = run("--root", str(lake_root), "sql", "SELECT tick_type, count(*) AS n FROM ticks GROUP BY 1 ORDER BY 1")
    assert table.stdout.splitlines()[0].split() == ["tick_type", "|", "n"]
    assert table.stderr.strip() == "(3 rows)"
    out = tmp_path / "out" / "r.parquet"
    result = run("--root", str(lake_root), "sql", "SELECT * FROM ticks WHERE contract_id = 22", "--output", str(out))
    assert result.returncode == 0 and result.stderr.strip() == f"wrote 2 rows to {out}"
    assert pq.read_table(out).num_rows == 2
    out_csv = tmp_path / "r.csv"
    run(
        "--root", str(lake_root), "sql", "SELECT timestamp FROM ticks WHERE contract_id = 11 ORDER BY 1", "--output", str(out_csv)
    )
    assert out_csv.read_text() == "timestamp\n2022-01-07T05:00:00.000001+00:00\n2022-01-07T05:30:00.500000+00:00\n"
    bad = run("--root", str(lake_root), "sql", "SELECT 1", "--output", str(tmp_path / "r.xlsx"))
    assert bad.returncode == 1 and bad.stderr == f"Error: {tmp_path / 'r.xlsx'}: output must end in .parquet or .csv\n"


def test_explain_shows_each_pruning_step(lake_root: Path) -> None:
    result = run(
        "--root", str(lake_root), "sql", "SELECT * FROM ticks WHERE contract_id = 22 AND tick_type = 'last'", "--explain"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    steps = {m.group(1): int(m.group(2)) for m in (re.match(r"^  (\S+(?: \S+)?)\s+(\d+) files", line) for line in lines) if m}
    assert steps["snapshot"] == 4
    assert steps["partitions"] == 2
    assert steps["bloom"] == 1
    assert sum(1 for line in lines if line.strip().endswith(".parquet")) == 1
    assert "DuckDB plan:" in lines


def test_has_answers_from_the_catalog(lake_root: Path) -> None:
    yes = run("--root", str(lake_root), "has", "--contract", "22", "--date", "2022-01-07")
    assert yes.stdout == "yes: contract 22 has 2 ticks on 2022-01-07 in 2 files\n"
    no = run("--root", str(lake_root), "has", "--contract", "22", "--date", "2022-01-08")
    assert no.returncode == 0 and no.stdout == "no: contract 22 has no ticks on 2022-01-08\n"


def test_root_from_option_environment_or_default(tmp_path: Path, lake_root: Path) -> None:
    env: dict[str, Any] = {"TICKLAKE_ROOT": str(lake_root)}
    assert run("status", env=env).stdout.startswith("snapshot 2: 4 files, 4 rows")
    (tmp_path / "other").mkdir()
    assert run("--root", str(tmp_path / "other"), "status", env=env).stdout.startswith("snapshot 0: 0 files")
    (tmp_path / "cwd").mkdir()
    run("ingest", "-", cwd=tmp_path / "cwd", stdin=jsonl([tick()]))
    assert (tmp_path / "cwd" / "lakehouse" / "landing" / "ticks" / "date=2022-01-07" / "hour=05").is_dir()


def test_demo_runs_end_to_end_and_keeps_unrelated_files(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    # --force: the root holds a file the demo did not make (tests/demo/test_demo_safety.py); it stays.
    result = run("--root", str(root), "demo", "--ticks", "20000", "--contracts", "40", "--force")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "reconciled: 29,503 lines in = 29,500 stored + 3 quarantined" in out
    assert "ticklake has --contract 12087792 --date 2020-01-01: yes, 9,500 ticks in 7 files" in out
    assert "ticklake has --contract 12087792 --date 2022-01-07: no" in out
    assert re.search(r"rolled up \d+ hours into [\d,]+ 1-minute bars \(dataset bars_1m\)", out)
    assert out.count("(read ") >= 7  # every example query reports the files it read
    assert (root / "notes.txt").read_text() == "mine"
    again = run("--root", str(root), "demo", "--ticks", "20000", "--contracts", "40")
    assert "reconciled: 29,503 lines in" in again.stdout  # starts afresh: nothing counted twice
    count = run("--root", str(root), "sql", "SELECT count(*) AS n FROM ticks", "--format", "csv")
    assert count.stdout == "n\n29500\n"


def test_sql_stays_lean_no_pandas_pyarrow_numpy_or_dagster_imported(lake_root: Path) -> None:
    probe = (
        "import sys\n"
        "from ticklake.cli import main\n"
        f"sys.argv = ['ticklake', '--root', {str(lake_root)!r}, 'sql', "
        "\"SELECT count(*) FROM ticks WHERE contract_id = 22 AND timestamp >= '2022-01-07 06:00'\", '--format', 'csv']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('pandas', 'dagster', 'pyarrow', 'numpy') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.splitlines() == ["count_star()", "1", "[]"], result.stderr
