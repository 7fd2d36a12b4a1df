"""`ticklake serve` as users run it: a real process, ADBC for queries and QuestDB's official client for ticks,
SIGTERM and kill -9, and every tick acknowledged reconciled with the lake."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from questdb import QuestDBError, Sender, TimestampNanos

import ticklake
from bench.serve import Serving, adbc_connect, serving
from ticklake.build.compaction import compact_all
from ticklake.config import LakeConfig
from ticklake.landing.quarantine import read_quarantine

BASE_NS = 1_641_531_600_000_000_000  # 2022-01-07 05:00 UTC


def send(serve: Serving, first: int, count: int, token: str | None = None) -> None:
    """Ticks numbered first..first+count-1 (the number in `size`), one flush: acknowledged once durable."""
    conf = f"http::addr={serve.http.split('://', 1)[1]};token={token or serve.write_token};retry_timeout=0;"
    with Sender.from_conf(conf) as sender:
        for n in range(first, first + count):
            sender.row(
                "ticks",
                symbols={"tick_type": "last", "symbol": f"S{n % 7}", "exchange": "ARCA", "contract_id": str(100 + n % 7)},
                columns={"price": 10.0 + n / 1000, "size": float(n), "conditions": "ODD_LOT,ISO" if n % 3 == 0 else None},
                at=TimestampNanos(BASE_NS + n * 1_000_000),
            )
        sender.flush()


def stored(root: Path) -> list[int]:
    compact_all(LakeConfig(root=root))
    with ticklake.connect(root) as lake:
        return [int(r[0]) for r in lake.execute("SELECT size FROM ticks ORDER BY size").fetchall()]


def test_serve_end_to_end_queries_equal_the_cli_and_sigterm_keeps_every_acknowledged_tick(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    with serving(root, log=tmp_path / "serve.log") as serve:
        send(serve, 0, 2_000)
        send(serve, 2_000, 1_000)
        with adbc_connect(serve) as conn, conn.cursor() as cur:  # fresh: seconds after they land, before compaction
            cur.execute("SELECT count(*), count(DISTINCT size) FROM ticks")
            assert cur.fetchall() == [(3_000, 3_000)]
        serve.process.send_signal(signal.SIGTERM)
        assert serve.process.wait(30) == 0
    assert stored(root) == list(range(3_000))
    query = "SELECT symbol, count(*) AS n, sum(size) AS volume, max(conditions) AS c FROM ticks GROUP BY ALL ORDER BY ALL"
    cli = subprocess.run(
        [sys.executable, "-m", "ticklake.cli", "--root", str(root), "sql", "--format", "json", query],
        capture_output=True,
        text=True,
        check=True,
    )
    expected = [json.loads(line) for line in cli.stdout.splitlines()]
    with serving(root) as serve, adbc_connect(serve) as conn, conn.cursor() as cur:
        cur.execute(query)
        got = cur.fetch_arrow_table().to_pylist()
    assert [{**r, "n": int(r["n"]), "volume": float(r["volume"])} for r in got] == [
        {**r, "n": int(r["n"]), "volume": float(r["volume"])} for r in expected
    ]
    assert "ODD_LOT" in str(got) and len(got) == 7
    log = (tmp_path / "serve.log").read_text()
    assert serve.write_token not in log and serve.read_token not in log


def test_kill_9_between_requests_loses_nothing_acknowledged(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    acknowledged = 0
    for round_ in range(3):
        with serving(root) as serve:
            for _ in range(4):
                send(serve, acknowledged, 500)
                acknowledged += 500
            os.kill(serve.process.pid, signal.SIGKILL)
            serve.process.wait(30)
            with pytest.raises(QuestDBError):  # the server is gone: nothing more is acknowledged
                send(serve, 10_000_000 + round_, 1)
    assert stored(root) == list(range(acknowledged))
    assert read_quarantine(root) == []


def test_tokens_file_and_refusals(tmp_path: Path) -> None:
    token = "file-token-123"
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# role sha256\nwrite {hashlib.sha256(token.encode()).hexdigest()}\n")
    root = tmp_path / "lake"
    with serving(root, "--tokens", str(tokens), log=tmp_path / "serve.log") as serve:
        send(serve, 0, 10, token=token)
        with pytest.raises(QuestDBError, match="401|unauthorized|Unauthorized"):
            send(serve, 10, 10, token=serve.write_token)  # the environment's tokens are not the file's
    assert stored(root) == list(range(10))
    assert token not in (tmp_path / "serve.log").read_text()


def test_serve_without_tokens_or_with_a_bad_address_says_why(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TICKLAKE_SERVE_TOKENS"}
    base = [sys.executable, "-m", "ticklake.cli", "--root", str(tmp_path / "lake"), "serve"]
    none = subprocess.run([*base, "--flight", "127.0.0.1:0", "--http", "127.0.0.1:0"], capture_output=True, text=True, env=env)
    assert none.returncode == 1 and "Error: no tokens: set TICKLAKE_SERVE_TOKENS" in none.stderr
    env["TICKLAKE_SERVE_TOKENS"] = "read:x"
    bad = subprocess.run([*base, "--flight", "31337", "--http", "127.0.0.1:0"], capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "--flight '31337': expected HOST:PORT" in bad.stderr
    half = subprocess.run([*base, "--tls-cert", "c.pem"], capture_output=True, text=True, env=env)
    assert half.returncode == 1 and "--tls-cert and --tls-key go together" in half.stderr


def test_tls_on_both_endpoints(tmp_path: Path) -> None:
    import adbc_driver_flightsql.dbapi as flightsql

    from tests.serve.test_http import self_signed

    cert, key = self_signed(tmp_path)
    root = tmp_path / "lake"
    with serving(root, "--tls-cert", str(cert), "--tls-key", str(key)) as serve:
        assert serve.flight.startswith("grpc+tls://") and serve.http.startswith("https://")
        port = serve.flight.rsplit(":", 1)[1]
        conf = f"https::addr=localhost:{serve.http_port};token={serve.write_token};tls_roots={cert};"
        with Sender.from_conf(conf) as sender:
            sender.row(
                "ticks", symbols={"tick_type": "last", "contract_id": "5"}, columns={"price": 1.5}, at=TimestampNanos(BASE_NS)
            )
        options = {
            "adbc.flight.sql.authorization_header": f"Bearer {serve.read_token}",
            "adbc.flight.sql.client_option.tls_root_certs": cert.read_text(),
        }
        with flightsql.connect(f"grpc+tls://localhost:{port}", db_kwargs=options, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("SELECT contract_id, price FROM ticks")
            assert cur.fetchall() == [(5, 1.5)]
        plain = {"adbc.flight.sql.authorization_header": f"Bearer {serve.read_token}"}
        with pytest.raises(Exception, match="(?i)unavailable|handshake|tls|ssl|certificate"):
            with flightsql.connect(f"grpc://localhost:{port}", db_kwargs=plain, autocommit=True) as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")


def test_sigterm_with_a_client_that_stopped_reading_still_exits_0(tmp_path: Path) -> None:
    from tests.serve.test_flight import STALLER

    root = tmp_path / "lake"
    with serving(root) as serve:
        send(serve, 0, 20_000)
        with subprocess.Popen(
            [sys.executable, "-c", STALLER.replace("ticks, range(20) r", "ticks, range(200) r"), serve.flight.rsplit(":", 1)[1],
             serve.read_token],
            stdout=subprocess.PIPE, text=True,
        ) as staller:  # fmt: skip
            try:
                assert staller.stdout is not None and int(staller.stdout.readline()) > 0
                serve.process.send_signal(signal.SIGTERM)
                assert serve.process.wait(30) == 0
            finally:
                staller.kill()
    assert stored(root) == list(range(20_000))
