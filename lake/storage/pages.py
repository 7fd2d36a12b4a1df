"""The CRC-32 check of a column chunk's pages, read from their thrift page headers.

The archive writes a CRC-32 of every page's bytes into its header. A ranged read checks the chunks
it fetched page by page: each header is read (thrift's compact protocol, only as far as its size and
CRC), the page's bytes hashed with zlib, and the pages must tile the chunk exactly. That costs a hash of the
bytes, where letting pyarrow verify would decompress and decode every value; fastparquet's
decoder would also do, but it neither bounds its reads nor raises on damage (it prints).
"""

from __future__ import annotations

import zlib

from ticklake.errors import StorageError

# Compact-protocol field types (thrift's TCompactProtocol) and the PageHeader fields read here.
_TRUE, _FALSE, _I8, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(1, 13)
_COMPRESSED_SIZE, _CRC = 3, 4


def check_pages(data: bytes | memoryview, start: int, end: int) -> int:
    """Check the CRC-32 of each page of the column chunk at `data[start:end]`; return how many had one.

    A StorageError names the first damaged page: a CRC that differs, a header that cannot be read,
    or pages that run past the chunk or stop short of it. The CRC covers a page's bytes, not its
    header: damage to a header field other than the page's size and CRC is left to the decoder.
    """
    view = memoryview(data)
    checked = 0
    for page, (at, body, size, crc) in enumerate(pages(view, start, end)):
        if crc is not None:
            if zlib.crc32(view[body : body + size]) != crc & 0xFFFFFFFF:
                raise StorageError(f"page {page} at byte {at:,}: CRC-32 mismatch")
            checked += 1
    return checked


def pages(data: bytes | memoryview, start: int, end: int) -> list[tuple[int, int, int, int | None]]:
    """(header offset, body offset, body size, CRC or None) of each page of the chunk at `data[start:end]`."""
    view = memoryview(data)
    out: list[tuple[int, int, int, int | None]] = []
    pos = start
    while pos < end:
        try:
            reader = _Reader(view, pos, end)
            size, crc = reader.page_header()
        except (IndexError, ValueError) as e:
            raise StorageError(f"page {len(out)} at byte {pos:,}: its header cannot be read ({e})") from e
        if size < 0 or reader.pos + size > end:
            raise StorageError(f"page {len(out)} at byte {pos:,}: its {size:,} bytes run past the column chunk")
        out.append((pos, reader.pos, size, crc))
        pos = reader.pos + size
    return out


class _Reader:
    """Reads compact-protocol values from `view[pos:end]`; past `end` is an IndexError."""

    def __init__(self, view: memoryview, pos: int, end: int) -> None:
        self.view, self.pos, self.end = view, pos, end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise IndexError("the header runs past the column chunk")
        self.pos += 1
        return self.view[self.pos - 1]

    def varint(self) -> int:
        shift = value = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise ValueError("a varint longer than 64 bits")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def page_header(self) -> tuple[int, int | None]:
        """(compressed_page_size, crc) of the PageHeader here; the reader ends past the header."""
        size: int | None = None
        crc: int | None = None
        field = 0
        while (head := self.byte()) != 0:
            kind, delta = head & 0x0F, head >> 4
            field = field + delta if delta else self.zigzag()
            if field in (_COMPRESSED_SIZE, _CRC) and kind == _I32:
                value = self.zigzag()
                size, crc = (value, crc) if field == _COMPRESSED_SIZE else (size, value)
            else:
                self.skip(kind)
        if size is None:
            raise ValueError("no compressed_page_size")
        return size, crc

    def skip(self, kind: int, depth: int = 0) -> None:
        if depth > 32:
            raise ValueError("nested deeper than a page header is")
        if kind in (_TRUE, _FALSE):
            return
        if kind == _I8:
            self.byte()
        elif kind in (_I16, _I32, _I64):
            self.varint()
        elif kind == _DOUBLE:
            self._advance(8)
        elif kind == _BINARY:
            self._advance(self.varint())
        elif kind in (_LIST, _SET):
            head = self.byte()
            n = head >> 4 if head >> 4 != 15 else self.varint()
            for _ in range(n):
                self.byte() if head & 0x0F in (_TRUE, _FALSE) else self.skip(head & 0x0F, depth + 1)
        elif kind == _MAP:
            n = self.varint()
            types = self.byte() if n else 0
            for _ in range(n):
                self.skip(types >> 4, depth + 1)
                self.skip(types & 0x0F, depth + 1)
        elif kind == _STRUCT:
            field = 0
            while (head := self.byte()) != 0:
                field = field + (head >> 4) if head >> 4 else self.zigzag()
                self.skip(head & 0x0F, depth + 1)
        else:
            raise ValueError(f"unknown thrift type {kind}")

    def _advance(self, n: int) -> None:
        if n < 0 or self.pos + n > self.end:
            raise IndexError("the header runs past the column chunk")
        self.pos += n
