"""The query slots of a server: at most ``serve_queries`` lake connections, each running one statement at a time.

A slot's connection is opened when first needed and reopened once it is older than `MAX_AGE`
seconds: a connection pins the snapshot it opened at (`ticklake.maintenance.pins`), and a pin held
for days would keep vacuum from expiring anything newer.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable

import pyarrow.flight as flight

from ticklake.errors import TicklakeError
from ticklake.query.connection import LakeConnection

MAX_AGE = 300.0


class Slots:
    """A bounded pool of lake connections; `lease` waits up to `wait` seconds for a free one."""

    def __init__(self, open_connection: Callable[[], LakeConnection], size: int, wait: float) -> None:
        self._open = open_connection
        self.size = size
        self.wait = wait
        # Last in, first out: the connection used last is warm (its views and footers cached), and an
        # unopened slot (None) is opened only when every opened one is busy.
        self._free: queue.LifoQueue[tuple[LakeConnection, float] | None] = queue.LifoQueue()
        self._opened: dict[int, float] = {}
        self._closed = False
        for _ in range(size):
            self._free.put(None)

    def lease(self) -> LakeConnection:
        """A connection of its own to run one statement on; UNAVAILABLE when every slot stays busy."""
        if self._closed:
            raise flight.FlightUnavailableError("ticklake serve is shutting down")
        try:
            entry = self._free.get(timeout=self.wait)
        except queue.Empty:
            raise flight.FlightUnavailableError(
                f"ticklake serve is busy: all {self.size} query slots stayed in use for {self.wait:g} s"
                " (serve_queries); try again"
            ) from None
        if entry is not None and time.monotonic() - entry[1] <= MAX_AGE:
            return entry[0]
        if entry is not None:
            entry[0].close()
        try:
            con = self._open()
        except TicklakeError as e:
            self._free.put(None)
            raise flight.FlightUnavailableError(f"ticklake serve cannot open the lake: {e}") from e
        except BaseException:
            self._free.put(None)
            raise
        self._opened[id(con)] = time.monotonic()
        return con

    def give_back(self, con: LakeConnection) -> None:
        """Return a leased connection (closed instead when the server is shutting down)."""
        opened = self._opened.get(id(con), 0.0)
        if self._closed:
            self._opened.pop(id(con), None)
            con.close()
            return
        self._free.put((con, opened))

    def replace(self, con: LakeConnection) -> None:
        """A leased connection that cannot be given back (a thread still holds its result): close it in the
        background and free its slot for a new one."""
        self._opened.pop(id(con), None)
        threading.Thread(target=_close_quietly, args=(con,), daemon=True).start()
        self._free.put(None)

    def close(self) -> None:
        """Close the idle connections; those still leased are closed as they come back."""
        self._closed = True
        while True:
            try:
                entry = self._free.get_nowait()
            except queue.Empty:
                return
            if entry is not None:
                self._opened.pop(id(entry[0]), None)
                entry[0].close()


def _close_quietly(con: LakeConnection) -> None:
    with contextlib.suppress(Exception):  # its stuck reader may fail as the connection goes
        con.interrupt()
        con.close()
