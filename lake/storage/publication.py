"""The catalog published to the bucket: one writer host publishes, any number of reader hosts read.

**The writer** of a lake whose cold tier is set (``cold_uri``) publishes after every commit
(`ticklake.build.commit`, and the end of vacuum and repair): `publish_catalog` copies
catalog.sqlite with SQLite's online backup API (one read transaction, so the copy is consistent
while other processes commit), gzips it (about 4.7x smaller) and uploads it in one PUT as
``<cold_uri>/_catalog/catalog.sqlite.gz``. The object's user metadata is its manifest (writer id
and host, snapshot, schema version, SHA-256 of the catalog, the ETag it replaced), so the catalog
and what describes it change in the same request. Its paths name no credential (`ObjectLocation`
refuses a URI that holds one), and nothing else in it is a secret.

**One writer per location.** The writer keeps ``<root>/_publication/state.json`` (its id, the ETag
it last published) and serialises its own processes' publications with a lock beside it, so a
published snapshot never goes back. A publication whose bucket copy is not the one this writer
last published is refused, naming the other writer: the check is a HEAD, and the PUT itself is
conditional (``If-Match`` that ETag, ``If-None-Match: *`` for the first), so two writers racing
are refused by the store too. A failed publication never fails the commit: it is a warning, and
the next commit publishes again.

**A reader** (``--root s3://bucket/prefix``: `LakeConfig.source`) keeps a copy below its cache
folder (``<cache>/catalogs/<bucket>/<prefix>/catalog.sqlite``, with ``publication.json``
holding its ETag) and refreshes it on every open with one conditional GET (``If-None-Match``): an
unchanged catalog is a 304 and costs that one request. It reads the lake's object files; files
whose path is relative live on the writer's disk (its warm tier) and are left out, and said so.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import socket
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ticklake.catalog import Catalog, CatalogError
from ticklake.config import LakeConfig
from ticklake.errors import ConfigError, NotFoundError, StorageError, TicklakeError
from ticklake.storage.files import discard, held_lock, temp_name, write_atomic
from ticklake.storage.objects import ObjectLocation, S3Access, is_uri, object_errors

if TYPE_CHECKING:
    import s3fs

CATALOG_OBJECT = "_catalog/catalog.sqlite.gz"
"""Where below the cold tier location the catalog is published."""

STATE = "_publication"
"""The writer's folder below its root: ``state.json`` and the lock of its publications."""

COPY_STATE = "publication.json"
"""Beside a reader's copy: the ETag and manifest of the publication it holds."""

_META = "ticklake-"  # prefix of the manifest's keys in the object's user metadata
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Published:
    """What one publication did."""

    uri: str
    snapshot: int
    bytes: int  # uploaded (gzipped)
    catalog_bytes: int
    unchanged: bool = False  # the catalog was byte for byte the one this writer last published: nothing sent

    def summary(self) -> str:
        """One line."""
        if self.unchanged:
            return f"catalog at snapshot {self.snapshot} unchanged since its last publication to {self.uri}"
        return f"published snapshot {self.snapshot} to {self.uri}: {self.bytes:,} bytes ({self.catalog_bytes:,} uncompressed)"


@dataclass(frozen=True)
class Fetched:
    """A reader's copy of a published catalog: its ETag and manifest, and whether this open downloaded it."""

    uri: str
    etag: str
    manifest: dict[str, str]
    downloaded: bool


@dataclass(frozen=True)
class LocalTier:
    """Live files a remote reader cannot read: those whose path is relative, on the writer's disk."""

    files: int = 0
    rows: int = 0

    def line(self) -> str:
        """What a remote reader is told."""
        return f"{self.files:,} files ({self.rows:,} rows) of the writer's local tier are not in the bucket"


def publication_uri(location: str) -> str:
    """The published catalog's URI below a cold tier location.

    >>> publication_uri("s3://ticks/lake/")
    's3://ticks/lake/_catalog/catalog.sqlite.gz'
    """
    return ObjectLocation.parse(location).join(CATALOG_OBJECT)


# -- the writer ---------------------------------------------------------------------------------


def publish_catalog(config: LakeConfig, *, take_over: bool = False, access: S3Access | None = None) -> Published:
    """Publish a consistent copy of the lake's catalog to ``<cold_uri>/_catalog/`` (see the module docstring).

    `take_over`: publish even though another writer's catalog is there (only once that writer is gone for good).
    """
    refuse_remote(config, "publish")
    if not config.cold_uri:
        raise ConfigError("publish: no cold tier: set TICKLAKE_COLD_URI (s3://bucket/prefix) to publish the catalog there")
    location = ObjectLocation.parse(config.cold_uri)
    uri = location.join(CATALOG_OBJECT)
    if not config.catalog_path.exists():
        raise NotFoundError(f"lake {config.root}: no catalog.sqlite to publish (nothing compacted yet?)")
    folder = config.root / STATE
    with _locked(folder / "lock"):
        state = _writer_state(folder)
        for leftover in folder.glob(".catalog.sqlite.*.tmp*"):  # a copy a killed publication left (we hold the lock)
            discard(leftover)
        if state.get("location") != uri:
            state.update(location=uri, etag=None, sha256=None, pending=None)
        tmp = temp_name(folder / "catalog.sqlite")
        try:
            snapshot, schema = _backup(config.catalog_path, tmp)
            raw = tmp.read_bytes()
        finally:
            discard(tmp)
        digest = hashlib.sha256(raw).hexdigest()
        fs = (access or S3Access.from_environment()).filesystem()  # one per process
        key = _key(location)
        remote = _head(fs, uri, location.bucket, key)
        # Ours: the copy this writer last published, or one whose answer it never saw (an upload it marked pending).
        pending = state.get("pending")
        ours = remote is not None and (remote[0] == state.get("etag") or (pending and remote[1].get("sha256") == pending))
        if remote is not None and not ours and not take_over:
            raise _another_writer(uri, remote[1], state)
        if ours and digest == state.get("sha256") and not take_over:
            return Published(uri, snapshot, 0, len(raw), unchanged=True)
        body = gzip.compress(raw, compresslevel=6, mtime=0)  # no time in the header: same catalog, same bytes
        manifest = {
            "writer": state["writer"],
            "host": _ascii(socket.gethostname()),
            "snapshot": str(snapshot),
            "schema": str(schema),
            "sha256": digest,
            "bytes": str(len(raw)),
            "published-at": datetime.now(UTC).isoformat(timespec="seconds"),
            "previous": remote[0] if remote else "",
        }
        condition = {"IfMatch": remote[0]} if remote else {"IfNoneMatch": "*"}
        _write_state(folder, {**state, "pending": digest})  # an upload whose answer is lost is still known as ours
        try:
            response = object_errors(
                uri,
                lambda: _precondition(
                    lambda: fs.call_s3(
                        "put_object",
                        Bucket=location.bucket,
                        Key=key,
                        Body=body,
                        ContentType="application/gzip",
                        Metadata={_META + k: v for k, v in manifest.items()},
                        **condition,
                    )
                ),
            )
        except _Changed:
            found = _head(fs, uri, location.bucket, key)
            raise _another_writer(uri, found[1] if found else {}, state) from None
        _write_state(folder, {**state, "etag": response["ETag"], "sha256": digest, "pending": None})
    return Published(uri, snapshot, len(body), len(raw))


def publish_quietly(config: LakeConfig) -> str | None:
    """After a commit: publish when the lake has a cold tier; a failure is a logged warning (returned), never an error.

    The data is committed whatever happens here, and the next commit publishes again.
    """
    if not config.cold_uri or config.source:
        return None
    try:
        publish_catalog(config)
    except (TicklakeError, OSError) as e:
        warning = f"warning: catalog not published: {e}; the commit stands, the next one publishes again"
        log.warning(warning)
        return warning
    return None


def _backup(catalog: Path, tmp: Path) -> tuple[int, int]:
    """Copy the catalog to `tmp` in one read transaction; return its snapshot and schema version."""
    try:
        source = sqlite3.connect(f"{catalog.absolute().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            copy = sqlite3.connect(tmp)
            try:
                source.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file: no -wal, no -shm to read it
                (snapshot,) = copy.execute("SELECT coalesce(max(snapshot_id), 0) FROM snapshots").fetchone()
                (schema,) = copy.execute("SELECT max(version) FROM schema_migrations").fetchone()
            finally:
                copy.close()
        finally:
            source.close()
    except sqlite3.Error as e:
        raise CatalogError(f"catalog {catalog}: cannot copy it for publication: {e}") from e
    return int(snapshot), int(schema)


def _writer_state(folder: Path) -> dict[str, Any]:
    """This writer's publication state; a new writer id on first use."""
    path = folder / "state.json"
    try:
        state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        state = {"writer": uuid.uuid4().hex[:12]}
        _write_state(folder, state)
    except (OSError, ValueError) as e:
        raise StorageError(f"{path}: unreadable publication state ({e})") from e
    return state


def _write_state(folder: Path, state: dict[str, Any]) -> None:
    write_atomic(folder / "state.json", (json.dumps(state, indent=1, sort_keys=True) + "\n").encode())


def _another_writer(uri: str, manifest: dict[str, str], state: dict[str, Any]) -> ConfigError:
    who = f"writer {manifest.get('writer', '?')} on {manifest.get('host', '?')}"
    when = f"snapshot {manifest.get('snapshot', '?')} at {manifest.get('published-at', '?')}"
    return ConfigError(
        f"{uri}: another writer publishes here ({who}, {when}; this lake is writer {state['writer']}):"
        " one writer per location; set another cold_uri, or `ticklake publish --take-over` once that writer is gone for good"
    )


# -- the reader ---------------------------------------------------------------------------------


def open_published(config: LakeConfig, *, write: bool = False, shared: bool = False) -> Catalog:
    """The catalog of a remote lake (`config.source`), refreshed from the bucket, opened read-only."""
    if write:
        raise ConfigError(f"lake {config.source}: a remote lake is read-only here; its catalog is written on its writer's host")
    fetch_catalog(config)
    return Catalog(config.catalog_path, read_only=True, shared=shared)


def fetch_catalog(config: LakeConfig, access: S3Access | None = None) -> Fetched:
    """Bring the reader's copy of a remote lake's catalog up to date: one conditional GET, a download only when it changed."""
    location = ObjectLocation.parse(config.source)
    uri = location.join(CATALOG_OBJECT)
    folder = config.root
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(f"{folder}: cannot keep the catalog copy of {config.source} here: {e.strerror or e}") from e
    with _locked(folder / ".lock"):
        for leftover in folder.glob(".catalog.sqlite.*.tmp"):  # a download killed midway (we hold the lock)
            discard(leftover)
        held = _copy_state(folder) if config.catalog_path.exists() else None
        fs = (access or S3Access.from_environment()).filesystem()  # one per process
        try:
            got = object_errors(uri, lambda: _get(fs, location.bucket, _key(location), held))
        except StorageError as e:
            if isinstance(e.__cause__, FileNotFoundError):
                raise NotFoundError(
                    f"{uri}: no catalog published there (no such object or bucket): its writer publishes after each"
                    " commit once its cold_uri is this location (`ticklake publish` publishes now)"
                ) from e
            raise
        if got is None:
            assert held is not None
            return Fetched(uri, held["etag"], held["manifest"], downloaded=False)
        response, body = got
        manifest = {k.removeprefix(_META): v for k, v in response.get("Metadata", {}).items() if k.startswith(_META)}
        try:
            raw = gzip.decompress(body)
        except (OSError, EOFError) as e:
            raise StorageError(f"{uri}: not a gzipped catalog ({e})") from e
        if manifest.get("sha256") not in (None, hashlib.sha256(raw).hexdigest()):
            raise StorageError(f"{uri}: downloaded catalog differs from the SHA-256 its writer published; not used")
        discard(folder / COPY_STATE)  # first: a kill before the new state is written means "download again"
        write_atomic(config.catalog_path, raw)
        etag = str(response["ETag"])
        write_atomic(folder / COPY_STATE, (json.dumps({"etag": etag, "manifest": manifest}, indent=1) + "\n").encode())
    return Fetched(uri, etag, manifest, downloaded=True)


def _copy_state(folder: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((folder / COPY_STATE).read_text(encoding="utf-8"))
        return state if isinstance(state.get("etag"), str) else None
    except (OSError, ValueError):
        return None  # no (or a damaged) record of the copy: download it again


def _get(fs: s3fs.S3FileSystem, bucket: str, key: str, held: dict[str, Any] | None) -> tuple[dict[str, Any], bytes] | None:
    """GET the object (``If-None-Match`` the held copy's ETag): its response and body, or None when unchanged (304)."""
    from fsspec.asyn import sync  # noqa: PLC0415 - s3fs is imported only for object storage

    async def get() -> tuple[dict[str, Any], bytes]:
        condition = {"IfNoneMatch": held["etag"]} if held else {}
        response = await fs._call_s3("get_object", Bucket=bucket, Key=key, **condition)
        stream = response["Body"]
        try:
            return response, await stream.read()
        finally:
            stream.close()

    try:
        result: tuple[dict[str, Any], bytes] = sync(fs.loop, get)
    except OSError as e:
        if _status(e) == 304:
            return None
        raise
    return result


def refuse_remote(config: LakeConfig, command: str) -> None:
    """Refuse a command that writes the lake when the root is a remote lake (one line, naming it)."""
    if config.source:
        raise ConfigError(f"{command}: {config.source} is a remote lake, read-only here; run {command} on its writer's host")


def local_tier(catalog: Catalog, snapshot: int | None = None) -> LocalTier:
    """The live files of `snapshot` (default: the newest) whose path is relative: on the writer's disk, not in the bucket."""
    files = [f for d in catalog.datasets() for f in catalog.live_files(d.dataset_id, snapshot=snapshot) if not is_uri(f.path)]
    return LocalTier(len(files), sum(f.rows for f in files))


# -- helpers ------------------------------------------------------------------------------------


class _Changed(Exception):
    """A conditional PUT found the object changed (HTTP 412, or 409 while another write is under way)."""


def _precondition(call: Any) -> Any:
    try:
        return call()
    except OSError as e:
        if _status(e) in (409, 412):
            raise _Changed from e
        raise


def _head(fs: s3fs.S3FileSystem, uri: str, bucket: str, key: str) -> tuple[str, dict[str, str]] | None:
    """The object's ETag and manifest, or None when there is none."""
    try:
        found = object_errors(uri, lambda: fs.call_s3("head_object", Bucket=bucket, Key=key))
    except StorageError as e:
        if isinstance(e.__cause__, FileNotFoundError):
            return None
        raise
    manifest = {k.removeprefix(_META): v for k, v in found.get("Metadata", {}).items() if k.startswith(_META)}
    return str(found["ETag"]), manifest


def _key(location: ObjectLocation) -> str:
    """The published catalog's key in its bucket."""
    return f"{location.prefix}/{CATALOG_OBJECT}" if location.prefix else CATALOG_OBJECT


def _status(e: BaseException) -> int | None:
    """The HTTP status of a failed request (s3fs raises botocore's ClientError as the cause of an OSError)."""
    for cause in (e, e.__cause__, e.__context__):
        response = getattr(cause, "response", None)
        if isinstance(response, dict):
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return int(status) if status is not None else None
    return None


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (created), held for the block: one publication, or one refresh, at a time."""
    with held_lock(path, "the publication lock"):
        yield


__all__ = [
    "CATALOG_OBJECT",
    "Fetched",
    "LocalTier",
    "Published",
    "fetch_catalog",
    "local_tier",
    "open_published",
    "publication_uri",
    "publish_catalog",
    "publish_quietly",
    "refuse_remote",
]
