"""The tiers a lake's data lives in, and where a reader finds each file.

- **hot**: sealed landing segments not yet compacted (``landing/``), seen by fresh queries;
- **warm**: Parquet on local disk below the lake root; the catalog records its path relative to the root;
- **cold**: objects in a bucket (``s3://...``), recorded by their full URI, packed by ``ticklake archive``.

A reader hands DuckDB a local path for a warm file, and for a cold object the copy in the read-through
cache (fetched with one GET on a miss, its size known from the catalog: no LIST, no HEAD), or, when the
cache is off or the object larger than its bound, the object's URI for DuckDB's httpfs to read in ranges.
Where the catalog holds an object's footer and the query's conditions rule out most of its row groups,
only the spans of the others are fetched, as a slice DuckDB reads like any file (`ticklake.storage.ranges`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ticklake.config import LakeConfig
from ticklake.errors import StorageError
from ticklake.storage.objects import S3Access, is_uri, object_errors

if TYPE_CHECKING:
    import duckdb

    from ticklake.catalog import LiveFile
    from ticklake.catalog.pruning import Condition
    from ticklake.storage.cache import CachedObject, ObjectCache

Tier = Literal["hot", "warm", "cold"]
TIERS: tuple[Tier, ...] = ("hot", "warm", "cold")


def tier_of(path: str) -> Tier:
    """The tier of a catalog file path: cold when it is an object URI, else warm.

    >>> tier_of("s3://b/lake/ticks/tick_type=last/date=2022-01-07/1-a.parquet"), tier_of("lake/ticks/x.parquet")
    ('cold', 'warm')
    """
    return "cold" if is_uri(path) else "warm"


def local_path(root: Path, path: str) -> Path:
    """The local file of a warm catalog path."""
    return root / path


def delete_file(root: Path, path: str, access: S3Access | None = None) -> int:
    """Delete a stored file of either tier; return the bytes it held (0 when it was gone already)."""
    if tier_of(path) == "warm":
        local = local_path(root, path)
        try:
            size = local.stat().st_size
        except FileNotFoundError:
            return 0
        local.unlink(missing_ok=True)
        return size
    fs = (access or S3Access.from_environment()).filesystem()
    key = path.removeprefix("s3://")
    try:
        size = int(object_errors(path, lambda: fs.info(key))["size"])
    except StorageError as e:
        if "no such object" in str(e):
            return 0
        raise
    object_errors(path, lambda: fs.rm_file(key))
    return size


@dataclass
class ColdPart:
    """What DuckDB reads of a query's cold objects: whole copies (or URIs), and slices."""

    paths: list[str]
    slices: list[str]
    slice_bytes: int


class ColdReads:
    """How one reader reaches cold objects: settings resolved once, the cache opened on first use."""

    def __init__(self, config: LakeConfig) -> None:
        self.config = config
        self._access: S3Access | None = None
        self._cache: ObjectCache | None = None
        self._secret_on: set[int] = set()

    @property
    def access(self) -> S3Access:
        """The S3 settings, as the AWS SDKs resolve them (once per reader)."""
        if self._access is None:
            self._access = S3Access.from_environment()
        return self._access

    @property
    def cache(self) -> ObjectCache | None:
        """The read-through cache (None when ``cache_bytes`` is 0)."""
        if self._cache is None and self.config.cache_bytes > 0:
            from ticklake.storage.cache import ObjectCache  # noqa: PLC0415 - only cold reads need it

            self._cache = ObjectCache(self.config.cache_folder, self.config.cache_bytes, self.access)
        return self._cache

    def locations(self, files: Sequence[LiveFile], con: duckdb.DuckDBPyConnection) -> list[str]:
        """What DuckDB should read for each cold file: its cached copy, else its URI (httpfs set up on `con`)."""
        return self._locations(files, self._open([self._whole(f) for f in files]), con)

    def read(
        self,
        files: Sequence[LiveFile],
        con: duckdb.DuckDBPyConnection,
        conditions: Sequence[Condition] = (),
        footers: Mapping[int, bytes] | None = None,
        skip: Collection[str] = (),
    ) -> ColdPart:
        """`locations`, where an object whose footer is known and whose row groups the conditions
        mostly rule out is read as the slice of the others (`footers` by file id; columns in `skip`
        are not judged by row-group statistics), and one whose row groups they all rule out not at
        all. Whole objects and slices are fetched in one round."""
        from ticklake.storage.cache import CachedObject  # noqa: PLC0415 - only cold reads need it
        from ticklake.storage.ranges import plan_ranges  # noqa: PLC0415

        cache = self.cache
        wanted: list[tuple[LiveFile, CachedObject]] = []
        for f in files:
            footer = (footers or {}).get(f.file_id) if cache is not None and conditions else None
            plan = plan_ranges(footer, f.bytes, conditions, skip) if footer is not None else None
            if plan is not None and cache is not None and plan.slice_bytes <= cache.max_bytes:
                if plan.row_groups:
                    wanted.append((f, CachedObject(f.path, plan.slice_bytes, None, plan)))
            else:
                wanted.append((f, self._whole(f)))
        copies = self._locations([f for f, _ in wanted], self._open([o for _, o in wanted]), con)
        part = ColdPart([], [], 0)
        for (_, o), copy in zip(wanted, copies, strict=True):
            if o.plan is None:
                part.paths.append(copy)
            else:
                part.slices.append(copy)
                part.slice_bytes += o.size
        return part

    @staticmethod
    def _whole(f: LiveFile) -> CachedObject:
        from ticklake.storage.cache import CachedObject  # noqa: PLC0415 - only cold reads need it

        return CachedObject(f.path, f.bytes, f.sha256)

    def _open(self, objects: list[CachedObject]) -> list[Path | None]:
        """The cached copies of `objects`, the misses fetched at once (None: not cached, nor cacheable)."""
        cache = self.cache
        return cache.open_many(objects) if cache is not None and objects else [None] * len(objects)

    def _locations(self, files: Sequence[LiveFile], copies: Sequence[Path | None], con: duckdb.DuckDBPyConnection) -> list[str]:
        if None in copies:
            self.enable_httpfs(con)
        return [f.path if copy is None else str(copy) for f, copy in zip(files, copies, strict=True)]

    def enable_httpfs(self, con: duckdb.DuckDBPyConnection) -> None:
        """Load httpfs into `con` and give it the S3 secret (once per connection)."""
        if id(con) in self._secret_on:
            return
        from ticklake.query.duck import load_extension  # noqa: PLC0415 - storage does not need DuckDB at import

        load_extension(con, "httpfs")
        self.access.duckdb_secret(con)
        # httpfs copies AWS_* variables into settings that `current_setting()` shows in clear text;
        # the secret (which redacts itself) is the one place the credentials live.
        for name in ("s3_access_key_id", "s3_secret_access_key", "s3_session_token"):
            con.execute(f"SET {name} = ''")
        # Objects never change under a name: their metadata and footers may be cached in this process.
        con.execute("SET enable_http_metadata_cache = true")
        self._secret_on.add(id(con))

    def cache_stats(self) -> tuple[int, int, int, int]:
        """(hits, misses, GET requests, bytes fetched) of the read cache so far (zeros before its first use)."""
        if self._cache is None:
            return 0, 0, 0, 0
        s = self._cache.stats
        return s.hits, s.misses, s.requests, s.bytes_fetched

    def close(self) -> None:
        """Let go of the cached copies this reader holds (the cache may evict them again)."""
        if self._cache is not None:
            self._cache.release()
