"""`ticklake cost`: what the lake costs to keep per tier, and what a query's object-store requests cost.

Everything is priced from the catalog and the landing folder at the list prices of the ``price_*``
settings; nothing is read from the object store. A GB is 2**30 bytes, as AWS bills storage.

- **Storage**: hot (sealed landing segments), warm (local Parquet) and the consumed segments kept
  for their retention at the local-disk price; cold (objects) at S3 Standard, and again as S3
  Standard-IA, which bills an object smaller than 128 KiB as 128 KiB (`IA_MIN_BILLED_BYTES`).
- **A query**: the files its plan keeps (catalog pruning; the query is not run) and the requests
  reading them takes. Local files take none. A cold object already in the read-through cache takes
  none; one to be fetched into it, one GET of the whole object; one DuckDB's httpfs reads directly
  (cache off, or the object larger than the cache bound), `DIRECT_HEADS` HEAD and up to
  `DIRECT_GETS` GETs. ticklake never lists the bucket: the catalog names every object.
- **A glob, for comparison** (an estimate): ``read_parquet('s3://.../**/*.parquet')`` over the same
  objects without a catalog lists every key under the dataset's prefix (twice, as DuckDB did, at
  `LIST_PAGE` keys per LIST), reads every object's footer, then the column chunks of the objects
  that hold matching rows (taken to be those the catalog keeps; a Hive filter on the path would
  skip some footers, not the listing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, astuple, dataclass, field
from typing import Any

import duckdb

from ticklake.access import check_root, open_catalog
from ticklake.catalog import Catalog, Dataset, LiveFile, prune_files
from ticklake.catalog.pruning import Condition
from ticklake.config import LakeConfig
from ticklake.errors import ConfigError, QueryError
from ticklake.landing.buffer import sealed_segments
from ticklake.landing.sidecar import sidecar_path
from ticklake.query.connection import _EXPLAIN, _PLAN_ATTEMPTS
from ticklake.query.duck import connect_duckdb
from ticklake.query.fresh import BARS, TICKS, HotTier, Moved
from ticklake.query.kinds import PREDICATE_KINDS
from ticklake.query.predicates import find_table_refs
from ticklake.storage.cache import ObjectCache
from ticklake.storage.files import size_or_zero
from ticklake.storage.layout import HOUR_US, consumed_dir
from ticklake.storage.tiers import TIERS, tier_of

GB = 2**30
IA_MIN_BILLED_BYTES = 128 * 1024  # S3 Standard-IA's minimum billable object size
# Requests DuckDB 1.5.5's httpfs made, counted by the S3 server, on archived objects of 4-240 KB:
DIRECT_HEADS = 1  # an object read by URI: a HEAD for its size,
DIRECT_GETS = 3  # then its footer and column chunks (1 GET for a 4 KB object, 2-3 for 240 KB ones: the upper end)
LIST_PAGE = 1000  # keys one ListObjectsV2 request returns
GLOB_LISTS_PER_PAGE = 2  # a `**` glob listed its prefix twice (2102 keys: 6 LISTs; `*/*/*` made 16, per folder)
PUT_PART_BYTES = 50 * 2**20  # s3fs uploads an object of 100 MiB or more in parts of 50 MiB
QUERIES = 1_000_000  # the repeat count a query is also priced at


@dataclass(frozen=True)
class TierStorage:
    """One tier's files and bytes, and what keeping them costs a month."""

    tier: str
    files: int
    bytes: int
    price_gb_month: float
    billed_bytes: int  # bytes the price applies to (Standard-IA bills small objects as 128 KiB)

    @property
    def monthly(self) -> float:
        """USD per month."""
        return self.billed_bytes / GB * self.price_gb_month


@dataclass(frozen=True)
class LakeCost:
    """Storage per tier at list prices, and what uploading the cold objects cost (once)."""

    snapshot: int
    tiers: tuple[TierStorage, ...]  # hot, warm, cold (S3 Standard)
    retained: TierStorage  # consumed segments kept for `segment_retention_hours`: local disk, though no tier
    cold_ia: TierStorage  # the cold tier priced as S3 Standard-IA
    put_requests: int  # to upload the cold objects (single PUTs; multipart for large ones)
    price_put_per_1000: float

    @property
    def monthly(self) -> float:
        """USD per month for every tier and the retained segments, cold in S3 Standard."""
        return sum(t.monthly for t in self.tiers) + self.retained.monthly

    @property
    def monthly_ia(self) -> float:
        """USD per month with the cold tier in S3 Standard-IA instead."""
        return self.monthly - self.tiers[-1].monthly + self.cold_ia.monthly

    @property
    def upload_cost(self) -> float:
        """USD the PUT requests of the cold objects cost when they were written."""
        return self.put_requests / 1000 * self.price_put_per_1000

    def lines(self) -> list[str]:
        """A readable table, then what uploading cost and how prices are set."""

        def row(label: str, files: int | str, size: int | str, price: str, monthly: float) -> str:
            files, size = (f"{v:,}" if isinstance(v, int) else v for v in (files, size))
            return f"{label:<28}{files:>9}{size:>17}{price:>14}{_usd(monthly):>14}"

        rows = [f"{'tier':<28}{'files':>9}{'bytes':>17}{'USD/GB-month':>14}{'USD/month':>14}"]
        kept = (self.tiers[0], self.retained, *self.tiers[1:])
        rows.extend(row(_LABELS[t.tier], t.files, t.bytes, f"{t.price_gb_month:.4f}", t.monthly) for t in kept)
        files, size = sum(t.files for t in kept), sum(t.bytes for t in kept)
        rows.append(row("total", files, size, "", self.monthly))
        ia = self.cold_ia
        rows.append(row(_LABELS[ia.tier], ia.files, ia.bytes, f"{ia.price_gb_month:.4f}", ia.monthly))
        rows.append(row("total, cold as Standard-IA", "", "", "", self.monthly_ia))
        rows.append(f"uploading the cold objects took {self.put_requests:,} PUT requests: {_usd(self.upload_cost)} once")
        rows.append(
            "list prices from the price_* settings; 1 GB = 2**30 bytes; Standard-IA bills an object under 128 KiB as 128 KiB"
        )
        return rows

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain values (for ``--format json``)."""
        return {
            "snapshot": self.snapshot,
            "tiers": [{**asdict(t), "monthly_usd": t.monthly} for t in (*self.tiers, self.retained, self.cold_ia)],
            "monthly_usd": self.monthly,
            "monthly_usd_cold_ia": self.monthly_ia,
            "put_requests": self.put_requests,
            "upload_usd": self.upload_cost,
        }


_LABELS = {
    "hot": "hot (landing segments)",
    "warm": "warm (local Parquet)",
    "cold": "cold (S3 Standard)",
    "retained": "retained landing segments",
    "cold_ia": "cold as S3 Standard-IA",
}


def lake_cost(config: LakeConfig) -> LakeCost:
    """Files, bytes and monthly price of each tier: landing segments, then the catalog's live files by tier.

    The hot tier's bytes include the segments' Arrow sidecars; consumed segments kept for their
    retention are on local disk too, and priced beside the tiers.
    """
    _check_local(config)
    hot = [s.bytes + size_or_zero(sidecar_path(s.path)) for s in sealed_segments(config.root)]
    retained = [size_or_zero(p) for p in consumed_dir(config.root).rglob("*.jsonl")]
    with open_catalog(config) as catalog:
        snapshot = catalog.current_snapshot()
        files = [f for d in catalog.datasets() for f in catalog.live_files(d.dataset_id, snapshot=snapshot)]
    warm = [f.bytes for f in files if tier_of(f.path) == "warm"]
    cold = [f.bytes for f in files if tier_of(f.path) == "cold"]
    disk, standard = config.price_warm_gb_month, config.price_cold_gb_month
    tiers = (
        TierStorage("hot", len(hot), sum(hot), disk, sum(hot)),
        TierStorage("warm", len(warm), sum(warm), disk, sum(warm)),
        TierStorage("cold", len(cold), sum(cold), standard, sum(cold)),
    )
    ia = TierStorage(
        "cold_ia", len(cold), sum(cold), config.price_cold_ia_gb_month, sum(max(b, IA_MIN_BILLED_BYTES) for b in cold)
    )
    kept = TierStorage("retained", len(retained), sum(retained), disk, sum(retained))
    return LakeCost(snapshot, tiers, kept, ia, sum(put_requests(b) for b in cold), config.price_put_per_1000)


def _check_local(config: LakeConfig) -> None:
    """A lake read from a bucket (root ``s3://...``) keeps its files elsewhere than its local tiers: not priced here."""
    if config.source:
        raise ConfigError(f"cost: {config.source} is a lake read from object storage; price it where its root is a folder")
    check_root(config, exists=True)


def put_requests(size: int) -> int:
    """PUT-priced requests that upload an object of `size` bytes: one, or a multipart upload (start, parts, complete).

    >>> put_requests(10), put_requests(100 * 2**20), put_requests(120 * 2**20)
    (1, 4, 5)
    """
    if size < 2 * PUT_PART_BYTES:
        return 1
    return math.ceil(size / PUT_PART_BYTES) + 2


# -- a query --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reads:
    """Objects read and the requests reading them takes."""

    objects: int = 0
    bytes: int = 0  # size of the objects opened
    fetched: int = 0  # bytes that come from the object store (at most: a direct read fetches only what it needs)
    gets: int = 0
    heads: int = 0
    lists: int = 0

    def price(self, get_per_1000: float, list_per_1000: float) -> float:
        """USD for the requests (HEAD is priced as a GET, as S3 does)."""
        return (self.gets + self.heads) / 1000 * get_per_1000 + self.lists / 1000 * list_per_1000

    def __add__(self, other: Reads) -> Reads:
        return Reads(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


@dataclass(frozen=True)
class GlobEstimate:
    """What a ``read_parquet`` glob over the same objects would take, without the catalog (an estimate)."""

    patterns: tuple[str, ...]
    reads: Reads


@dataclass(frozen=True)
class QueryCost:
    """A query's reads per tier, priced per query and per `QUERIES` queries, beside a glob's estimate."""

    query: str
    snapshot: int
    pruned: bool  # False: not a single SELECT, so it reads every live file
    tiers: dict[str, Reads]
    cache_hits: int
    cache_misses: int
    direct: int  # cold objects read by httpfs, not through the cache
    glob: GlobEstimate
    price_get_per_1000: float
    price_list_per_1000: float
    notes: list[str] = field(default_factory=list)

    @property
    def reads(self) -> Reads:
        """All tiers together."""
        total = Reads()
        for r in self.tiers.values():
            total = total + r
        return total

    @property
    def price(self) -> float:
        """USD of one run's requests."""
        return self.reads.price(self.price_get_per_1000, self.price_list_per_1000)

    @property
    def glob_price(self) -> float:
        """USD of one run of the glob (estimate)."""
        return self.glob.reads.price(self.price_get_per_1000, self.price_list_per_1000)

    def lines(self) -> list[str]:
        """A readable table of reads per tier, the prices, and the glob's estimate."""
        head = f"{'tier':<7}{'objects':>9}{'bytes':>16}{'GET':>8}{'HEAD':>7}{'LIST':>7}{'fetched':>16}"
        rows = [f"query at snapshot {self.snapshot}" + ("" if self.pruned else " (not a single SELECT: every live file)"), head]

        def row(name: str, r: Reads) -> str:
            return f"{name:<7}{r.objects:>9,}{r.bytes:>16,}{r.gets:>8,}{r.heads:>7,}{r.lists:>7,}{r.fetched:>16,}"

        rows.extend(row(t, r) for t, r in self.tiers.items())
        rows.append(row("total", self.reads))
        rows.append(
            f"cold objects: {self.cache_hits:,} in the cache, {self.cache_misses:,} to fetch into it, "
            f"{self.direct:,} read directly by httpfs"
        )
        rows.append(f"price: {_usd(self.price)} per query, {_usd(self.price * QUERIES)} per {QUERIES:,} queries")
        g = self.glob.reads
        if self.glob.patterns:
            rows.append(f"estimate for DuckDB globs without the catalog: {', '.join(self.glob.patterns)}")
            rows.append(
                f"  {g.objects:,} objects, {g.lists:,} LIST, {g.gets:,} GET, {g.heads:,} HEAD: "
                f"{_usd(self.glob_price)} per query, {_usd(self.glob_price * QUERIES)} per {QUERIES:,} queries"
            )
        rows.extend(self.notes)
        return rows

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain values (for ``--format json``)."""
        return {
            "query": self.query,
            "snapshot": self.snapshot,
            "pruned": self.pruned,
            "tiers": {t: asdict(r) for t, r in self.tiers.items()},
            "total": asdict(self.reads),
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "direct": self.direct,
            "usd": self.price,
            "usd_per_million": self.price * QUERIES,
            "glob_estimate": {
                "patterns": list(self.glob.patterns),
                **asdict(self.glob.reads),
                "usd": self.glob_price,
                "usd_per_million": self.glob_price * QUERIES,
            },
            "notes": self.notes,
        }


def query_cost(config: LakeConfig, query: str) -> QueryCost:
    """Price the requests `query` takes at the current snapshot, from its pruned plan and the cache's contents.

    Nothing is fetched and the query is not run: the catalog prunes its files, the landing folder
    gives the hot segments a fresh query reads, the cache folder is looked at, and the object store
    is not asked anything.
    """
    _check_local(config)
    with open_catalog(config) as catalog:
        plan = _plan(catalog, config, query)
        live = {d.dataset_id: catalog.live_files(d.dataset_id, snapshot=plan.snapshot) for d, _ in plan.refs}
    read: dict[str, LiveFile] = {}
    for _, files in plan.refs:
        read.update((f.path, f) for f in files)  # an object two references read is fetched once
    cache = ObjectCache(config.cache_folder, config.cache_bytes)
    hits = misses = direct = 0
    tiers: dict[str, Reads] = dict.fromkeys(TIERS, Reads())
    tiers["hot"] = Reads(len(plan.hot), sum(size_or_zero(config.root / p) for p in plan.hot))
    for f in read.values():
        tier = tier_of(f.path)
        if tier != "cold":
            tiers[tier] = tiers[tier] + Reads(1, f.bytes)
        elif config.cache_bytes == 0 or f.bytes > config.cache_bytes:
            direct += 1
            tiers["cold"] = tiers["cold"] + Reads(1, f.bytes, f.bytes, DIRECT_GETS, DIRECT_HEADS)
        elif cache.contains(f.path, f.bytes):
            hits += 1
            tiers["cold"] = tiers["cold"] + Reads(1, f.bytes)
        else:
            misses += 1
            tiers["cold"] = tiers["cold"] + Reads(1, f.bytes, f.bytes, 1)
    notes = [
        "the plan comes from catalog pruning alone (the query is not run); local reads take no requests;",
        "a cold object fetched once is then in the cache: repeats of this query cost nothing until it is evicted;",
        "S3 bills no transfer to the same region; Standard-IA GETs cost more and add a retrieval fee per GB.",
    ]
    if direct:
        notes.append(
            f"a direct httpfs read takes {DIRECT_HEADS} HEAD and up to {DIRECT_GETS} GETs, and fetches at most the object."
        )
    if plan.fresh and any(d.spec.name == BARS for d, _ in plan.refs):
        notes.append("bars_1m hours a fresh query computes from their trades are not priced (their trade files are not counted).")
    glob = _glob_estimate([(d, files, live[d.dataset_id]) for d, files in plan.refs])
    return QueryCost(
        query,
        plan.snapshot,
        plan.pruned,
        tiers,
        hits,
        misses,
        direct,
        glob,
        config.price_get_per_1000,
        config.price_list_per_1000,
        notes,
    )


@dataclass(frozen=True)
class _Plan:
    """What a query reads: the pruned files of each dataset reference, and the hot segments."""

    snapshot: int
    pruned: bool  # False: not a single SELECT, so every live file
    fresh: bool
    refs: list[tuple[Dataset, list[LiveFile]]]
    hot: tuple[str, ...]  # segments read, relative to the lake root


def _plan(catalog: Catalog, config: LakeConfig, query: str) -> _Plan:
    """The files each dataset reference of `query` reads, as `LakeConnection.plan` finds them.

    The same steps (DuckDB's parser finds the references, the catalog prunes them, the hot tier
    is the matching hour folders' unconsumed segments), without the connection's views: a view
    over cold objects fetches them into the cache, which is what is being priced. A statement
    that is not a single SELECT reads every live file of every dataset.
    """
    body = _EXPLAIN.sub("", query, count=1)
    fresh = bool(config.fresh) and not config.source
    con = connect_duckdb(threads=1)
    try:
        try:
            con.extract_statements(body)
        except duckdb.Error as e:
            raise QueryError(f"cannot price the query: {str(e).splitlines()[0]}") from e
        datasets = catalog.datasets()
        found: list[tuple[Dataset, Sequence[Condition]]] | None = []
        for dataset in datasets:
            kinds = {c: PREDICATE_KINDS[t] for c, t in dataset.spec.columns.items() if t in PREDICATE_KINDS}
            refs = find_table_refs(con, body, dataset.spec.name, kinds)
            if refs is None or found is None:
                found = None
                break
            found.extend((dataset, r.predicates) for r in refs)
        hot_tier = HotTier(config.root, con)
        for _ in range(_PLAN_ATTEMPTS):
            snapshot = catalog.current_snapshot()
            try:
                if found is None:
                    files = [(d, catalog.live_files(d.dataset_id, snapshot=snapshot)) for d in datasets]
                    hot = _hot(hot_tier, catalog, datasets, (), snapshot) if fresh else []
                    return _Plan(snapshot, False, fresh, files, tuple(hot))
                files = [(d, prune_files(catalog, d, c, snapshot=snapshot).files) for d, c in found]
                hot = [p for d, c in found if fresh for p in _hot(hot_tier, catalog, [d], c, snapshot)]
                return _Plan(snapshot, True, fresh, files, tuple(dict.fromkeys(hot)))
            except Moved:
                continue  # the lake committed while the hot tier was listed: plan again on the newer snapshot
        raise QueryError(f"the lake committed during each of {_PLAN_ATTEMPTS} plans of the query; price it again")
    finally:
        con.close()


def _hot(
    hot_tier: HotTier, catalog: Catalog, datasets: Sequence[Dataset], conditions: Sequence[Condition], snapshot: int
) -> list[str]:
    """The hot segments a fresh read of `datasets` under `conditions` takes (only `ticks` holds hot rows)."""
    out: list[str] = []
    for d in datasets:
        if d.spec.name == TICKS:
            scan = hot_tier.scan(catalog, conditions, d.spec.time_column, HOUR_US - 1, snapshot)
            out.extend(s.path for s in scan.segments)
    return out


def _glob_estimate(refs: Sequence[tuple[Dataset, list[LiveFile], list[LiveFile]]]) -> GlobEstimate:
    """LIST every key under each referenced dataset's cold prefix, read every footer, and the data of
    the objects the catalog keeps; keys not in the catalog (replaced objects not yet deleted) add more."""
    patterns: dict[str, tuple[set[str], set[str]]] = {}  # pattern -> (objects under it, objects needed)
    for _, kept, live in refs:
        for f in live:
            if tier_of(f.path) == "cold":
                patterns.setdefault(_glob_of(f), (set(), set()))[0].add(f.path)
        for f in kept:
            if tier_of(f.path) == "cold":
                patterns[_glob_of(f)][1].add(f.path)
    sizes = {f.path: f.bytes for _, _, live in refs for f in live}
    total = Reads()
    for under, needed in patterns.values():
        total = total + Reads(
            objects=len(under),
            bytes=sum(sizes[p] for p in under),
            fetched=sum(sizes[p] for p in needed),
            gets=len(under) + (DIRECT_GETS - 1) * len(needed),  # every footer, then the needed objects' chunks
            lists=GLOB_LISTS_PER_PAGE * max(1, math.ceil(len(under) / LIST_PAGE)),
        )
    return GlobEstimate(tuple(sorted(patterns)), total)


def _glob_of(f: LiveFile) -> str:
    """The glob a user would read the object's dataset with: its prefix above the partition folders.

    >>> f = LiveFile(1, "s3://b/lake/ticks/tick_type=last/date=2022-01-07/1-a.parquet",
    ...              "tick_type=last/date=2022-01-07", "{}", 1, 1, 0, 0, 1)
    >>> _glob_of(f)
    "read_parquet('s3://b/lake/ticks/**/*.parquet')"
    """
    cut = f.path.find("/" + f.partition_path + "/")
    prefix = f.path[:cut] if cut > 0 else f.path.rsplit("/", 1)[0]
    return f"read_parquet('{prefix}/**/*.parquet')"


def _usd(amount: float) -> str:
    """Dollars with cents, and below a cent with two significant digits (a small lake costs fractions of one).

    >>> _usd(1234.5), _usd(0.25), _usd(0.000093), _usd(8e-07), _usd(0)
    ('$1,234.50', '$0.25', '$0.000093', '$0.00000080', '$0.00')
    """
    if amount == 0 or amount >= 0.01:
        return f"${amount:,.2f}"
    return f"${amount:.{1 - math.floor(math.log10(amount))}f}"
