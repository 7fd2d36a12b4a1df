"""Leases: named locks with a time to live, kept in the catalog, so two workers (threads,
processes, Dagster runs) never rebuild the same partition at the same time.

Why in the catalog: every worker already shares the catalog file, and SQLite's write lock
(``BEGIN IMMEDIATE``) makes taking a lease atomic across processes. A lease lapses after its
TTL unless renewed, so a holder that crashed blocks others for one TTL at most; a live holder
renews it from a background thread. The catalog's optimistic commits stay the last line of
defence: even a lapsed lease cannot make two commits of one partition both win.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ticklake.catalog.errors import CatalogError, LeaseHeld
from ticklake.catalog.store import Catalog


@dataclass
class Lease:
    """A lease being held: its name, its holder, and whether a renewal found it taken over."""

    name: str
    owner: str
    token: str
    ttl: float
    lost: threading.Event = field(default_factory=threading.Event)


def _show(expires_at: float) -> str:
    return datetime.fromtimestamp(expires_at, UTC).isoformat(timespec="seconds")


def try_acquire(catalog: Catalog, name: str, owner: str, ttl: float) -> tuple[Lease | None, str, float]:
    """Take lease `name` unless someone holds it; return (the lease or None, holder, expiry)."""
    token = uuid.uuid4().hex
    now = time.time()
    with catalog.transaction() as db:
        db.execute("DELETE FROM leases WHERE name = ? AND expires_at <= ?", (name, now))
        db.execute(
            "INSERT INTO leases (name, owner, token, acquired_at, expires_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (name) DO NOTHING",
            (name, owner, token, datetime.now(UTC).isoformat(timespec="microseconds"), now + ttl),
        )
        holder, holder_token, expires_at = db.execute(
            "SELECT owner, token, expires_at FROM leases WHERE name = ?", (name,)
        ).fetchone()
    lease = Lease(name, owner, token, ttl) if holder_token == token else None
    return lease, holder, expires_at


def renew(catalog: Catalog, lease: Lease) -> bool:
    """Push the lease's expiry one TTL ahead; False when it lapsed and another holder took it."""
    with catalog.transaction() as db:
        changed = db.execute(
            "UPDATE leases SET expires_at = ? WHERE name = ? AND token = ?",
            (time.time() + lease.ttl, lease.name, lease.token),
        ).rowcount
    return changed == 1


def release(catalog: Catalog, lease: Lease) -> None:
    """Give the lease up (a lease taken over by someone else is left alone)."""
    with catalog.transaction() as db:
        db.execute("DELETE FROM leases WHERE name = ? AND token = ?", (lease.name, lease.token))


@contextmanager
def hold_lease(catalog: Catalog, name: str, owner: str, *, ttl: float = 60.0, wait: float = 0.0) -> Iterator[Lease]:
    """Hold lease `name` (e.g. ``'ticks/2022-01-07T05'``) for the duration of the block.

    Waits up to `wait` seconds for another holder to let go, then raises LeaseHeld.
    """
    if ttl <= 0:
        raise CatalogError(f"lease {name!r}: ttl must be positive, got {ttl}")
    deadline = time.monotonic() + wait
    pause = 0.02
    while True:
        lease, holder, expires_at = try_acquire(catalog, name, owner, ttl)
        if lease is not None:
            break
        if time.monotonic() >= deadline:
            raise LeaseHeld(f"lease {name!r} is held by {holder} until {_show(expires_at)} (waited {wait:g}s)")
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, 1.0)
    stop = threading.Event()
    keeper = threading.Thread(target=_keep, args=(catalog.path, lease, stop), name=f"lease-{name}", daemon=True)
    keeper.start()
    try:
        yield lease
    finally:
        stop.set()
        keeper.join()
        release(catalog, lease)


def _keep(path: Path, lease: Lease, stop: threading.Event) -> None:
    """Renew `lease` every third of its TTL until `stop`, on a connection of this thread's own."""
    with Catalog(path) as own:
        while not stop.wait(lease.ttl / 3):
            try:
                if not renew(own, lease):
                    lease.lost.set()
                    return
            except CatalogError:
                continue  # the catalog was busy: try again at the next beat, well before expiry
