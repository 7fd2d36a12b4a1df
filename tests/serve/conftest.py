"""Fixtures of the HTTP ingest tests: a fresh lake, tokens, and a real server on a free port."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ticklake.config import LakeConfig
from ticklake.serve.http import HttpServer
from ticklake.serve.tokens import Tokens

WRITE_TOKEN = "w-7f3a-secret-write"
READ_TOKEN = "r-91bc-secret-read"
TOKENS = Tokens.parse_env(f"write:{WRITE_TOKEN},read:{READ_TOKEN}")
SYNTAX = "invalid_line_protocol"  # the quarantine reason of a line that is not line protocol


@pytest.fixture
def lake_root(tmp_path: Path) -> Path:
    """A fresh, empty lake folder (the catalog is made by the first compaction, as for any lake)."""
    root = tmp_path / "lake"
    root.mkdir()
    return root


@pytest.fixture
def lake_config(lake_root: Path) -> LakeConfig:
    """The lake's config, defaults otherwise."""
    return LakeConfig(root=lake_root, writer_id="test")


@pytest.fixture
def http_server(lake_config: LakeConfig) -> Iterator[HttpServer]:
    """The ingest endpoint on 127.0.0.1, port 0 (a free one), stopped after the test."""
    server = HttpServer(lake_config, TOKENS)
    server.start()
    try:
        yield server
    finally:
        server.shutdown()


@dataclass
class Answer:
    """An HTTP response, read whole."""

    status: int
    headers: dict[str, str]
    body: bytes
    json: Any = field(default=None)


def request(port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Answer:
    """One request on a new connection (with the write token unless `headers` say otherwise)."""
    sent = {"Authorization": f"Bearer {WRITE_TOKEN}", **(headers or {})}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers={k: v for k, v in sent.items() if v})
        response = connection.getresponse()
        data = response.read()
        parsed = json.loads(data) if response.getheader("Content-Type") == "application/json" else None
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data, parsed)
    finally:
        connection.close()
