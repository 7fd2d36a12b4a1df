"""Object-storage servers for tests, started once per session on free ports and stopped afterwards.

`s3_server` is SeaweedFS (``infra/s3_server.py``: checks signatures, so a wrong secret gets 403, and
has a read-only identity); `moto_server` is moto's in-process server, for quick tests, whose log of
requests counts what a query really fetched. Each test gets its own prefix (`s3_lake`), so nothing
one test writes is seen by another.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from infra.s3_server import serving


@dataclass(frozen=True)
class S3Server:
    """A running S3-compatible server: its endpoint, bucket and two identities, and its Iceberg REST
    catalog (tables kept in its S3 Tables bucket `warehouse`)."""

    endpoint: str
    bucket: str
    writer: tuple[str, str]
    reader: tuple[str, str]
    iceberg_uri: str = ""
    warehouse: str = ""

    def env(self, *, reader: bool = False, secret: str | None = None) -> dict[str, str]:
        """AWS SDK variables pointing at this server, as the writer (or the read-only reader)."""
        key, real = self.reader if reader else self.writer
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret or real,
            "AWS_REGION": "us-east-1",
        }


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS on 127.0.0.1, started by the project's own script."""
    with serving(tmp_path_factory.mktemp("seaweedfs"), "ticklake", iceberg=True) as s:
        yield S3Server(
            s["AWS_ENDPOINT_URL"],
            s["BUCKET"],
            (s["AWS_ACCESS_KEY_ID"], s["AWS_SECRET_ACCESS_KEY"]),
            (s["READER_ACCESS_KEY_ID"], s["READER_SECRET_ACCESS_KEY"]),
            s["ICEBERG_REST_URI"],
            s["ICEBERG_WAREHOUSE"],
        )


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The writer's AWS variables set for this test (and the processes it starts)."""
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(k, raising=False)
    return s3_server


@pytest.fixture
def s3_prefix(s3_env: S3Server) -> str:
    """A fresh ``s3://bucket/<unique>`` location for one test."""
    return f"s3://{s3_env.bucket}/t-{uuid.uuid4().hex[:10]}"


_REQUEST = re.compile(r'"(GET|HEAD|PUT|POST|DELETE) (\S+) HTTP')


class MotoServer(logging.Handler):
    """moto's S3 server in this process; its access log (one line per request, written by the
    server, not by the code under test) counts what a query really asked for."""

    def __init__(self) -> None:
        super().__init__()
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=True)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.log: list[tuple[str, str]] = []
        logging.getLogger("werkzeug").addHandler(self)
        logging.getLogger("werkzeug").setLevel(logging.INFO)

    def emit(self, record: logging.LogRecord) -> None:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", record.getMessage())
        self.log.extend(_REQUEST.findall(plain))

    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request since the last call, and forget them."""
        taken, self.log = self.log, []
        return taken

    def env(self) -> dict[str, str]:
        """AWS variables for this server (moto takes any credentials)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "moto",
            "AWS_SECRET_ACCESS_KEY": "moto",
            "AWS_REGION": "us-east-1",
        }

    def stop(self) -> None:
        logging.getLogger("werkzeug").removeHandler(self)
        self._server.stop()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """moto's S3 server on a free port, with a bucket named ``ticklake``."""
    server = MotoServer()
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{server.endpoint}/ticklake", method="PUT"))
    server.requests()
    try:
        yield server
    finally:
        server.stop()
