"""Reader pins: an open `LakeConnection` records the snapshot it reads, so vacuum keeps its files.

A pin is a small JSON file ``<root>/_pins/<host>-<pid>-<random>.json`` holding the reader's
pid, host and snapshot, written when the connection opens and deleted when it closes. Readers
never write the catalog (it may be read-only to them). A pin whose pid is gone on this host is
stale and ignored (vacuum deletes it); a pin from another host counts until it is deleted.

A connection that follows the newest snapshot pins the one it opened at, which also protects
every later one: files are needed by a pin of snapshot P when a snapshot from P on holds them.

Race-free with vacuum, which plans from the catalog first and lists pins after (and again after
it expires snapshots, before deleting): a reader writes its pin *before* it reads which snapshot
it will use, so either vacuum sees the pin or the reader sees vacuum's commit.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ticklake.catalog import Catalog
from ticklake.catalog.maintenance import expired_at
from ticklake.errors import NotFoundError
from ticklake.storage.files import discard, temp_name

PINS = "_pins"


@dataclass(frozen=True)
class Pin:
    """One open reader: where its pin file is, who it is, and the snapshot it reads from."""

    path: Path
    pid: int
    host: str
    snapshot: int
    opened_at: str

    def describe(self) -> str:
        """Who holds the pin, for messages."""
        return f"pid {self.pid} on {self.host} reads snapshot {self.snapshot} since {self.opened_at}"


def pins_dir(root: Path) -> Path:
    """Where pins live."""
    return root / PINS


def pin_reader(catalog: Catalog, root: Path, snapshot: int | None = None) -> Pin | None:
    """Pin the snapshot a reader of the lake at `root` is about to use (`snapshot`, or the newest);
    unpin it with `unpin`.

    Refuses (NotFoundError) a snapshot vacuum expired. Returns None, pinning nothing, for a
    snapshot that does not exist (the reader reports that) or when the lake root cannot be written
    (such a reader is not protected from vacuum).
    """
    if snapshot is not None and not catalog.has_snapshot(snapshot):
        return None
    pin = _write_pin(root, catalog.current_snapshot() if snapshot is None else snapshot)
    expired = expired_at(catalog, snapshot) if snapshot is not None else None  # read after the pin is visible
    if expired is not None:
        unpin(pin)
        raise NotFoundError(f"lake {root}: snapshot {snapshot} was expired by vacuum at {expired}: its files are gone")
    return pin


def unpin(pin: Pin | None) -> None:
    """Delete a reader's pin (nothing for None, or a pin deleted already)."""
    if pin is not None:
        discard(pin.path)


def read_pins(root: Path) -> tuple[list[Pin], list[Pin]]:
    """The pins of live readers and the stale ones (a dead pid on this host)."""
    live: list[Pin] = []
    stale: list[Pin] = []
    folder = pins_dir(root)
    host = socket.gethostname()
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            pin = Pin(path, int(record["pid"]), str(record["host"]), int(record["snapshot"]), str(record["opened_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # gone meanwhile, or not a pin: nothing to protect
        (stale if pin.host == host and not _alive(pin.pid) else live).append(pin)
    return live, stale


def _write_pin(root: Path, snapshot: int) -> Pin | None:
    host, pid = socket.gethostname(), os.getpid()
    opened = datetime.now(UTC).isoformat(timespec="seconds")
    path = pins_dir(root) / f"{host}-{pid}-{uuid.uuid4().hex[:8]}.json"
    tmp = temp_name(path)
    try:
        path.parent.mkdir(exist_ok=True)
        tmp.write_text(json.dumps({"pid": pid, "host": host, "snapshot": snapshot, "opened_at": opened}), encoding="utf-8")
        # Renamed into place so vacuum never reads half a pin; not fsynced: a pin only matters while
        # its process lives, and a machine that crashes takes its readers with it.
        os.replace(tmp, path)
    except OSError:
        discard(tmp)
        return None
    return Pin(path, pid, host, snapshot, opened)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
