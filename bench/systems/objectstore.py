"""The S3 servers the cold-tier systems run against: moto with a request counter, and SeaweedFS.

* `CountingS3` is moto's S3 server on 127.0.0.1 (port 0) in this process, behind a WSGI layer that
  records every request and the bytes of its answer: counted by the server, whoever sent the
  request (s3fs, DuckDB's httpfs), so every system is measured by the same counter.
* `seaweedfs` starts a real S3 server in its own process (``infra/s3_server.py``), for latencies.
"""

from __future__ import annotations

import os
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.s3_server import serving

AWS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")
_CLEARED = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION")


@dataclass
class Requests:
    """Requests a server answered, by kind, and the bytes of its answers to reads."""

    get: int = 0
    head: int = 0
    list: int = 0
    other: int = 0  # PUT, POST, DELETE: writes, not counted as reads
    bytes: int = 0

    @property
    def total(self) -> int:
        """Every read request (GET, HEAD, LIST)."""
        return self.get + self.head + self.list

    def cell(self) -> str:
        """``GET/HEAD/LIST``, e.g. ``3/0/0``."""
        return f"{self.get}/{self.head}/{self.list}"


def request_kind(method: str, path: str) -> str:
    """What an S3 request is, from its method and (path-style) path: a GET of the bucket itself is a LIST.

    >>> request_kind("GET", "/bench"), request_kind("GET", "/bench/t/a.parquet"), request_kind("HEAD", "/bench/a")
    ('list', 'get', 'head')
    """
    if method == "GET":
        return "get" if "/" in path.strip("/") else "list"
    return "head" if method == "HEAD" else "other"


class CountingS3:
    """moto's S3 server with bucket `bucket`, counting what it answers (see the module docstring)."""

    def __init__(self, bucket: str) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        class Quiet(MotoRequestHandler):
            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                pass  # the counting layer records each request; no access log on stderr

        self._log: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", 0, self._counted(app), True, request_handler=Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/{bucket}", method="PUT")).close()

    def _counted(self, app: Any) -> Any:
        def counted(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
            kind = request_kind(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""))
            body = app(environ, start_response)
            size = 0
            try:
                for chunk in body:
                    size += len(chunk)
                    yield chunk
            finally:
                if hasattr(body, "close"):
                    body.close()
                with self._lock:
                    self._log.append((kind, size))

        return counted

    def take(self) -> Requests:
        """The requests answered since the last call (and forget them)."""
        with self._lock:
            log, self._log = self._log, []
        out = Requests()
        for kind, size in log:
            setattr(out, kind, getattr(out, kind) + 1)
            if kind != "other":
                out.bytes += size
        return out

    def env(self) -> dict[str, str]:
        """AWS SDK variables for this server (moto takes any credentials)."""
        return dict(zip(AWS, (self.endpoint, "bench", "bench-secret", "us-east-1"), strict=True))

    def stop(self) -> None:
        """Shut the server down."""
        self._server.shutdown()
        self._thread.join()


@contextmanager
def seaweedfs(folder: Path, bucket: str) -> Iterator[dict[str, str]]:
    """SeaweedFS with bucket `bucket`, started by ``infra/s3_server.py`` on free ports; yields the writer's AWS variables."""
    with serving(folder, bucket) as settings:
        yield {k: settings[k] for k in AWS}


@contextmanager
def aws_environment(env: dict[str, str]) -> Iterator[None]:
    """Point every AWS SDK user in this process (botocore, s3fs, DuckDB's secret) at one server, then restore."""
    saved = {k: os.environ.get(k) for k in (*AWS, *_CLEARED)}
    for k in _CLEARED:
        os.environ.pop(k, None)
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
