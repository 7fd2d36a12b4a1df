"""`ticklake serve`: one process holding both endpoints, Flight SQL (queries) and HTTP (ingest).

It prints one line when both listen (their URLs, with the ports chosen for ``:0``), and on SIGTERM
or SIGINT stops the HTTP side first, waiting for requests in flight, so that every tick it
acknowledged is durable before the process ends; then running queries are cancelled.
"""

from __future__ import annotations

import logging
import os
import signal
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from ticklake.config import LakeConfig
from ticklake.datasets import create_catalog
from ticklake.errors import ConfigError
from ticklake.serve.flight import FlightSqlServer
from ticklake.serve.http import HttpServer
from ticklake.serve.settings import ServeSettings
from ticklake.serve.tokens import Tokens

log = logging.getLogger("ticklake.serve")
DEFAULT_FLIGHT = "127.0.0.1:31337"
DEFAULT_HTTP = "127.0.0.1:9000"
STOP_SECONDS = 5.0  # how long a stop waits for Flight SQL calls in flight


@dataclass(frozen=True)
class Tls:
    """A certificate (chain) and its private key, both PEM files; used by both endpoints."""

    cert: Path
    key: Path

    def read(self) -> tuple[bytes, bytes]:
        try:
            return self.cert.read_bytes(), self.key.read_bytes()
        except OSError as e:
            raise ConfigError(f"TLS: cannot read {e.filename}: {e.strerror}") from e

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(f"TLS: {self.cert} / {self.key}: {e}") from e
        return context


def address(text: str, what: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6; port 0 picks a free one).

    >>> address("127.0.0.1:0", "--flight")
    ('127.0.0.1', 0)
    >>> address("9000", "--http")
    Traceback (most recent call last):
    ticklake.errors.ConfigError: --http '9000': expected HOST:PORT, e.g. 127.0.0.1:9000
    """
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ConfigError(f"{what} {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9000")
    return host, int(port)


class Server:
    """Both endpoints over one lake; `start` listens, `stop` ends them (ingest made durable first)."""

    def __init__(
        self,
        config: LakeConfig,
        tokens: Tokens,
        settings: ServeSettings,
        flight_at: str = DEFAULT_FLIGHT,
        http_at: str = DEFAULT_HTTP,
        tls: Tls | None = None,
    ) -> None:
        self.config = config
        self.tokens = tokens
        self.settings = settings
        self.flight_at = address(flight_at, "--flight")
        self.http_at = address(http_at, "--http")
        self.tls = tls
        self.flight: FlightSqlServer | None = None
        self.http: HttpServer | None = None

    def start(self) -> None:
        """Listen on both addresses (a new local lake gets its catalog, so it can be queried before its first compaction)."""
        if not self.config.source:
            create_catalog(self.config)
        scheme = "grpc+tls" if self.tls else "grpc"
        host, port = self.flight_at
        certificates = [self.tls.read()] if self.tls else None
        self.flight = FlightSqlServer(
            self.config, self.tokens, f"{scheme}://{_bracket(host)}:{port}", self.settings, certificates
        )
        try:
            host, port = self.http_at
            context = self.tls.context() if self.tls else None
            self.http = HttpServer(
                self.config,
                self.tokens,
                host,
                port,
                body_bytes=self.settings.serve_body_bytes,
                connections=self.settings.serve_connections,
                ssl_context=context,
            )
            self.http.start()
        except BaseException:
            self.flight.shutdown()
            raise

    @property
    def urls(self) -> tuple[str, str]:
        """The Flight SQL and HTTP URLs as clients reach them (with the ports actually bound)."""
        assert self.flight is not None and self.http is not None
        tls = "s" if self.tls else ""
        flight_url = f"grpc{'+tls' if tls else ''}://{_bracket(self.flight_at[0])}:{self.flight.port}"
        return flight_url, f"http{tls}://{_bracket(self.http_at[0])}:{self.http.port}"

    def stop(self, flight_seconds: float | None = None) -> bool:
        """HTTP first (waits for requests in flight: what it acknowledged is durable), then Flight SQL (waits for
        its calls up to `flight_seconds`); False when Flight SQL calls were still in flight then."""
        if self.http is not None:
            self.http.shutdown()
        if self.flight is not None:
            return self.flight.shutdown(flight_seconds)
        return True

    def run(self, ready: Callable[[str], None]) -> None:
        """Start, report the URLs through `ready`, serve until SIGTERM or SIGINT, then stop."""
        wake = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("serve: %s received, stopping", signal.Signals(signum).name)
            wake.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            flight_url, http_url = self.urls
            ready(
                f"ticklake serve: Flight SQL on {flight_url}, HTTP on {http_url} (lake {self.config.source or self.config.root})"
            )
            while not wake.wait(1.0):
                pass
        finally:
            ended = self.stop(STOP_SECONDS)
            for s, handler in previous.items():
                signal.signal(s, handler)
        if not ended:
            # A stream blocked writing to a client that stopped reading holds gRPC's shutdown; everything
            # acknowledged is durable by now and queries only read, so the process ends here.
            log.warning("serve: Flight SQL calls still in flight after %.0f s; exiting", STOP_SECONDS)
            logging.shutdown()
            os._exit(0)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host
