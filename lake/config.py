"""Configuration: one frozen dataclass, built at the edges (CLI options, TICKLAKE_* variables, a Dagster resource).

Each setting is declared once, as a field of its dataclass made with `setting(default, help)`; its
type is the field's annotation and its variable is TICKLAKE_<NAME>. `SETTINGS` is derived from
`LakeConfig` (and `ticklake.pipelines.settings.PIPELINE_SETTINGS` likewise), the README lists them
all, and `read_env` parses any of them. Nothing here reads the environment at import time.
"""

from __future__ import annotations

import math
import os
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from ticklake.errors import ConfigError
from ticklake.storage.objects import ObjectLocation, is_uri

_T = TypeVar("_T")
Check = Callable[[Any], str | None]  # what is wrong with a value ("must be ..."), or None when it is fine

_INTEGER = re.compile(r"[+-]?[0-9]+")


def _integer(text: str) -> int:
    if not _INTEGER.fullmatch(text):  # int() would also take ' 7 ', '1_000' and other scripts' digits
        raise ValueError(text)
    return int(text)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # nan would pass every range check and then wait or keep forever
        raise ValueError(text)
    return value


def _location(text: str) -> str | Path:
    """A folder, or an object-store URI kept as text (a Path would fold its ``//``)."""
    return text if is_uri(text) else Path(text)


# The types a setting may have: how its variable's text is parsed, and what a bad value was expected to be.
_PARSERS: dict[type, tuple[Callable[[str], Any], str]] = {
    int: (_integer, "an integer"),
    float: (_finite, "a finite number"),
    str: (str, "a string"),
    Path: (_location, "a path"),
}


def between(low: float | None = None, high: float | None = None, *, open: bool = False) -> Check:
    """A check that a number lies in [low, high] (either end may be absent), or in (low, high) when `open`.

    >>> between(1, 22)(23), between(1024)(10), between(0)(-1), between(0, 1, open=True)(1)
    ('must be between 1 and 22', 'must be at least 1024', 'must not be negative', 'must be between 0 and 1, exclusive')
    >>> between(1, 22)(5) is None
    True
    """

    def check(value: Any) -> str | None:
        below = low is not None and (value <= low if open else value < low)
        above = high is not None and (value >= high if open else value > high)
        if not (below or above):
            return None
        if low is not None and high is not None:
            return f"must be between {_show(low)} and {_show(high)}" + (", exclusive" if open else "")
        if low == 0 and not open:
            return "must not be negative"
        return f"must be at least {_show(low)}" if low is not None else f"must be at most {_show(high)}"

    return check


def _show(bound: float | None) -> str:
    return str(bound) if isinstance(bound, int) else f"{bound:g}"


@dataclass(frozen=True)
class Setting:
    """One configuration setting, derived from its dataclass field: name, type, default, help and check."""

    name: str
    type: type
    default: Any
    help: str
    check: Check | None = None

    def __post_init__(self) -> None:
        if self.type not in _PARSERS:
            raise TypeError(f"setting {self.name}: type {self.type!r} cannot be read from the environment")

    @property
    def env(self) -> str:
        """The environment variable that sets it."""
        return "TICKLAKE_" + self.name.upper()

    def parse(self, text: str) -> Any:
        """The value of its variable's `text`, by the setting's type and check; errors name the variable.

        >>> Setting("bloom_fpp", float, 0.01, "").parse("0.5")
        0.5
        >>> Setting("zstd_level", int, 3, "").parse("high")
        Traceback (most recent call last):
        ticklake.errors.ConfigError: TICKLAKE_ZSTD_LEVEL='high': expected an integer
        >>> Setting("zstd_level", int, 3, "", between(1, 22)).parse("99")
        Traceback (most recent call last):
        ticklake.errors.ConfigError: TICKLAKE_ZSTD_LEVEL='99': must be between 1 and 22
        """
        convert, expected = _PARSERS[self.type]
        try:
            value = convert(text)
        except (ValueError, OverflowError) as e:
            raise ConfigError(f"{self.env}={text!r}: expected {expected}") from e
        if self.check is not None and (problem := self.check(value)):
            raise ConfigError(f"{self.env}={text!r}: {problem}")
        return value

    def validate(self, value: Any) -> None:
        """Raise ConfigError naming the setting when `value` fails its check."""
        if self.check is not None and (problem := self.check(value)):
            raise ConfigError(f"{self.name} {problem}, got {value!r}")


def setting(default: _T, help: str, check: Check | None = None) -> _T:
    """A dataclass field that declares a setting: its default, its one-line help, and what a valid value is."""
    return field(default=default, metadata={"help": help, "check": check})


def settings_of(cls: type[Any]) -> tuple[Setting, ...]:
    """The settings a dataclass declares, one per field, typed by its annotations (worked out once per class)."""
    if cls not in _DECLARED:
        hints = get_type_hints(cls)
        derived = []
        for f in fields(cls):
            if f.metadata.get("derived"):
                continue  # worked out from other settings, not set on its own
            if "help" not in f.metadata:
                raise TypeError(f"{cls.__name__}.{f.name}: declare it with setting(default, help)")
            derived.append(Setting(f.name, hints[f.name], f.default, f.metadata["help"], f.metadata.get("check")))
        _DECLARED[cls] = tuple(derived)
    return _DECLARED[cls]


_DECLARED: dict[type[Any], tuple[Setting, ...]] = {}


def validate_settings(obj: Any) -> None:
    """Check every setting of a settings dataclass instance (its __post_init__ calls this)."""
    for s in settings_of(type(obj)):
        s.validate(getattr(obj, s.name))


def read_env(settings: Iterable[Setting], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The values of the `settings` whose variables are set and not empty (default: in os.environ), parsed."""
    env = os.environ if environ is None else environ
    return {s.name: s.parse(env[s.env]) for s in settings if env.get(s.env, "") != ""}


@dataclass(frozen=True)
class LakeConfig:
    """Everything the library needs to know about one lake."""

    root: Path = setting(
        Path("./lakehouse"),
        "Lake root folder: landing buffer, Parquet files and catalog.sqlite live below it;"
        " or s3://bucket/prefix: a lake read from another machine, through the catalog its writer publishes there.",
    )
    writer_id: str = setting("", "Name of this landing writer, used in segment file names (default: host-pid).")
    segment_max_bytes: int = setting(
        64 * 1024 * 1024, "A landing segment is sealed and a new one started past this size.", between(1024, 2**40)
    )
    segment_retention_hours: float = setting(
        168.0, "Consumed landing segments are kept this long after their commit, then deleted.", between(0)
    )
    row_group_rows: int = setting(
        32768, "Rows per Parquet row group; smaller prunes finer on contract_id, larger scans faster.", between(1, 2**31 - 1)
    )
    zstd_level: int = setting(3, "zstd compression level of Parquet files.", between(1, 22))
    bloom_fpp: float = setting(0.01, "False-positive rate of the per-file Bloom filters.", between(0, 1, open=True))
    threads: int = setting(0, "Worker threads for parsing and DuckDB (0: one per core).", between(0, 1024))
    cold_uri: str = setting("", "Object-store location of the cold tier (s3://bucket/prefix) that `archive` moves old days to.")
    archive_zstd_level: int = setting(19, "zstd level of archived (cold) files: written once, read for years.", between(1, 22))
    archive_row_group_rows: int = setting(
        16384,
        "Rows per row group of an archived file (sorted by contract_id, so one contract's ticks are in few).",
        between(1, 2**31 - 1),
    )
    cache_dir: str = setting(
        "", "Read-through cache of cold objects (default: $XDG_CACHE_HOME/ticklake, else ~/.cache/ticklake)."
    )
    cache_bytes: int = setting(
        4 * 2**30, "Bound of the cold-object cache in bytes; least recently used objects go first (0: no cache).", between(0)
    )
    fresh: int = setting(
        1, "1: queries see sealed landing segments not yet compacted (the hot tier); 0: compacted data only.", between(0, 1)
    )
    iceberg_uri: str = setting(
        "",
        "Iceberg catalog every commit is published to (sqlite:///PATH or http(s)://REST), as tables ticklake.ticks"
        " and ticklake.bars_1m; empty: only `ticklake iceberg publish` publishes.",
    )
    iceberg_warehouse: str = setting(
        "", "Where the Iceberg catalog keeps table metadata (default: PATH.warehouse beside a SQL catalog; a REST catalog's own)."
    )
    iceberg_sigv4: int = setting(
        0,
        "1: sign Iceberg REST requests with AWS SigV4 (S3 Tables, SeaweedFS); other auth: PYICEBERG_CATALOG__TICKLAKE__*.",
        between(0, 1),
    )
    # List prices for `ticklake cost` (USD, us-east-1); a GB is 2**30 bytes, as AWS bills storage.
    price_warm_gb_month: float = setting(0.08, "USD per GB-month of local disk (hot and warm tiers; EBS gp3).", between(0))
    price_cold_gb_month: float = setting(0.023, "USD per GB-month of the cold tier (S3 Standard).", between(0))
    price_cold_ia_gb_month: float = setting(0.0125, "USD per GB-month of the cold tier as S3 Standard-IA.", between(0))
    price_get_per_1000: float = setting(0.0004, "USD per 1,000 GET or HEAD requests (S3 Standard).", between(0))
    price_put_per_1000: float = setting(0.005, "USD per 1,000 PUT requests (S3 Standard).", between(0))
    price_list_per_1000: float = setting(0.005, "USD per 1,000 LIST requests (S3 Standard).", between(0))

    # A remote lake (`root` given as s3://bucket/prefix): that location, read through the catalog its
    # writer publishes there (`ticklake.storage.publication`); `root` is then the folder of the local
    # copy, <cache folder>/catalogs/<bucket>/<prefix>. Empty for a lake on this machine's disk.
    source: str = field(default="", metadata={"derived": True})

    def __post_init__(self) -> None:
        root: str | Path = self.root
        if is_uri(root):
            location = ObjectLocation.parse(str(root))
            object.__setattr__(self, "source", location.uri)
            root = self.cache_folder / "catalogs" / location.bucket / location.prefix
        object.__setattr__(self, "root", Path(root))
        validate_settings(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> LakeConfig:
        """Defaults, then TICKLAKE_* variables, then explicit `overrides` (None means: not given)."""
        values = read_env(SETTINGS, environ)
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {s.name for s in SETTINGS}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return cls(**values)

    def with_root(self, root: str | Path) -> LakeConfig:
        """The same settings for another lake root: a folder, or an s3://bucket/prefix read remotely."""
        changes: dict[str, Any] = {"root": root, "source": ""}
        return replace(self, **changes)

    @property
    def writer_name(self) -> str:
        """The writer id used in segment names: the setting, or host-pid."""
        return self.writer_id or f"{socket.gethostname()}-{os.getpid()}"

    @property
    def cache_folder(self) -> Path:
        """Where cold objects are cached: the setting, else the user's cache folder (read when asked, never at import)."""
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "ticklake"

    @property
    def catalog_path(self) -> Path:
        """The SQLite catalog file of this lake."""
        return self.root / "catalog.sqlite"


SETTINGS: tuple[Setting, ...] = settings_of(LakeConfig)
