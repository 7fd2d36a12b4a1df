"""The HTTP ingest endpoint of ``ticklake serve``: InfluxDB/QuestDB line protocol and the landing JSONL.

``POST /write`` and ``POST /api/v2/write`` (``?precision=n|u|ms|s|m|h``, or v2's ``ns|us``; v2's
org and bucket are ignored) take line protocol; ``POST /ingest`` takes landing JSONL. Both need a
write token (``Authorization: Bearer T`` or InfluxDB's ``Token T``). A request is answered only
once its ticks and rejects are durable (`ticklake.serve.ingest`): 204 when every line was good,
400 with QuestDB's error shape naming the first bad line when some were not (the good ones are
kept). ``GET /ping`` answers 204 and ``GET /settings`` advertises line protocol version 1 only,
so QuestDB's clients send doubles as text; neither needs a token, as with InfluxDB and QuestDB.

Each connection is served on its own thread; `HttpServer.shutdown` stops accepting, lets the
requests in flight finish (what was acknowledged is durable) and closes idle keep-alive connections.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ticklake.config import LakeConfig
from ticklake.errors import SchemaError, StorageError, TicklakeError
from ticklake.serve.body import BodyEnded, Refusal, decoded, drain, is_number, read_body
from ticklake.serve.ingest import JSONL, LINE_PROTOCOL, ingest_body, is_disk_full
from ticklake.serve.tokens import WRITE, Tokens

log = logging.getLogger("ticklake.serve")

# What QuestDB's clients read from /settings (questdb 6 reads `config`; earlier clients read the
# top level): version 1 only, so doubles arrive as text, the only form this parser reads.
SETTINGS: dict[str, Any] = {
    "config": {"line.proto.support.versions": [1], "cairo.max.file.name.length": 127, "ilp.proto.transports": ["http"]},
    "line.proto.support.versions": [1],
    "line.proto.default.version": 1,
    "preferences.version": 0,
    "preferences": {},
}
WRITE_PATHS = {"/write": LINE_PROTOCOL, "/api/v2/write": LINE_PROTOCOL, "/ingest": JSONL}
_ALLOWED = {"/ping": ("GET", "HEAD"), "/settings": ("GET",), **{p: ("POST",) for p in WRITE_PATHS}}
IDLE_SECONDS = 60.0  # a connection silent this long (idle, or stalled mid-body) is closed
HEADER_SECONDS = 10.0  # a request's headers must all arrive this soon after its request line
BODY_SECONDS = 30.0  # and its body this soon after them, plus a second per BODY_RATE bytes
BODY_RATE = 1 << 20
STOP_SECONDS = 10.0  # at shutdown, requests still arriving get this long before their connections close


class HttpServer:
    """The ingest endpoint on `host`:`port` (0: a free port), serving in a background thread."""

    def __init__(
        self,
        config: LakeConfig,
        tokens: Tokens,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        body_bytes: int = 64 * 2**20,
        connections: int = 64,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.tokens = tokens
        self.body_bytes = body_bytes
        self.connections = connections
        self.ssl_context = ssl_context
        self._server = _Server((host, port), _Handler)
        self._server.app = self
        self._thread: threading.Thread | None = None
        self._watch = threading.Event()
        self._stopped = False
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        """The port the server is bound to."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), name="ticklake-http", daemon=True)
        self._thread.start()
        threading.Thread(target=self._server.watch, args=(self._watch,), name="ticklake-http-watch", daemon=True).start()
        log.info("HTTP ingest on %s:%d%s", self._server.server_address[0], self.port, " (TLS)" if self.ssl_context else "")

    def shutdown(self) -> None:
        """Stop accepting, wait for the requests in flight (so all that was acknowledged is durable),
        close idle connections. Calling it again does nothing."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.stop_connections()
        self._server.hurry(STOP_SECONDS)  # a request still trickling in does not hold the stop
        self._server.server_close()  # joins every connection's thread
        self._watch.set()
        log.info("HTTP ingest on port %d stopped", self.port)

    def __enter__(self) -> HttpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


class _Server(ThreadingHTTPServer):
    """Connection threads that shutdown joins, and which connections are between requests."""

    daemon_threads = False
    block_on_close = True
    app: HttpServer

    def __init__(self, address: tuple[str, int], handler: type[_Handler]) -> None:
        super().__init__(address, handler)
        self.mutex = threading.Lock()
        self.stopping = False
        self.idle: set[socket.socket] = set()
        self.open = 0  # connections being served
        # Connections still receiving a request, by when it must have arrived: a client trickling bytes
        # (slowloris) never trips a per-read timeout, so the watchdog closes it at its deadline.
        self.deadlines: dict[socket.socket, float] = {}

    def expect(self, connection: socket.socket, seconds: float | None) -> None:
        """The current request on `connection` must have arrived within `seconds` (None: it has)."""
        with self.mutex:
            if seconds is None:
                self.deadlines.pop(connection, None)
            else:
                self.deadlines[connection] = time.monotonic() + seconds

    def watch(self, stop: threading.Event) -> None:
        """Close the connections past their deadline, twice a second, until `stop` is set."""
        while not stop.wait(0.5):
            now = time.monotonic()
            with self.mutex:
                late = [c for c, t in self.deadlines.items() if t < now]
                for c in late:
                    del self.deadlines[c]
            for connection in late:
                log.warning("HTTP: closed a connection whose request did not arrive in time")
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def hurry(self, seconds: float) -> None:
        """Requests still arriving must be complete within `seconds` (at shutdown)."""
        with self.mutex:
            limit = time.monotonic() + seconds
            for connection, t in self.deadlines.items():
                self.deadlines[connection] = min(t, limit)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve a connection on its own thread; past the bound, answer 503 at once (clients retry) and close it."""
        with self.mutex:
            full = self.open >= self.app.connections
            self.open += 0 if full else 1
        if not full:
            super().process_request(request, client_address)
            return
        log.warning("HTTP: refused a connection from %s: all %d connections in use", _peer(client_address), self.app.connections)
        body = b'{"code":"unavailable","message":"ticklake serve: too many connections (serve_connections); try again"}'
        head = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
        try:
            if self.app.ssl_context is None:  # over TLS the refusal is the closed connection
                request.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        except OSError:
            pass  # gone already
        self.shutdown_request(request)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.mutex:
                self.open -= 1

    def stop_connections(self) -> None:
        """From now on no new request is taken; wake the connections waiting for one."""
        with self.mutex:
            self.stopping = True
            idle = list(self.idle)
        for sock in idle:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed meanwhile

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s failed", _peer(client_address), exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the line-protocol clients expect
    server_version = "ticklake"
    timeout = IDLE_SECONDS
    server: _Server
    _body_pending = False

    def setup(self) -> None:
        context = self.server.app.ssl_context
        if context is not None:
            self.request.settimeout(self.timeout)
            self.request = context.wrap_socket(self.request, server_side=True)  # handshake on this thread
        super().setup()
        with self.server.mutex:
            self.server.idle.add(self.connection)

    def finish(self) -> None:
        with self.server.mutex:
            self.server.idle.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass  # the peer went away first
        finally:
            if self.server.app.ssl_context is not None:
                self.request.close()  # the server closes the plain socket it accepted, not its TLS wrapper

    def parse_request(self) -> bool:
        # A request line has arrived: from here on shutdown waits for the answer, unless it began first.
        with self.server.mutex:
            if self.server.stopping:
                self.close_connection = True
                return False
            self.server.idle.discard(self.connection)
        self._body_pending = True  # until read, or dropped before answering
        self.server.expect(self.connection, HEADER_SECONDS)
        return super().parse_request()

    def handle_one_request(self) -> None:
        self.server.expect(self.connection, IDLE_SECONDS)  # the request line, however slowly it trickles
        try:
            super().handle_one_request()
        finally:
            self.server.expect(self.connection, None)
            with self.server.mutex:
                if self.server.stopping:
                    self.close_connection = True
                else:
                    self.server.idle.add(self.connection)

    def handle_expect_100(self) -> bool:
        """Refuse before the body is sent when the headers already decide (curl sends large bodies so)."""
        try:
            self._admit()
        except Refusal as e:
            self._body_pending = False  # the client waits for a go-ahead that will not come
            e.close = True
            self._send_refusal(e)
            return False
        return super().handle_expect_100()

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

    def _dispatch(self) -> None:
        length = self.headers.get("Content-Length", "")
        size = int(length) if is_number(length) else self.server.app.body_bytes
        self.server.expect(self.connection, BODY_SECONDS + min(size, self.server.app.body_bytes) / BODY_RATE)
        try:
            self._admit()
            path = urlsplit(self.path).path
            if path == "/ping":
                self._send(204, headers={"X-Influxdb-Version": "ticklake"})
            elif path == "/settings":
                self._send(200, json.dumps(SETTINGS).encode())
            else:
                self._write(WRITE_PATHS[path])
        except Refusal as e:
            self._answer_refusal(e)
        except Exception:
            log.exception("%s %s from %s failed", self.command, urlsplit(self.path).path, _peer(self.client_address))
            self._answer_refusal(Refusal(500, "internal_error", "the server failed on this request", close=True))

    def _answer_refusal(self, refusal: Refusal) -> None:
        try:
            self._send_refusal(refusal)
        except OSError:
            self.close_connection = True  # the client is gone: nobody to tell

    def _admit(self) -> None:
        """Refuse a request its line and headers rule out: no such path or method, no write token, too large."""
        path = urlsplit(self.path).path
        allowed = _ALLOWED.get(path)
        if allowed is None:
            raise Refusal(404, "not_found", f"no such endpoint: {path[:80]}")
        if self.command not in allowed:
            raise Refusal(405, "method_not_allowed", f"{path} accepts {', '.join(allowed)}")
        if path not in WRITE_PATHS:
            return
        role = self.server.app.tokens.role_of(self.headers.get("Authorization"))
        if role is None:
            self._log_refusal(path, "no token or an unknown one" if self.headers.get("Authorization") else "no token")
            raise Refusal(401, "unauthorized", "a write token is needed: Authorization: Bearer TOKEN (or Token TOKEN)")
        if not Tokens.may(role, WRITE):
            self._log_refusal(path, f"a {role} token may not write")
            raise Refusal(403, "forbidden", f"this token's role ({role}) may not write")
        length = self.headers.get("Content-Length")
        if length is not None and is_number(length) and int(length) > self.server.app.body_bytes:
            raise Refusal(413, "too_large", f"body of {int(length):,} bytes exceeds the limit of {self.server.app.body_bytes:,}")

    def _write(self, fmt: str) -> None:
        started = time.time_ns()
        precision = _query(self.path, "precision", "n")
        source = f"{self.command} {urlsplit(self.path).path} from {_peer(self.client_address)}"
        limit = self.server.app.body_bytes
        self._body_pending = False
        try:
            body = decoded(read_body(self.rfile, self.headers, limit), self.headers.get("Content-Encoding", ""), limit)
        except BodyEnded as e:
            log.warning("%s: body ended after %d of %d bytes; nothing stored", source, e.got, e.wanted)
            raise
        self.server.expect(self.connection, None)  # it has arrived: storing it has no deadline
        try:
            outcome = ingest_body(self.server.app.config, body, fmt=fmt, precision=precision, source=source, received_ns=started)
        except SchemaError as e:
            raise Refusal(400, "invalid", str(e)) from None
        except StorageError as e:
            error_id = _error_id()
            log.error("%s: cannot store the request (errorId %s): %s", source, error_id, e)
            if is_disk_full(e):
                raise Refusal(
                    507, "insufficient_storage", f"no space left to store the request (errorId {error_id}); send it again later"
                ) from None
            raise Refusal(500, "internal_error", f"cannot store the request (errorId {error_id}); send it again later") from None
        except TicklakeError as e:
            log.error("%s: %s", source, e)
            raise Refusal(500, "internal_error", f"cannot store the request: {e.__class__.__name__}") from None
        for warning in outcome.warnings:
            log.warning("%s: %s", source, warning)
        log.info(
            "%s: %d lines, %d stored, %d already present, %d quarantined",
            source,
            outcome.lines,
            outcome.stored,
            outcome.already_present,
            outcome.quarantined,
        )
        first = outcome.first
        if first is None:
            self._send(204)
        else:
            answer = {"code": "invalid", "message": outcome.message(), "line": first.line, "errorId": _error_id()}
            self._send(400, json.dumps(answer).encode())

    def _send_refusal(self, refusal: Refusal) -> None:
        answer = {"code": refusal.code, "message": refusal.message, "errorId": _error_id()}
        self._send(
            refusal.status,
            json.dumps(answer).encode(),
            close=refusal.close,
            headers={"Allow": ", ".join(_ALLOWED[urlsplit(self.path).path])} if refusal.status == 405 else None,
        )

    def _send(self, status: int, body: bytes = b"", *, close: bool = False, headers: dict[str, str] | None = None) -> None:
        if self._body_pending:  # an answer before the body was read: drop it, or the next request starts inside it
            self._body_pending = False
            close = not drain(self.rfile, self.headers, self.server.app.body_bytes) or close
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _log_refusal(self, path: str, reason: str) -> None:
        log.warning("refused %s %s from %s: %s", self.command, path, _peer(self.client_address), reason)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The path only: a query string may hold credentials (InfluxDB v1's u= and p=).
        log.debug("%s %s %s from %s", self.command, urlsplit(self.path).path, code, _peer(self.client_address))

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s: %s", _peer(self.client_address), format % args)


def _query(path: str, name: str, default: str) -> str:
    values = parse_qs(urlsplit(path).query).get(name)
    return values[-1] if values else default


def _peer(address: Any) -> str:
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) and len(address) >= 2 else str(address)


def _error_id() -> str:
    return uuid.uuid4().hex[:12]
