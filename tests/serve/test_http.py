"""The HTTP ingest endpoint, served for real on a free port: QuestDB's own client, bad lines, retries,
auth, limits, broken clients, concurrency and shutdown. Nothing is mocked; files are real."""

from __future__ import annotations

import datetime
import gzip
import http.client
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from questdb import Sender, TimestampNanos

import ticklake
from ticklake.build.compaction import compact_all
from ticklake.config import LakeConfig
from ticklake.landing.buffer import sealed_segments
from ticklake.landing.quarantine import read_quarantine
from ticklake.serve.http import SETTINGS, HttpServer
from ticklake.serve.lineprotocol import format_line
from ticklake.storage.layout import landing_dir

from .conftest import READ_TOKEN, SYNTAX, TOKENS, WRITE_TOKEN, request

BASE_NS = 1641531600_000000000  # 2022-01-07T05:00:00Z


def body_of(sizes: range, *, contract_id: int = 7, step_ns: int = 1_000_001) -> bytes:
    """Line protocol for one tick per size (a unique sequence number, so doubles and losses show)."""
    lines = []
    for n in sizes:
        lines.append(
            f"ticks,tick_type=last,symbol=ES contract_id={contract_id}i,price={100 + n / 4},size={n}i {BASE_NS + n * step_ns}"
        )
    return ("\n".join(lines) + "\n").encode()


def landed(root: Path) -> list[dict[str, object]]:
    """Every tick in the landing buffer's sealed segments."""
    return [json.loads(line) for s in sealed_segments(root) for line in s.path.read_text().splitlines()]


def landed_sizes(root: Path) -> list[int]:
    """The `size` of every tick in the landing buffer (the sequence numbers of the tests), sorted."""
    return sorted(int(float(str(t["size"]))) for t in landed(root))


def stray_temp_files(root: Path) -> list[Path]:
    return [p for p in (root / "landing").rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


def test_questdb_client_ticks_are_stored_exactly_once_and_round_trip(http_server: HttpServer, lake_config: LakeConfig) -> None:
    count = 3000
    step = 2_400_000_007  # 3,000 ticks over two hours, nanoseconds that do not land on microseconds
    with Sender.from_conf(f"http::addr=127.0.0.1:{http_server.port};token={WRITE_TOKEN};") as sender:
        for n in range(count):
            sender.row(
                "ticks",
                symbols={"tick_type": "last", "symbol": f"S {n % 3},x"},
                columns={"contract_id": 1 + n % 5, "price": 100 + n / 8, "size": float(n), "conditions": "@,T"},
                at=TimestampNanos(BASE_NS + n * step),
            )
            if n % 500 == 499:
                sender.flush()
    compact_all(lake_config)
    with ticklake.connect(lake_config.root) as lake:
        totals = lake.sql("SELECT count(*), count(DISTINCT size) FROM ticks").fetchone()
        rows = lake.sql(
            "SELECT size, price, symbol, conditions, contract_id, epoch_us(timestamp) FROM ticks ORDER BY size"
        ).fetchall()
    assert totals == (count, count)
    assert rows == [
        (float(n), 100 + n / 8, f"S {n % 3},x", ["@", "T"], 1 + n % 5, (BASE_NS + n * step) // 1000) for n in range(count)
    ]


def test_the_client_is_told_version_1_and_sends_text_doubles(http_server: HttpServer, lake_root: Path) -> None:
    answer = request(http_server.port, "GET", "/settings", headers={"Authorization": ""})
    assert answer.status == 200 and answer.json == SETTINGS
    assert answer.json["config"]["line.proto.support.versions"] == [1]
    with Sender.from_conf(f"http::addr=127.0.0.1:{http_server.port};token={WRITE_TOKEN};protocol_version=auto;") as sender:
        sender.row("last", columns={"contract_id": 3, "price": 0.1}, at=TimestampNanos(BASE_NS))
    [segment] = sealed_segments(lake_root)
    assert json.loads(segment.path.read_text()) == {
        "tick_type": "last",
        "contract_id": 3,
        "price": 0.1,
        "timestamp": "2022-01-07T05:00:00.000000Z",
    }


def test_bad_lines_are_a_400_naming_line_and_field_and_the_good_ones_are_kept(http_server: HttpServer, lake_root: Path) -> None:
    good = body_of(range(3)).decode().splitlines()
    body = "\n".join(
        [
            "# a comment line, not counted",
            good[0],
            f"last contract_id=7i,price=abc {BASE_NS}",  # line 3: not line protocol
            "",
            good[1],
            f'mid_point contract_id=7i,price="x" {BASE_NS}',  # line 6: valid line protocol, not a valid tick
            good[2],
        ]
    ).encode()
    answer = request(http_server.port, "POST", "/write", body)
    assert answer.status == 400
    assert answer.json["code"] == "invalid" and answer.json["line"] == 3 and answer.json["errorId"]
    assert answer.json["message"].startswith("line 3, field 'price': line protocol: column ")
    assert answer.json["message"].endswith(f"({SYNTAX}); 3 lines kept, 2 quarantined")
    assert landed_sizes(lake_root) == [0, 1, 2]
    quarantined = read_quarantine(lake_root)
    assert [(q["line"], q["reason"], q["field"]) for q in quarantined] == [(3, SYNTAX, "price"), (6, "wrong_type", "price")]
    assert quarantined[1]["raw"] == f'mid_point contract_id=7i,price="x" {BASE_NS}'  # the line as sent, not its JSON
    assert len(landed(lake_root)) + len(quarantined) == 5  # lines in, comment and blank line aside


@pytest.mark.parametrize("retention_hours", [168.0, 0.0], ids=["retained", "purged-catalog-knows"])
def test_a_retried_body_is_stored_once_also_after_compaction(lake_config: LakeConfig, retention_hours: float) -> None:
    config = replace(lake_config, segment_retention_hours=retention_hours)
    body = body_of(range(100), step_ns=60 * 10**9)  # 100 minutes: two hours, two segments
    with HttpServer(config, TOKENS) as server:
        assert request(server.port, "POST", "/write", body).status == 204
        assert request(server.port, "POST", "/write", body).status == 204  # the client did not see the first answer
        assert len(landed(config.root)) == 100 and len(sealed_segments(config.root)) == 2
        compact_all(config)
        assert request(server.port, "POST", "/write", body).status == 204
        assert sealed_segments(config.root) == []
        compact_all(config)
    with ticklake.connect(config.root) as lake:
        assert lake.sql("SELECT count(*), count(DISTINCT size) FROM ticks").fetchone() == (100, 100)


def test_auth_refusals_are_logged_without_the_token(
    http_server: HttpServer, lake_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    body = body_of(range(2))
    port = http_server.port
    with caplog.at_level(logging.DEBUG, "ticklake"):
        none = request(port, "POST", "/write", body, headers={"Authorization": ""})
        wrong = request(port, "POST", "/write", body, headers={"Authorization": "Bearer not-a-token"})
        read = request(port, "POST", "/api/v2/write", body, headers={"Authorization": f"Bearer {READ_TOKEN}"})
        ingest = request(port, "POST", "/ingest", b"{}", headers={"Authorization": f"Token {READ_TOKEN}"})
        assert landed(lake_root) == []
        ok = request(port, "POST", "/write", body, headers={"Authorization": f"Token {WRITE_TOKEN}"})
    assert (none.status, none.json["code"]) == (401, "unauthorized")
    assert (wrong.status, wrong.json["code"]) == (401, "unauthorized")
    assert (read.status, read.json["code"]) == (403, "forbidden")
    assert (ingest.status, ingest.json["code"]) == (403, "forbidden")
    assert ok.status == 204 and len(landed(lake_root)) == 2
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]
    assert len(refusals) == 4
    assert refusals[0].startswith("refused POST /write from 127.0.0.1:") and refusals[0].endswith(": no token")
    assert "POST /api/v2/write from 127.0.0.1:" in refusals[2] and refusals[2].endswith("a read token may not write")
    assert WRITE_TOKEN not in caplog.text and READ_TOKEN not in caplog.text and "not-a-token" not in caplog.text


def test_limits_and_broken_bodies_store_nothing(lake_config: LakeConfig, caplog: pytest.LogCaptureFixture) -> None:
    with HttpServer(lake_config, TOKENS, body_bytes=4096) as server:
        port = server.port
        big = body_of(range(100))
        assert len(big) > 4096
        too_large = request(port, "POST", "/write", big)
        assert (too_large.status, too_large.json["code"]) == (413, "too_large")
        bomb = gzip.compress(big)
        assert len(bomb) < 4096
        assert request(port, "POST", "/write", bomb, headers={"Content-Encoding": "gzip"}).status == 413
        truncated = gzip.compress(body_of(range(5)))[:-10]
        assert request(port, "POST", "/write", truncated, headers={"Content-Encoding": "gzip"}).status == 400
        assert request(port, "POST", "/write", b"x", headers={"Content-Encoding": "br"}).status == 415
        assert request(port, "POST", "/write?precision=fortnight", body_of(range(1))).status == 400
        with caplog.at_level(logging.WARNING, "ticklake"):
            with socket.create_connection(("127.0.0.1", port)) as half:  # sends half of what it announced, then goes
                head = f"POST /write HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {WRITE_TOKEN}\r\nContent-Length: 2000\r\n\r\n"
                half.sendall(head.encode() + body_of(range(30))[:1000])
            deadline = time.monotonic() + 10
            while "body ended after 1000 of 2000 bytes" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.01)
        assert "body ended after 1000 of 2000 bytes; nothing stored" in caplog.text
        assert landed(lake_config.root) == [] and read_quarantine(lake_config.root) == []
        small = body_of(range(5))
        assert request(port, "POST", "/write", gzip.compress(small), headers={"Content-Encoding": "gzip"}).status == 204
    assert landed_sizes(lake_config.root) == [0, 1, 2, 3, 4]


def test_ping_settings_unknown_paths_and_methods(http_server: HttpServer) -> None:
    port = http_server.port
    for method in ("GET", "HEAD"):
        ping = request(port, method, "/ping", headers={"Authorization": ""})
        assert (ping.status, ping.headers["x-influxdb-version"], ping.body) == (204, "ticklake", b"")
    missing = request(port, "GET", "/nowhere")
    assert (missing.status, missing.json["code"]) == (404, "not_found")
    wrong = request(port, "GET", "/write")
    assert (wrong.status, wrong.json["code"], wrong.headers["allow"]) == (405, "method_not_allowed", "POST")
    assert request(port, "POST", "/ping", b"x").status == 405
    assert request(port, "DELETE", "/settings").status == 405


def test_v2_path_precision_and_chunked_bodies(http_server: HttpServer, lake_root: Path) -> None:
    line = format_line({"timestamp": "2022-01-07T05:00:01Z", "tick_type": "last", "contract_id": 1, "price": 1.0})
    ms = line.rsplit(" ", 1)[0] + f" {(BASE_NS + 1_000_000_000) // 10**6 + 1}"
    assert request(http_server.port, "POST", "/api/v2/write?org=o&bucket=b&precision=ms", ms.encode()).status == 204
    connection = http.client.HTTPConnection("127.0.0.1", http_server.port, timeout=30)
    try:
        chunks = iter([b"last contract_id=2i,price=2 16415", b"31602\n", b"last contract_id=3i,price=3 1641531603\n"])
        connection.request("POST", "/write?precision=s", chunks, {"Authorization": f"Bearer {WRITE_TOKEN}"}, encode_chunked=True)
        assert connection.getresponse().status == 204
    finally:
        connection.close()
    stamps = sorted((t["contract_id"], t["timestamp"]) for t in landed(lake_root))
    assert stamps == [
        (1, "2022-01-07T05:00:01.001000Z"),
        (2, "2022-01-07T05:00:02.000000Z"),
        (3, "2022-01-07T05:00:03.000000Z"),
    ]


def test_ingest_takes_landing_jsonl_with_the_same_rules(http_server: HttpServer, lake_root: Path) -> None:
    good = '{"timestamp":"2022-01-07T05:00:00.000001Z","contract_id":1,"tick_type":"last","price":1.5,"size":1,"venue":"X"}'
    body = f'{good}\n{{"timestamp":"2022-01-07T05:00:00Z","contract_id":"one","tick_type":"last","price":1}}\n\n{good}\n'
    answer = request(http_server.port, "POST", "/ingest", body.encode())
    assert answer.status == 400 and answer.json["line"] == 2
    assert answer.json["message"].startswith("line 2, field 'contract_id': field 'contract_id' must be an integer")
    assert answer.json["message"].endswith("2 lines kept, 1 quarantined")
    assert [line for s in sealed_segments(lake_root) for line in s.path.read_text().splitlines()] == [good, good]
    assert [(q["line"], q["reason"]) for q in read_quarantine(lake_root)] == [(2, "wrong_type")]


def test_four_clients_at_once_give_exact_counts(http_server: HttpServer, lake_root: Path) -> None:
    shared = body_of(range(10_000, 10_050))  # sent by every client: one delivery
    failures: list[int] = []

    def client(k: int) -> None:
        for b in range(5):
            start = 1000 * k + 100 * b
            for body in (body_of(range(start, start + 100)), shared):
                status = request(http_server.port, "POST", "/write", body).status
                if status != 204:
                    failures.append(status)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    sizes = landed_sizes(lake_root)
    assert sizes == sorted([1000 * k + n for k in range(4) for n in range(500)] + list(range(10_000, 10_050)))


def test_a_failed_write_leaves_nothing_half_written_and_a_retry_succeeds(http_server: HttpServer, lake_root: Path) -> None:
    hour_folder = landing_dir(lake_root) / "date=2022-01-07" / "hour=05"
    hour_folder.parent.mkdir(parents=True)
    hour_folder.write_text("a file where the hour's folder belongs")
    body = body_of(range(10))
    failed = request(http_server.port, "POST", "/write", body)
    assert (failed.status, failed.json["code"]) == (500, "internal_error")
    assert "\n" not in failed.json["message"] and "send it again later" in failed.json["message"]
    assert stray_temp_files(lake_root) == []
    hour_folder.unlink()
    assert request(http_server.port, "POST", "/write", body).status == 204
    assert landed_sizes(lake_root) == list(range(10))


@pytest.fixture
def half_sent(http_server: HttpServer) -> Iterator[tuple[socket.socket, bytes]]:
    """A connection that has sent the headers and half the body of a write, and the rest to send."""
    body = body_of(range(20))
    head = f"POST /write HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {WRITE_TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", http_server.port), timeout=30) as sock:
        sock.sendall(head.encode() + body[: len(body) // 2])
        yield sock, body[len(body) // 2 :]


def test_shutdown_waits_for_the_request_in_flight_and_closes_idle_connections(
    http_server: HttpServer, half_sent: tuple[socket.socket, bytes], lake_root: Path
) -> None:
    idle = http.client.HTTPConnection("127.0.0.1", http_server.port, timeout=30)
    idle.request("GET", "/ping")
    assert idle.getresponse().status == 204  # and the connection stays open, kept alive
    time.sleep(0.1)
    stopper = threading.Thread(target=http_server.shutdown)
    stopper.start()
    time.sleep(0.3)
    assert stopper.is_alive()  # waiting for the half-sent request
    sock, rest = half_sent
    sock.sendall(rest)
    assert sock.recv(4096).startswith(b"HTTP/1.1 204 ")
    stopper.join(10)
    assert not stopper.is_alive()
    idle.close()
    assert len(landed(lake_root)) == 20  # acknowledged, so on disk
    http_server.shutdown()  # again: nothing to do
    with pytest.raises(OSError):
        request(http_server.port, "GET", "/ping")


def test_expect_100_continue_is_refused_or_granted_before_the_body(http_server: HttpServer, lake_root: Path) -> None:
    body = body_of(range(3))

    def head(token: str) -> bytes:
        lines = ["POST /write HTTP/1.1", "Host: x", f"Authorization: Bearer {token}", f"Content-Length: {len(body)}"]
        return ("\r\n".join([*lines, "Expect: 100-continue", "", ""])).encode()

    with socket.create_connection(("127.0.0.1", http_server.port), timeout=30) as refused:
        refused.sendall(head("wrong"))
        assert refused.recv(4096).startswith(b"HTTP/1.1 401 ")  # before any of the body was sent
    with socket.create_connection(("127.0.0.1", http_server.port), timeout=30) as granted:
        granted.sendall(head(WRITE_TOKEN))
        assert granted.recv(4096).startswith(b"HTTP/1.1 100 Continue")
        granted.sendall(body)
        assert granted.recv(4096).startswith(b"HTTP/1.1 204 ")
    assert len(landed(lake_root)) == 3


def test_tls(lake_config: LakeConfig, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with HttpServer(lake_config, TOKENS, ssl_context=context) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as plain:  # no handshake: dropped
            plain.sendall(b"GET /ping HTTP/1.1\r\n\r\n")
            try:
                answer = plain.recv(4096)
            except ConnectionResetError:
                answer = b""
            assert not answer.startswith(b"HTTP")  # a TLS alert, or nothing
        with Sender.from_conf(f"https::addr=localhost:{server.port};token={WRITE_TOKEN};tls_roots={cert};") as sender:
            for n in range(4):
                sender.row("last", columns={"contract_id": 1, "price": 1.0, "size": float(n)}, at=TimestampNanos(BASE_NS + n))
    assert len(landed(lake_config.root)) == 4


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class LosingProxy:
    """A proxy in front of the server that forwards the first write but never passes its answer on
    (the client times out and drops the connection): the client must retry a request the server has
    already made durable. QuestDB's client retries timeouts and 5xx answers, not a dropped connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.writes = 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.relay, args=(client,), daemon=True).start()

    def relay(self, client: socket.socket) -> None:
        with client, client.makefile("rb") as incoming:
            while request_line := incoming.readline():
                method, path, _ = request_line.decode().split(" ", 2)
                headers = {}
                while (line := incoming.readline().decode()) not in ("\r\n", ""):
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = incoming.read(int(headers.get("content-length", "0")))
                answer = request(self.port, method, path, body, headers={"Authorization": headers.get("authorization", "")})
                if method == "POST":
                    self.writes += 1
                    if self.writes == 1:
                        time.sleep(1.0)  # past the client's request_timeout
                        return
                kept = [f"{k}: {v}" for k, v in answer.headers.items() if k == "content-type"]
                head = "\r\n".join([f"HTTP/1.1 {answer.status} X", f"Content-Length: {len(answer.body)}", *kept, "", ""])
                client.sendall(head.encode() + answer.body)


def test_the_questdb_client_retrying_a_lost_answer_stores_once(http_server: HttpServer, lake_config: LakeConfig) -> None:
    proxy = LosingProxy(http_server.port)
    try:
        address = f"127.0.0.1:{proxy.listener.getsockname()[1]}"
        conf = f"http::addr={address};token={WRITE_TOKEN};request_timeout=300;request_min_throughput=0;"
        with Sender.from_conf(conf) as sender:
            for n in range(200):
                sender.row("last", columns={"contract_id": 1, "price": 1.0, "size": float(n)}, at=TimestampNanos(BASE_NS + n))
            sender.flush()
    finally:
        proxy.listener.close()
    assert proxy.writes >= 2  # the request and the client's retries of it (more when one arrives while the first is stored)
    assert landed_sizes(lake_config.root) == list(range(200))


def test_connections_past_the_bound_get_503_and_the_next_one_is_served(lake_config: LakeConfig) -> None:
    with HttpServer(lake_config, TOKENS, connections=1) as server:
        first = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        first.request("GET", "/ping")
        assert first.getresponse().read() == b""  # keep-alive: the one connection stays in use
        refused = request(server.port, "GET", "/ping")
        assert refused.status == 503 and refused.json["code"] == "unavailable"
        first.close()
        deadline = time.monotonic() + 10
        while (answer := request(server.port, "GET", "/ping")).status == 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert answer.status == 204


def _raw_request(port: int, data: bytes, *, then_wait: float = 5.0) -> bytes:
    """Send raw bytes on a new connection and return what the server answers (until it closes or `then_wait`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=then_wait) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


def test_malformed_framing_is_refused_at_once(http_server: HttpServer) -> None:
    head = f"POST /write HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {WRITE_TOKEN}\r\n".encode()
    negative = _raw_request(http_server.port, head + b"Transfer-Encoding: chunked\r\n\r\n-1\r\n" + b"x" * 100_000)
    assert negative.startswith(b"HTTP/1.1 400") and b"chunk size is not hexadecimal" in negative
    odd_digit = _raw_request(http_server.port, head + "Content-Length: ²\r\n\r\n".encode("latin-1"))
    assert odd_digit.startswith(b"HTTP/1.1 400") and b"Content-Length is not a number" in odd_digit
    empty = request(http_server.port, "POST", "/write", b"")
    assert empty.status == 204
    bom = request(
        http_server.port, "POST", "/write", b"\xef\xbb\xbfticks,tick_type=last,contract_id=1 price=1 1641531600000000000\n"
    )
    assert bom.status == 204


def test_a_request_trickling_in_is_closed_at_its_deadline_and_does_not_hold_a_stop(
    lake_config: LakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ticklake.serve.http as served

    monkeypatch.setattr(served, "HEADER_SECONDS", 1.0)
    monkeypatch.setattr(served, "STOP_SECONDS", 1.0)
    with HttpServer(lake_config, TOKENS, connections=2) as server:
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        slow.sendall(b"POST /write HTTP/1.1\r\nHost: x\r\n")  # then a header byte now and then
        began = time.monotonic()
        closed = False
        while time.monotonic() - began < 8 and not closed:
            try:
                slow.sendall(b"X")
                time.sleep(0.3)
            except OSError:
                closed = True
        assert closed and time.monotonic() - began < 5  # closed at its header deadline, not at 60 s idle
        slow.close()
        assert request(server.port, "GET", "/ping").status == 204
        stalled = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        stalled.sendall(f"POST /write HTTP/1.1\r\nAuthorization: Bearer {WRITE_TOKEN}\r\nContent-Length: 100\r\n\r\nab".encode())
        time.sleep(0.3)
        stopped = time.monotonic()
    assert time.monotonic() - stopped < 5  # the stop gave the stalled body STOP_SECONDS, then closed it
    stalled.close()
    assert sealed_segments(lake_config.root) == []
