"""Request bodies read within a bound: Content-Length or chunked, gzip undone, never more than the limit in memory.

A body that ends before its announced length (the client went away) is refused whole, so a
request is stored entirely or not at all.
"""

from __future__ import annotations

import re
import time
import zlib
from email.message import Message
from io import BufferedIOBase

_BLOCK = 1 << 16
DRAIN_SECONDS = 2.0  # how long a refused body is read and dropped, so the client gets to read the answer


class Refusal(Exception):
    """A request answered with an HTTP error instead of being stored; `close` ends the connection after it."""

    def __init__(self, status: int, code: str, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.close = status, code, message, close


class BodyEnded(Refusal):
    """The connection ended (or stalled past its timeout) before the whole body arrived."""

    def __init__(self, got: int, wanted: int) -> None:
        super().__init__(400, "bad_request", "the body ended before its length", close=True)
        self.got, self.wanted = got, wanted


_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")


def is_number(text: str) -> bool:
    """Whether a header holds a plain decimal number (``"²".isdigit()`` is True, and int() refuses it)."""
    value = text.strip()
    return value.isascii() and value.isdigit()


def is_chunked(headers: Message) -> bool:
    """Whether the body comes in chunks (Transfer-Encoding: chunked) rather than with a Content-Length."""
    return "chunked" in headers.get("Transfer-Encoding", "").lower()


def read_body(rfile: BufferedIOBase, headers: Message, limit: int) -> bytes:
    """The body as sent (Content-Length or chunked), or raise Refusal: too large, no length, cut short."""
    if is_chunked(headers):
        return _chunked(rfile, limit)
    length = headers.get("Content-Length")
    if length is None:
        raise Refusal(411, "length_required", "a body needs Content-Length or chunked transfer encoding", close=True)
    if not is_number(length):
        raise Refusal(400, "bad_request", "Content-Length is not a number", close=True)
    wanted = int(length)
    if wanted > limit:
        raise Refusal(413, "too_large", f"body of {wanted:,} bytes exceeds the limit of {limit:,}")
    data = _read(rfile, wanted)
    if len(data) < wanted:
        raise BodyEnded(len(data), wanted)
    return data


def _read(rfile: BufferedIOBase, n: int) -> bytes:
    try:
        return rfile.read(n)
    except OSError:  # a timeout or a reset: as good as the end
        return b""


def _chunked(rfile: BufferedIOBase, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        try:
            line = rfile.readline(1024)
        except OSError:
            raise BodyEnded(size, size + 1) from None
        digits = line.split(b";", 1)[0].strip()
        if not line:
            raise BodyEnded(size, size + 1)
        if not _HEX.fullmatch(digits):  # int() would take -1, 0x10 or 1_0, and read(-1) reads without bound
            raise Refusal(400, "bad_request", "a chunk size is not hexadecimal digits", close=True)
        n = int(digits, 16)
        if n == 0:
            while rfile.readline(1024).strip():
                pass  # trailers, ignored
            return b"".join(parts)
        size += n
        if size > limit:
            raise Refusal(413, "too_large", f"body exceeds the limit of {limit:,} bytes", close=True)
        part = _read(rfile, n)
        if len(part) < n or _read(rfile, 2) != b"\r\n":
            raise BodyEnded(size - n + len(part), size)
        parts.append(part)


def decoded(body: bytes, encoding: str, limit: int) -> bytes:
    """`body` with its Content-Encoding (gzip, or none) undone, bounded by `limit` once decompressed too.

    >>> import gzip
    >>> decoded(gzip.compress(b"x" * 10), "gzip", 10)
    b'xxxxxxxxxx'
    >>> decoded(gzip.compress(b"x" * 11), "gzip", 10)
    Traceback (most recent call last):
    ticklake.serve.body.Refusal: body exceeds the limit of 10 bytes once decompressed
    """
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise Refusal(415, "unsupported_encoding", f"Content-Encoding {encoding[:40]!r}: only gzip is accepted")
    parts: list[bytes] = []
    size = 0
    while body:  # a gzip stream may hold several members, one after the other
        inflate = zlib.decompressobj(wbits=31)
        try:
            part = inflate.decompress(body, limit + 1 - size)  # never more than one byte past the limit
        except zlib.error as e:
            raise Refusal(400, "bad_request", f"the gzip body does not decompress: {e}") from None
        size += len(part)
        if size > limit or inflate.unconsumed_tail:
            raise Refusal(413, "too_large", f"body exceeds the limit of {limit:,} bytes once decompressed")
        if not inflate.eof:
            raise Refusal(400, "bad_request", "the gzip body is truncated")
        parts.append(part)
        body = inflate.unused_data
    return b"".join(parts)


def drain(rfile: BufferedIOBase, headers: Message, limit: int) -> bool:
    """Read and drop a body that will not be used (up to `limit` bytes, for DRAIN_SECONDS), so the client,
    still sending, gets to read the answer; False when the connection cannot carry another request."""
    length = headers.get("Content-Length", "0").strip()
    if is_chunked(headers) or not is_number(length):
        return False
    left = min(int(length), limit)
    deadline = time.monotonic() + DRAIN_SECONDS
    while left > 0 and time.monotonic() < deadline:
        block = _read(rfile, min(left, _BLOCK))
        if not block:
            return False
        left -= len(block)
    return left == 0 and int(length) <= limit
