"""What a query asked of each tier: files and objects opened, requests and bytes fetched from object storage.

The counts come from the code that fetches, never from the planner's guess: the read cache's own
counters (it makes one GET per object it misses: sizes come from the catalog, so no HEAD and no
LIST), and DuckDB's own HTTP statistics (``EXPLAIN ANALYZE``'s "HTTPFS HTTP Stats") for objects
DuckDB reads directly. ticklake never lists a bucket to answer a query: the catalog names every object.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ticklake.storage.tiers import tier_of

_STAT = re.compile(r"(in|out):\s*([0-9.]+)\s*(bytes|KiB|MiB|GiB|KB|MB|GB)|#(HEAD|GET|PUT|POST|DELETE):\s*([0-9]+)")
_UNITS = {"bytes": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "KB": 1000, "MB": 1000**2, "GB": 1000**3}


@dataclass
class HttpStats:
    """HTTP requests and bytes received, as DuckDB's httpfs counts them."""

    head: int = 0
    get: int = 0
    put: int = 0
    bytes_in: int = 0

    @classmethod
    def parse(cls, text: str) -> HttpStats:
        """The statistics of an ``EXPLAIN ANALYZE`` text (zeros when it has none).

        >>> HttpStats.parse("in: 1.5 KiB  out: 0 bytes  #HEAD: 2  #GET: 3  #PUT: 0")
        HttpStats(head=2, get=3, put=0, bytes_in=1536)
        """
        stats = cls()
        for direction, amount, unit, method, count in _STAT.findall(text):
            if direction == "in":
                stats.bytes_in += int(float(amount) * _UNITS[unit])
            elif method == "HEAD":
                stats.head += int(count)
            elif method == "GET":
                stats.get += int(count)
            elif method == "PUT":
                stats.put += int(count)
        return stats


@dataclass
class TierRequests:
    """One tier's share of a query."""

    tier: str
    files: int = 0  # files (warm) or objects (cold) the query read
    cached: int = 0  # cold objects served by the read cache without a request
    get: int = 0
    head: int = 0
    list: int = 0
    bytes_fetched: int = 0

    @property
    def requests(self) -> int:
        """GET + HEAD + LIST."""
        return self.get + self.head + self.list


@dataclass
class QueryRequests:
    """Per tier, what one query read and fetched."""

    tiers: dict[str, TierRequests] = field(default_factory=dict)
    measured_duckdb: bool = False  # DuckDB's own statistics were read (the query ran under EXPLAIN ANALYZE)

    def tier(self, name: str) -> TierRequests:
        """The counts of one tier (zeros when the query did not touch it)."""
        return self.tiers.setdefault(name, TierRequests(name))

    def lines(self) -> list[str]:
        """``--explain`` lines: one per tier touched."""
        out = ["requests by tier (counted by the read cache and by DuckDB's HTTP statistics):"]
        for name in ("hot", "warm", "cold"):
            t = self.tiers.get(name)
            if t is None or not t.files:
                continue
            if name != "cold":
                out.append(f"  {name:<5} {t.files:>6} local files, no requests")
                continue
            duck = "" if self.measured_duckdb else " (DuckDB's direct reads are counted with --analyze)"
            out.append(
                f"  {name:<5} {t.files:>6} objects ({t.cached} from the read cache): GET {t.get}, HEAD {t.head},"
                f" LIST {t.list}, {t.bytes_fetched:,} bytes fetched{duck}"
            )
        return out


def count_files(requests: QueryRequests, paths: Iterable[str]) -> None:
    """Add the files a plan reads to their tiers."""
    for path in paths:
        requests.tier(tier_of(path)).files += 1


def add_cache(requests: QueryRequests, hits: int, misses: int, gets: int, fetched: int) -> None:
    """Add what the read cache did for the query's cold objects."""
    cold = requests.tier("cold")
    cold.cached += hits
    cold.get += gets
    cold.bytes_fetched += fetched


def add_duckdb(requests: QueryRequests, analyze_text: Sequence[str]) -> None:
    """Add DuckDB's own HTTP statistics from an ``EXPLAIN ANALYZE`` output."""
    stats = HttpStats.parse("\n".join(analyze_text))
    cold = requests.tier("cold")
    cold.get += stats.get
    cold.head += stats.head
    cold.bytes_fetched += stats.bytes_in
    requests.measured_duckdb = True
