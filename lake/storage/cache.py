"""The read-through cache of cold objects: a local, verified copy of each object a reader needs.

Cold objects are immutable and the catalog knows each one's size and SHA-256, so a copy is fetched
with one GET (no HEAD, no LIST), checked against both, and published under a name derived from its
URI; a later query finds it by name and size and makes no request at all.

Several processes share one cache folder without a coordinator:

- a copy is written under a unique temporary name and renamed into place, so an entry is always
  complete; two processes fetching the same object publish identical bytes, and the second finds
  the first's copy already there;
- a reader holds a shared ``flock`` on each copy it hands out until `ObjectCache.release`; eviction
  takes a non-blocking exclusive lock and skips what it cannot lock, so no running query loses a file;
- a reader re-checks, under its lock, that the name still points at the file it locked, so a copy
  evicted between its ``open`` and its lock counts as a miss.

Recency is the file's mtime, touched on every hit. Temporary files start with a dot and are never
entries; those a killed process left are removed once older than `STALE_SECONDS`.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ticklake.errors import ConfigError, StorageError
from ticklake.storage.files import discard, publish, temp_name
from ticklake.storage.objects import S3Access

if TYPE_CHECKING:
    from ticklake.config import LakeConfig
    from ticklake.storage.ranges import RangePlan

STALE_SECONDS = 600  # a temporary file untouched this long belongs to a process that died mid-download
LOW_WATER = 0.9  # eviction frees down to this share of the bound, so the next misses need not scan
FETCH_THREADS = 8  # GETs in flight at once for one query's misses
RESCAN_SECONDS = 30.0  # how long this instance trusts its count of the folder's bytes (others fill it too)
_SUBFOLDER = re.compile(r"[0-9a-f]{2}")
_ENTRY = re.compile(r"[0-9a-f]{64}\.parquet")
_TEMP = re.compile(r"\.[0-9a-f]{64}\.parquet\.[0-9a-f]+\.tmp")


def entry_name(uri: str) -> str:
    """The cache file of an object, relative to the cache folder: a hash of its URI, spread over 256 folders.

    >>> entry_name("s3://b/lake/ticks/tick_type=last/date=2022-01-07/1-a.parquet")
    'c9/c945814092b17d165304ab04328718ad7ffd7802c94acc0e29c70f2ca1ddf118.parquet'
    """
    digest = hashlib.sha256(uri.encode()).hexdigest()
    return f"{digest[:2]}/{digest}.parquet"


class CachedObject(NamedTuple):
    """An object as the catalog knows it: URI, size in bytes, SHA-256 (None: not recorded); or, with
    `plan`, the slice of it that holds the plan's row groups (`size`: the slice's), fetched by its
    spans and verified by its pages' CRC-32s."""

    uri: str
    size: int
    sha256: str | None
    plan: RangePlan | None = None

    @property
    def key(self) -> str:
        """What the entry is named after: the URI, and for a slice its row groups and byte spans."""
        if self.plan is None:
            return self.uri
        groups = ",".join(map(str, self.plan.row_groups))
        spans = ",".join(f"{start}-{start + length - 1}" for start, length in self.plan.spans)
        return f"{self.uri}#row_groups={groups}&bytes={spans}"


@dataclass
class CacheStats:
    """What one cache instance did: hits, misses, GET requests made and bytes they fetched."""

    hits: int = 0
    misses: int = 0
    requests: int = 0
    bytes_fetched: int = 0


@dataclass(frozen=True)
class CacheUsage:
    """Entries and bytes in a cache folder (for `ObjectCache.clear`: what was removed)."""

    folder: Path
    entries: int
    bytes: int
    max_bytes: int
    locked: int = 0  # clear(): entries left because a running reader holds them

    def summary(self) -> str:
        """One line: where the cache is, how many objects it holds, and how full it is."""
        if self.max_bytes == 0:
            return f"{self.folder}: {_objects(self.entries)}, {self.bytes:,} bytes (cache off: cache_bytes is 0)"
        share = 100 * self.bytes / self.max_bytes
        return f"{self.folder}: {_objects(self.entries)}, {self.bytes:,} of {self.max_bytes:,} bytes used ({share:.1f}%)"

    def cleared(self) -> str:
        """One line: what a clear removed, and what it left because a reader holds it."""
        left = f"; {self.locked:,} in use by a running reader left" if self.locked else ""
        return f"cleared {self.folder}: removed {_objects(self.entries)} ({self.bytes:,} bytes){left}"


class ObjectCache:
    """A read-through cache of immutable objects in `folder`, bounded by `max_bytes` (0: off).

    `access` reaches the object store; without it the cache can be inspected and cleared, not filled.
    """

    def __init__(self, folder: Path, max_bytes: int, access: S3Access | None = None) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.access = access
        self.stats = CacheStats()
        self._held: dict[Path, int] = {}  # entry -> fd holding its shared lock
        self._known: tuple[float, int] | None = None  # (when scanned, bytes then + bytes fetched since)

    def open(self, uri: str, size: int, sha256: str | None) -> Path | None:
        """The path of a complete, verified local copy of `uri`, locked until `release`; None if it cannot be cached.

        A hit touches the copy (it becomes the most recently used); a miss fetches the object with
        one GET, checks its size and SHA-256, publishes it and evicts the least recently used
        entries beyond the bound. None (the object larger than the bound, or the cache off) means:
        read the URI directly. A fetched object that does not match raises StorageError and is not kept.
        """
        return self.open_many([CachedObject(uri, size, sha256)])[0]

    def open_many(self, objects: Sequence[CachedObject]) -> list[Path | None]:
        """`open` for each of `objects`, the misses fetched at once (up to `FETCH_THREADS` GETs in flight).

        A query's objects are independent and each GET waits mostly on the network, so a query on an
        empty cache waits about as long as for its largest object, not for the sum of them.
        """
        out: list[Path | None] = [None] * len(objects)
        missed: list[int] = []
        for i, o in enumerate(objects):
            if self.max_bytes == 0 or o.size > self.max_bytes:
                continue
            out[i] = self._hit(o)
            if out[i] is None:
                missed.append(i)
        self.stats.misses += len(missed)
        if len(missed) > 1:
            fetched = list(fetch_pool().map(self._fetch, [objects[i] for i in missed]))
        else:
            fetched = [self._fetch(objects[i]) for i in missed]
        self.stats.requests += len(fetched)
        self.stats.bytes_fetched += sum(fetched)
        for i in missed:
            out[i] = self._locked_after_fetch(objects[i])
        return out

    def _hit(self, o: CachedObject) -> Path | None:
        """The locked, touched copy of `o` if it is cached (counted as a hit), else None."""
        path = self.folder / entry_name(o.key)
        fd = self._held.pop(path, None)
        if fd is not None and not _is_entry(fd, path, o.size):
            os.close(fd)
            fd = None
        if fd is None:
            fd = _lock_entry(path, o.size)
        if fd is None:
            return None
        self.stats.hits += 1
        self._held[path] = fd
        _touch(path)
        return path

    def _locked_after_fetch(self, o: CachedObject) -> Path:
        """Lock the copy just fetched; a concurrent eviction may take it before the lock: fetch again."""
        path = self.folder / entry_name(o.key)
        for attempt in range(3):
            if attempt:
                self.stats.requests += 1
                self.stats.bytes_fetched += self._fetch(o)
            fd = _lock_entry(path, o.size)
            if fd is not None:
                self._held[path] = fd
                self._added(o.size)
                return path
        raise StorageError(f"{o.uri}: the cached copy in {self.folder} was evicted as soon as it was fetched; raise cache_bytes")

    def release(self) -> None:
        """Close the locked copies this instance holds: other processes may evict them again."""
        held, self._held = self._held, {}
        for fd in held.values():
            os.close(fd)

    def contains(self, uri: str, size: int) -> bool:
        """Whether a copy of `uri` with `size` bytes is cached (it may still be evicted: `open` locks it)."""
        try:
            return (self.folder / entry_name(uri)).stat().st_size == size
        except (FileNotFoundError, NotADirectoryError):
            return False

    def usage(self) -> CacheUsage:
        """How many objects and bytes the cache holds now (temporary files of downloads are not entries)."""
        entries = [size for _, size, _ in self._entries()]
        return CacheUsage(self.folder, len(entries), sum(entries), self.max_bytes)

    def clear(self) -> CacheUsage:
        """Remove every entry no running reader holds, and stale temporary files; return what was removed."""
        removed = removed_bytes = locked = 0
        for _, size, path in self._entries(clean=True):
            if _remove_unlocked(path):
                removed, removed_bytes = removed + 1, removed_bytes + size
            else:
                locked += 1
        return CacheUsage(self.folder, removed, removed_bytes, self.max_bytes, locked)

    # -- filling and evicting ----------------------------------------------------------------

    def _fetch(self, o: CachedObject) -> int:
        """Download `o` (one GET, or one per span of a slice) into a temporary file beside its entry,
        verify it, publish it; return the bytes fetched. Safe from several threads at once (it
        touches no counter)."""
        path = self.folder / entry_name(o.key)
        tmp = temp_name(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if o.plan is None:
                got, digest = self._access().download(o.uri, tmp)
                if got != o.size:
                    raise StorageError(f"{o.uri}: fetched {got:,} bytes, the catalog records {o.size:,}; not cached")
                if o.sha256 and digest != o.sha256:
                    raise StorageError(f"{o.uri}: SHA-256 of the fetched object differs from the catalog's; not cached")
            else:
                got = self._fetch_slice(o.uri, o.plan, tmp)
            self._publish(tmp, path, o.size)
            return got
        except OSError as e:
            raise StorageError(f"{o.uri}: cannot cache in {self.folder}: {e.strerror or e}") from e
        finally:
            discard(tmp)  # gone already when published

    def _fetch_slice(self, uri: str, plan: RangePlan, tmp: Path) -> int:
        from ticklake.storage.ranges import MAGIC, verify_slice  # noqa: PLC0415 - only ranged reads need it

        got = 0
        with open(tmp, "wb") as out:
            out.write(MAGIC)
            for span in plan.spans:
                n, _ = self._access().download_into(uri, out, span)
                if n != span[1]:
                    raise StorageError(f"{uri}: fetched {n:,} bytes of a {span[1]:,}-byte range; not cached")
                got += n
            out.write(plan.tail)
        try:
            verify_slice(tmp, plan)
        except StorageError as e:
            raise StorageError(f"{uri}: the row groups fetched are damaged ({e}); not cached") from e
        return got

    def _publish(self, tmp: Path, path: Path, size: int) -> None:
        """Rename a verified copy into place; a valid copy another process published first is kept."""
        fd = _lock_entry(path, size)
        if fd is not None:  # another process fetched it meanwhile: same bytes, keep theirs
            os.close(fd)
            return
        try:
            # Exclusive unless a damaged copy (wrong size) is there to be replaced: a valid copy
            # another reader has locked is never renamed over. The copy's bytes are synced before
            # the rename; the folder is not: a rename lost in a power cut is only a miss later.
            publish(tmp, path, exclusive=not path.exists(), sync_dir=False)
        except FileExistsError:
            pass  # published by another process between the check and the rename

    def _added(self, size: int) -> None:
        """Count a new copy; scan and evict when the folder may be over its bound (or was counted long ago)."""
        now = time.monotonic()
        if self._known is not None and now - self._known[0] < RESCAN_SECONDS and self._known[1] + size <= self.max_bytes:
            self._known = (self._known[0], self._known[1] + size)
            return
        self._known = (now, self._evict())

    def _evict(self) -> int:
        """Remove least recently used entries nobody holds until the total is within the bound; return the total.

        Over the bound, it frees down to `LOW_WATER` of it: a full cache then scans once per tenth
        of its bound fetched, not on every miss (a scan stats every entry).
        """
        entries = sorted(self._entries(clean=True))
        total = sum(size for _, size, _ in entries)
        if total <= self.max_bytes:
            return total
        for _, size, path in entries:
            if total <= self.max_bytes * LOW_WATER:
                break
            if path not in self._held and _remove_unlocked(path):
                total -= size
        return total

    def _entries(self, *, clean: bool = False) -> list[tuple[float, int, Path]]:
        """(mtime, size, path) of every entry; with `clean`, remove temporary files left by dead processes."""
        out: list[tuple[float, int, Path]] = []
        stale = time.time() - STALE_SECONDS
        for sub in _scan(self.folder):
            if not (sub.is_dir(follow_symlinks=False) and _SUBFOLDER.fullmatch(sub.name)):
                continue
            for item in _scan(Path(sub.path)):
                try:
                    if _ENTRY.fullmatch(item.name):
                        st = item.stat(follow_symlinks=False)
                        out.append((st.st_mtime, st.st_size, Path(item.path)))
                    elif clean and _TEMP.fullmatch(item.name) and item.stat(follow_symlinks=False).st_mtime < stale:
                        discard(Path(item.path))
                except FileNotFoundError:
                    continue  # evicted or published by another process meanwhile
        return out

    def _access(self) -> S3Access:
        if self.access is None:
            raise ConfigError(f"cache {self.folder}: opened without object-store access, so it cannot fetch")
        return self.access


def fetch_pool() -> ThreadPoolExecutor:
    """The threads that fetch (and decode) cold objects for every reader of this process, made once:
    a query on an empty cache should not wait for threads to start."""
    global _POOL  # noqa: PLW0603 - one pool per process, like the S3 client it uses
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="ticklake-fetch")
        return _POOL


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def cache_usage(config: LakeConfig) -> CacheUsage:
    """The cold-object cache of `config`: folder, entries, bytes and bound (needs no lake root, no catalog)."""
    return ObjectCache(config.cache_folder, config.cache_bytes).usage()


def clear_cache(config: LakeConfig) -> CacheUsage:
    """Empty the cold-object cache of `config`, but for what running readers hold; return what was removed."""
    return ObjectCache(config.cache_folder, config.cache_bytes).clear()


def _lock_entry(path: Path, size: int) -> int | None:
    """An fd holding a shared lock on the entry at `path`, if it is there with `size` bytes; else None."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while an eviction checks and unlinks it
        if _is_entry(fd, path, size):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _is_entry(fd: int, path: Path, size: int) -> bool:
    """Whether `fd` is still the file named `path` (not evicted or replaced since) and has `size` bytes."""
    held = os.fstat(fd)
    try:
        named = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino) and held.st_size == size


def _remove_unlocked(path: Path) -> bool:
    """Delete an entry unless a reader holds it (its lock cannot be taken); True when it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        held, named = os.fstat(fd), path.stat()
        if (held.st_dev, held.st_ino) != (named.st_dev, named.st_ino):
            return False  # replaced since it was opened: the new copy is another's to judge
        path.unlink()
        return True
    except FileNotFoundError:
        return True
    finally:
        os.close(fd)


def _touch(path: Path) -> None:
    """Mark an entry as just used (its mtime orders eviction); a read-only cache stays as it is."""
    try:
        os.utime(path)
    except OSError:
        pass


def _objects(n: int) -> str:
    return f"{n:,} cached object" + ("" if n == 1 else "s")


def _scan(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []
