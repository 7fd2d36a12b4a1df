"""Arrow Flight SQL over the lake: statements, prepared statements, metadata and cancellation.

Every statement runs on a read-only lake connection confined to the lake's folders
(`ticklake.query.safety`), through the same catalog-pruned path as ``ticklake sql``, and streams
as Arrow record batches straight from DuckDB's result (never materialized whole). A statement runs
when its `GetFlightInfo` arrives, holding one of ``serve_queries`` connection slots until its
`DoGet` has streamed the last batch; a timer cancels it past ``serve_query_seconds``.
A served statement is one SELECT (or EXPLAIN of one): slots are shared by every client, so
nothing a statement does may outlive it.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.flight as flight

from ticklake.config import LakeConfig
from ticklake.errors import QueryError, QueryRefused, TicklakeError
from ticklake.query.connection import LakeConnection
from ticklake.query.failures import cut, failure, one_line
from ticklake.query.safety import check_served
from ticklake.serve import protocol
from ticklake.serve.catalogs import Catalogs
from ticklake.serve.settings import ServeSettings
from ticklake.serve.slots import Slots
from ticklake.serve.sqlinfo import facts, sql_info_table
from ticklake.serve.tokens import READ, Tokens

log = logging.getLogger("ticklake.serve")
BATCH_ROWS = 65_536
MAX_QUERY_BYTES = 256 * 1024  # planning runs in Python, where a timer cannot stop it: a query's text is bounded
MAX_PREPARED = 1024  # prepared statements held at once, by all clients
REAP_SECONDS = 2.0  # a stopped stream that has not ended this long after is blocked in a write: its slot is reopened
_QUERY_CHARS = 200
SHUTTING_DOWN = "cancelled: the server is shutting down"


@dataclass
class _Statement:
    """A statement that runs: its slot's connection and the reader of its result, until streamed or dropped."""

    handle: bytes
    query: str
    con: LakeConnection
    started: float
    params: list[Any] | dict[str, Any] | None = None
    sql: str = ""  # the planned SQL DuckDB runs
    schema: pa.Schema | None = None
    reader: pa.RecordBatchReader | None = None
    timer: threading.Timer | None = None
    state: str = "running"  # then "parked" (its result waits for DoGet), then "streaming"
    ended: str = ""  # why it stopped early: "timed out", "cancelled"


@dataclass
class _Prepared:
    query: str
    params: list[Any] | dict[str, Any] | None = None
    used: float = field(default_factory=time.monotonic)


class _Auth(flight.ServerMiddleware):
    def __init__(self, role: str, answer: str | None = None) -> None:
        self.role = role
        self._answer = answer

    def sending_headers(self) -> dict[str, str]:
        # A client that logged in with Basic gets its token back as the bearer to send from now on.
        return {"authorization": self._answer} if self._answer else {}


class _AuthFactory(flight.ServerMiddlewareFactory):
    """Admits a call by its ``authorization`` header (Bearer or Token, or Basic whose password is the token)."""

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    def start_call(self, info: flight.CallInfo, headers: dict[str, list[str]]) -> _Auth:
        values = headers.get("authorization") or headers.get("Authorization") or []
        header = values[0] if values else ""
        answer = None
        if header[:6].lower() == "basic ":
            try:
                coded = header[6:].strip()
                token = base64.b64decode(coded + "=" * (-len(coded) % 4)).decode().partition(":")[2]  # Go sends it unpadded
            except (ValueError, UnicodeDecodeError):
                token = ""
            header = answer = f"Bearer {token}"
        role = self.tokens.role_of(header)
        if role is None:
            why = "no token" if not values else "an unknown token"
            log.warning("flight: refused %s: %s", info.method.name if info.method else "call", why)
            raise flight.FlightUnauthenticatedError(f"ticklake serve: {why}; send 'authorization: Bearer TOKEN'")
        return _Auth(role, answer)


class _Handshake(flight.ServerAuthHandler):
    """Lets the Handshake RPC through: the middleware has judged its header, and answers it with the bearer token."""

    def authenticate(self, outgoing: flight.ServerAuthSender, incoming: flight.ServerAuthReader) -> None:
        return None

    def is_valid(self, token: bytes) -> str:
        return ""  # every call is admitted by its authorization header (the middleware), not by a handshake token


class FlightSqlServer(flight.FlightServerBase):
    """The Flight SQL endpoint of `ticklake serve` over one lake."""

    def __init__(
        self,
        config: LakeConfig,
        tokens: Tokens,
        location: str,
        settings: ServeSettings,
        tls_certificates: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(
            location,
            auth_handler=_Handshake(),
            middleware={"auth": _AuthFactory(tokens)},
            tls_certificates=tls_certificates or [],
        )
        self.config = served_config(config)
        self.settings = settings
        self.slots = Slots(self._open, settings.serve_queries, settings.serve_wait_seconds)
        self.catalogs = Catalogs(self.config)
        self._lock = threading.Lock()
        self._running: dict[bytes, _Statement] = {}
        self._prepared: dict[bytes, _Prepared] = {}
        self._facts = facts(int(settings.serve_statement_seconds * 1000))

    def _open(self) -> LakeConnection:
        cache = self.config.cache_folder
        memory = self.settings.serve_query_memory or None
        return LakeConnection(
            self.config, readable=[self.config.root, cache], memory_limit=memory, shared=True, spill=cache / "spill"
        )

    # -- Flight RPCs ----------------------------------------------------------------------------

    def get_flight_info(self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor) -> flight.FlightInfo:
        self._need(context, READ)
        name, command = self._command(descriptor)
        statement = self._statement_of(name, command)
        if statement is not None:
            return self._run(descriptor, *statement)
        return self._info(descriptor, self.catalogs.schema_of(name, command), descriptor.command)

    def get_schema(self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor) -> flight.SchemaResult:
        self._need(context, READ)
        name, command = self._command(descriptor)
        statement = self._statement_of(name, command)
        if statement is not None:
            return flight.SchemaResult(self._schema_of(*statement))
        return flight.SchemaResult(self.catalogs.schema_of(name, command))

    def do_get(self, context: flight.ServerCallContext, ticket: flight.Ticket) -> flight.FlightDataStream:
        self._need(context, READ)
        name, command = self._unpack(ticket.ticket)
        if name == "TicketStatementQuery":
            return self._stream(command.statement_handle)
        if name == "CommandGetSqlInfo":
            return flight.RecordBatchStream(sql_info_table(self._facts, list(command.info)))
        return flight.RecordBatchStream(self.catalogs.table(name, command))

    def do_put(
        self,
        context: flight.ServerCallContext,
        descriptor: flight.FlightDescriptor,
        reader: flight.MetadataRecordBatchReader,
        writer: flight.FlightMetadataWriter,
    ) -> None:
        self._need(context, READ)
        name, command = self._command(descriptor)
        if name != "CommandPreparedStatementQuery":
            raise flight.FlightUnauthorizedError(
                "ticklake serve is read-only over Flight SQL: updates and ingest are refused;"
                " send ticks over HTTP (line protocol)"
            )
        prepared = self._prepared_of(command.prepared_statement_handle)
        rows: list[dict[str, Any]] = []
        for chunk in reader:  # read as it arrives: a flood of parameters is refused at its second row
            if chunk.data is None:
                continue
            rows += chunk.data.slice(0, 2).to_pylist()
            if len(rows) > 1:
                raise flight.FlightServerError("a query binds one set of parameters, got more")
        prepared.params = _parameters(prepared.query, rows[0]) if rows else None
        result = protocol.make("DoPutPreparedStatementResult", prepared_statement_handle=command.prepared_statement_handle)
        writer.write(pa.py_buffer(result.SerializeToString()))  # the one result Flight SQL sends bare, not in an Any

    def list_actions(self, context: flight.ServerCallContext) -> list[tuple[str, str]]:
        return [
            ("CreatePreparedStatement", "Prepare a query (bind its parameters with DoPut)"),
            ("ClosePreparedStatement", "Drop a prepared statement"),
            ("CancelFlightInfo", "Cancel a running statement"),
            ("CancelQuery", "Cancel a running statement (deprecated form)"),
        ]

    def do_action(self, context: flight.ServerCallContext, action: flight.Action) -> Iterator[bytes]:
        self._need(context, READ)
        body = action.body.to_pybytes() if action.body is not None else b""
        kind = action.type
        if kind == "CreatePreparedStatement":
            request = self._request(body, "ActionCreatePreparedStatementRequest")
            handle = self._prepare(_bounded(request.query))
            result = protocol.make("ActionCreatePreparedStatementResult", prepared_statement_handle=handle)
            return iter([protocol.pack(result)])
        if kind == "ClosePreparedStatement":
            request = self._request(body, "ActionClosePreparedStatementRequest")
            with self._lock:
                self._prepared.pop(request.prepared_statement_handle, None)
            return iter([])
        if kind == "CancelFlightInfo":
            try:
                info = protocol.parse("CancelFlightInfoRequest", body).info
            except QueryError as e:
                raise flight.FlightServerError(str(e)) from e
            status = self._cancel_info(info)
            return iter([protocol.make("CancelFlightInfoResult", status=status).SerializeToString()])
        if kind == "CancelQuery":
            request = self._request(body, "ActionCancelQueryRequest")
            status = self._cancel_info(request.info)
            return iter([protocol.pack(protocol.make("ActionCancelQueryResult", result=status))])
        raise flight.FlightServerError(f"unknown action {kind!r}")

    # -- statements -----------------------------------------------------------------------------

    def _run(
        self, descriptor: flight.FlightDescriptor, query: str, params: list[Any] | dict[str, Any] | None
    ) -> flight.FlightInfo:
        statement = self._start(query, params)
        assert statement.schema is not None
        ticket = protocol.pack(protocol.make("TicketStatementQuery", statement_handle=statement.handle))
        return self._info(descriptor, statement.schema, ticket)

    def _start(self, query: str, params: list[Any] | dict[str, Any] | None) -> _Statement:
        """Plan `query` on a slot and park it for `DoGet`, which runs it (so a client can cancel it while it runs).

        The result's schema comes from the planned SQL under ``LIMIT 0``; a statement that cannot be
        wrapped so (EXPLAIN) runs here instead. The timer runs from before planning.
        """
        _bounded(query)
        con = self.slots.lease()
        statement = _Statement(uuid.uuid4().bytes, query, con, time.monotonic(), params=params)
        statement.timer = threading.Timer(self.settings.serve_query_seconds, self._stop, (statement.handle, "timed out"))
        statement.timer.daemon = True
        with self._lock:
            self._running[statement.handle] = statement
        statement.timer.start()
        try:
            with _errors(statement):
                check_served(con.con, query)
                statement.sql = con.plan(query, params).sql
                try:
                    wrapped = f"SELECT * FROM ({statement.sql.rstrip().rstrip(';')}\n) LIMIT 0"
                    statement.schema = con.con.execute(wrapped, params).to_arrow_table().schema
                except duckdb.ParserException:
                    statement.reader = self._execute(statement)
                    statement.schema = statement.reader.schema
        except BaseException:
            self._finish(statement.handle)
            raise
        with self._lock:
            stopped = statement.ended
            statement.state = "parked"
        if stopped:  # stopped as planning ended: nobody will fetch it
            self._finish(statement.handle)
            with _errors(statement):
                raise QueryError(stopped)
        return statement

    @staticmethod
    def _execute(statement: _Statement) -> pa.RecordBatchReader:
        statement.con.con.execute(statement.sql, statement.params)
        return statement.con.con.to_arrow_reader(BATCH_ROWS)

    def _schema_of(self, query: str, params: list[Any] | dict[str, Any] | None) -> pa.Schema:
        statement = self._start(query, params)
        self._finish(statement.handle)
        assert statement.schema is not None
        return statement.schema

    def _stream(self, handle: bytes) -> flight.GeneratorStream:
        with self._lock:
            statement = self._running.get(handle)
            if statement is None or statement.state != "parked" or statement.schema is None:
                raise flight.FlightServerError("unknown or finished statement: its results were streamed, cancelled or expired")
            statement.state = "streaming"
        return flight.GeneratorStream(statement.schema, self._batches(statement))

    def _batches(self, statement: _Statement) -> Iterator[pa.RecordBatch]:
        """The result's batches; the slot is given back when the last one is sent or the client goes away."""
        try:
            with _errors(statement):
                if statement.ended:  # stopped between DoGet and here: nothing to run
                    raise QueryError(statement.ended)
                reader = statement.reader or self._execute(statement)
            statement.reader = reader
            same = reader.schema.equals(statement.schema)
            while True:
                try:
                    with _errors(statement):
                        batch = reader.read_next_batch()
                except StopIteration:
                    return
                # The planned SQL may name a computed column differently when run bare than under LIMIT 0.
                yield batch if same else pa.RecordBatch.from_arrays(batch.columns, schema=statement.schema)
        finally:
            self._finish(statement.handle)

    def _finish(self, handle: bytes) -> None:
        with self._lock:
            statement = self._running.pop(handle, None)
        if statement is None:
            return
        if statement.timer is not None:
            statement.timer.cancel()
        try:
            if statement.reader is not None:
                statement.reader.close()
        finally:
            self.slots.give_back(statement.con)

    def _stop(self, handle: bytes, why: str) -> bool:
        """Stop a statement (its timer, a cancel, shutdown): interrupt it while it runs or streams, drop it when parked."""
        with self._lock:
            statement = self._running.get(handle)
            if statement is None:
                return False
            statement.ended = why
            parked = statement.state == "parked"
        seconds = time.monotonic() - statement.started
        log.warning("flight: query %s after %.1f s: %s", why, seconds, _cut(statement.query))
        if parked:
            self._finish(handle)
        else:
            statement.con.interrupt()
            reaper = threading.Timer(REAP_SECONDS, self._reap, (handle,))
            reaper.daemon = True
            reaper.start()
        return True

    def _reap(self, handle: bytes) -> None:
        """A stream still registered after its stop is blocked writing to a client that stopped reading (DuckDB
        was interrupted, gRPC has no write timeout): drop it, and reopen its slot with a new connection."""
        with self._lock:
            statement = self._running.pop(handle, None)
        if statement is None:
            return
        log.warning("flight: a client stopped reading a stopped query's results; its slot is reopened: %s", _cut(statement.query))
        if statement.timer is not None:
            statement.timer.cancel()
        self.slots.replace(statement.con)

    def _cancel_info(self, info: bytes) -> int:
        try:
            endpoints = flight.FlightInfo.deserialize(info).endpoints
        except (pa.ArrowException, TypeError) as e:
            raise flight.FlightServerError("CancelFlightInfo: not a FlightInfo") from e
        done = False
        for endpoint in endpoints:
            name, ticket = self._unpack(endpoint.ticket.ticket)
            if name == "TicketStatementQuery":
                done = self._stop(ticket.statement_handle, "cancelled") or done
        return protocol.CANCELLED if done else protocol.NOT_CANCELLABLE

    def _prepare(self, query: str) -> bytes:
        handle = uuid.uuid4().bytes
        now = time.monotonic()
        with self._lock:
            idle = [h for h, p in self._prepared.items() if now - p.used > self.settings.serve_statement_seconds]
            for h in idle:
                del self._prepared[h]
            if len(self._prepared) >= MAX_PREPARED:
                raise flight.FlightUnavailableError(f"ticklake serve holds {MAX_PREPARED} prepared statements; close some")
            self._prepared[handle] = _Prepared(query)
        return handle

    def _statement_of(self, name: str, command: Any) -> tuple[str, list[Any] | dict[str, Any] | None] | None:
        """The query and bound parameters a statement or prepared-statement command runs; None for other commands."""
        if name == "CommandStatementQuery":
            return command.query, None
        if name == "CommandPreparedStatementQuery":
            prepared = self._prepared_of(command.prepared_statement_handle)
            return prepared.query, prepared.params
        return None

    def _prepared_of(self, handle: bytes) -> _Prepared:
        with self._lock:
            prepared = self._prepared.get(handle)
        if prepared is None:
            raise flight.FlightServerError("unknown prepared statement (closed, or idle past serve_statement_seconds)")
        prepared.used = time.monotonic()
        return prepared

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _need(context: flight.ServerCallContext, role: str) -> None:
        auth = context.get_middleware("auth")
        if auth is None or not Tokens.may(auth.role, role):
            raise flight.FlightUnauthorizedError(f"ticklake serve: this token may not {role}")

    def _command(self, descriptor: flight.FlightDescriptor) -> tuple[str, Any]:
        if descriptor.descriptor_type != flight.DescriptorType.CMD:
            raise flight.FlightServerError("Flight SQL takes command descriptors, not paths")
        return self._unpack(descriptor.command)

    @staticmethod
    def _unpack(data: bytes) -> tuple[str, Any]:
        try:
            return protocol.unpack(data)
        except QueryError as e:
            raise flight.FlightServerError(str(e)) from e

    def _request(self, data: bytes, name: str) -> Any:
        """An action's body, which must be the Flight SQL message `name`."""
        found, message = self._unpack(data)
        if found != name:
            raise flight.FlightServerError(f"expected a {name}, got a {found}")
        return message

    @staticmethod
    def _info(descriptor: flight.FlightDescriptor, schema: pa.Schema, ticket: bytes) -> flight.FlightInfo:
        return flight.FlightInfo(schema, descriptor, [flight.FlightEndpoint(ticket, [])], -1, -1)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Cancel running statements, stop serving (waiting for calls in flight up to `timeout` seconds, None:
        for good), close the slots. False when calls were still in flight at the timeout: a stream blocked in
        a write to a client that stopped reading, which only the process's end unblocks."""
        with self._lock:
            handles = list(self._running)
        for handle in handles:
            self._stop(handle, SHUTTING_DOWN)
        stopping = threading.Thread(target=super().shutdown, name="flight-shutdown", daemon=True)
        stopping.start()
        stopping.join(timeout)
        self.slots.close()
        return not stopping.is_alive()


@contextmanager
def _errors(statement: _Statement | None = None) -> Iterator[None]:
    """The project's errors (and DuckDB's, translated) as Flight's, with their one-line message.

    A refusal is PERMISSION_DENIED; a statement stopped by its timer or a cancel says so; others are
    a server error (pyarrow would append a traceback to any exception not Flight's own).
    """
    try:
        yield
    except (duckdb.Error, TicklakeError) as raised:
        error = raised
        if isinstance(error, duckdb.Error):
            error = failure(error, statement.query if statement else None, statement.con.root if statement else Path("/"))
        ended = statement.ended if statement is not None else ""
        if ended == "timed out" and statement is not None:
            seconds = time.monotonic() - statement.started
            raise flight.FlightTimedOutError(
                f"query cancelled: still running after {seconds:.1f} s (serve_query_seconds)"
            ) from raised
        if ended == SHUTTING_DOWN:
            raise flight.FlightUnavailableError(f"query {ended}") from raised
        if ended:
            raise flight.FlightCancelledError(f"query {ended}") from raised
        if isinstance(error, QueryRefused):
            raise flight.FlightUnauthorizedError(str(error)) from raised
        raise flight.FlightServerError(str(error)) from raised


def served_config(config: LakeConfig) -> LakeConfig:
    """The lake's settings with a read cache of the lake's own, ``<cache>/served/<key>/``: a server's clients may
    read its cache folder, and the shared one holds every other lake's cached objects and catalogs too."""
    key = hashlib.sha256((config.source or str(config.root.resolve())).encode()).hexdigest()[:16]
    own = replace(config, cache_dir=str(config.cache_folder / "served" / key))
    return own.with_root(config.source) if config.source else own


def _bounded(query: str) -> str:
    if not isinstance(query, str):  # proto2 hands over a string field that is not UTF-8 as bytes
        raise flight.FlightServerError("the query is not UTF-8 text")
    if len(query.encode()) > MAX_QUERY_BYTES:
        raise flight.FlightServerError(
            f"a query of {len(query.encode()):,} bytes; ticklake serve takes up to {MAX_QUERY_BYTES:,}"
        )
    return query


def _parameters(query: str, row: dict[str, Any]) -> list[Any] | dict[str, Any]:
    """A bound row as DuckDB takes it: by name when every column names a ``$name`` of the query, else in order."""
    names = list(row)
    if names and all(re.search(r"\$" + re.escape(n) + r"\b", query) and not n.isdigit() for n in names):
        return dict(row)
    return list(row.values())


def _cut(query: str) -> str:
    return cut(one_line(query), _QUERY_CHARS)
