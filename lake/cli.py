"""The ``ticklake`` command: a thin layer that parses options, calls one library function, prints.

One error boundary: the project's own errors (`TicklakeError`: the lake's and the catalog's) print ``Error: <message>``
on one line to stderr and exit 1 (``--verbose`` adds the traceback); anything else is a bug
and shows its traceback. Imports are lazy so that ``ticklake sql`` starts fast.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from datetime import date
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from ticklake.config import LakeConfig
from ticklake.errors import TicklakeError
from ticklake.query.output import FORMATS

F = TypeVar("F", bound=Callable[..., Any])


_format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format; json prints JSON Lines.",
)


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


def catch_errors(func: F) -> F:
    """Translate the project's errors into one line on stderr and exit status 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TicklakeError as e:
            ctx = click.get_current_context()
            if ctx.find_root().params.get("verbose"):
                traceback.print_exc()
            _echo_err(f"Error: {e}")
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--root",
    default=None,
    help="Lake root folder, or s3://bucket/prefix to read a lake its writer publishes there"
    " (default: $TICKLAKE_ROOT, else ./lakehouse).",
)
@click.option("--verbose", "-v", is_flag=True, help="Show tracebacks of errors.")
@click.pass_context
def cli(ctx: click.Context, root: str | None, verbose: bool) -> None:
    """ticklake: a lakehouse for market tick data.

    Ticks land as JSON Lines in a landing buffer, are compacted per hour into Hive-partitioned
    Parquet with a SQLite catalog, and are queried with DuckDB SQL that reads only the files
    the catalog cannot rule out.
    """
    ctx.obj = root


def _config(ctx: click.Context, *, writes: str | None = None) -> LakeConfig:
    """The config from --root and TICKLAKE_*; a command that `writes` refuses a remote (s3://) root."""
    config = LakeConfig.from_env(root=ctx.find_root().obj)
    if writes and config.source:
        from ticklake.storage.publication import refuse_remote

        refuse_remote(config, writes)
    return config


def _publish(config: LakeConfig) -> None:
    """Publish the catalog after a command that changed it outside the commit path (vacuum, repair)."""
    from ticklake.storage.publication import publish_quietly

    publish_quietly(config)  # a failure is a warning line on stderr: what the command did stands
    if config.iceberg_uri:
        from ticklake.interop.iceberg import publish_quietly as publish_iceberg

        publish_iceberg(config)


@cli.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--again", is_flag=True, help="Ingest each source whole as a new source, ignoring its checkpoint.")
@click.pass_context
@catch_errors
def ingest(ctx: click.Context, files: tuple[str, ...], again: bool) -> None:
    """Validate JSONL tick files (or - for stdin) and append them to the landing buffer.

    Bad lines go to <root>/landing/_quarantine/ with file, line and reason; every valid line
    is kept. Each source keeps a checkpoint: ingesting it again appends only the lines added
    since, and a source rewritten since is reported, not appended. Exits 1 if anything was
    quarantined or a source was rewritten.
    """
    from ticklake.landing.ingest import ingest_files

    config = _config(ctx, writes="ingest")
    report = ingest_files(config, files, progress=_echo_err, again=again)
    for warning in report.warnings:
        _echo_err(f"warning: {warning}")
    for line in report.problems:
        _echo_err(f"quarantined {line}")
    click.echo(report.summary())
    for problem in report.rewritten:
        _echo_err(f"Error: {problem}")
    if report.quarantined:
        where = report.quarantine_files[0].parent if report.quarantine_files else "quarantine"
        _echo_err(f"Error: {report.quarantined:,} of {report.lines:,} lines quarantined in {where}; the valid lines were kept")
    if report.quarantined or report.rewritten:
        sys.exit(1)  # not an error raised: the ingest itself succeeded, the exit status reports the input


@cli.command()
@click.option("--hour", "hours", multiple=True, metavar="YYYY-MM-DDTHH", help="Event hour to compact (repeatable).")
@click.option("--all", "all_hours", is_flag=True, help="Every hour with sealed, unconsumed segments.")
@click.pass_context
@catch_errors
def compact(ctx: click.Context, hours: tuple[str, ...], all_hours: bool) -> None:
    """Compact landing segments into Parquet and commit them to the catalog.

    One Parquet file per tick type and hour, sorted by (contract_id, timestamp); late
    segments for a compacted hour are merged and the hour's files replaced atomically.
    Re-running with nothing new changes nothing.
    """
    from ticklake.build.compaction import compact_hours, folder_warnings, pending_hours, summarize_hours
    from ticklake.errors import ConfigError
    from ticklake.storage.layout import parse_hour

    if bool(hours) == all_hours:
        raise ConfigError("give either --hour YYYY-MM-DDTHH (one or more) or --all")
    config = _config(ctx, writes="compact")
    chosen = pending_hours(config) if all_hours else [parse_hour(text) for text in hours]
    for warning in folder_warnings(config) if all_hours else []:
        _echo_err(f"warning: {warning}")
    results = compact_hours(config, chosen, progress=click.echo)
    for warning in (w for result in results for w in result.warnings):
        _echo_err(f"warning: {warning}")
    click.echo(summarize_hours(results))


@cli.command()
@click.option(
    "--hour", "hours", multiple=True, required=True, metavar="YYYY-MM-DDTHH", help="Event hour to roll up (repeatable)."
)
@click.option("--force", is_flag=True, help="Rebuild even when the hour's bars are up to date.")
@click.pass_context
@catch_errors
def rollup(ctx: click.Context, hours: tuple[str, ...], force: bool) -> None:
    """Rebuild the 1-minute bars (dataset bars_1m) of compacted hours from their trades.

    One Parquet file per hour, sorted by (contract_id, minute), replacing the hour's previous
    bars in one commit; an hour without trades ends with no bars.
    """
    from ticklake.build.rollups import build_bars_1m, summarize_rollups
    from ticklake.storage.layout import parse_hour

    config = _config(ctx, writes="rollup")
    parsed = [parse_hour(text) for text in hours]
    results = []
    for hour in parsed:
        results.append(build_bars_1m(config, hour, force=force))
        click.echo(results[-1].summary())
    click.echo(summarize_rollups(results))


@cli.command()
@click.argument("query")
@_format_option
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the result to FILE.parquet or FILE.csv instead of stdout.",
)
@click.option(
    "--explain",
    is_flag=True,
    help="Print the snapshot read, the files after each pruning step, the requests per tier, and DuckDB's plan.",
)
@click.option(
    "--analyze", is_flag=True, help="With --explain: run the query and add DuckDB's own counts of its object-store requests."
)
@click.option("--snapshot", type=int, help="Query this snapshot instead of the newest.")
@click.option(
    "--as-of",
    "as_of",
    metavar="TIME",
    help="Query the newest snapshot committed at or before TIME (2022-01-07T06:30:00Z, an offset, or a date).",
)
@click.option(
    "--unsafe", is_flag=True, help="Allow statements that write files, attach databases, load extensions or change settings."
)
@click.option(
    "--fresh/--no-fresh",
    default=None,
    help="Include ticks landed but not yet compacted, and bars_1m of hours not rolled up yet"
    " (default: $TICKLAKE_FRESH, on; never with --snapshot/--as-of).",
)
@click.pass_context
@catch_errors
def sql(
    ctx: click.Context,
    query: str,
    fmt: str,
    output: Path | None,
    explain: bool,
    analyze: bool,
    snapshot: int | None,
    as_of: str | None,
    unsafe: bool,
    fresh: bool | None,
) -> None:
    """Run a DuckDB SQL QUERY over the lake (tables: ticks, bars_1m).

    Predicates on timestamp, date, hour, tick_type, contract_id, exchange and symbol prune the
    files through the catalog before DuckDB opens any file. The query only reads: COPY, EXPORT,
    ATTACH, INSTALL/LOAD, SET/RESET/PRAGMA and CREATE SECRET need --unsafe. Ticks landed but
    not compacted yet are included, and bars_1m computes the hours not rolled up (--no-fresh: only
    what is committed).
    """
    from ticklake.query.connection import LakeConnection
    from ticklake.query.output import write_result

    with LakeConnection(_config(ctx), snapshot=snapshot, as_of=as_of, unsafe=unsafe, fresh=fresh) as lake:
        if lake.local_tier is not None and lake.local_tier.files:
            _echo_err(f"warning: {lake.local_tier.line()}")
        if explain:
            click.echo(lake.explain(query, analyze=analyze))
            return
        if output is not None:
            from ticklake.query.output import save_result

            rows = save_result(lake, query, output)
            _echo_err(f"wrote {rows:,} rows to {output}")
            return
        result = lake.stream(query)
        if result is None:
            return
        n = write_result(result.columns, result, fmt, sys.stdout)
        if fmt == "table":
            _echo_err(f"({n:,} rows)")


@cli.command()
@_format_option
@click.pass_context
@catch_errors
def snapshots(ctx: click.Context, fmt: str) -> None:
    """List the lake's snapshots, oldest first: when each was committed and what it changed.

    One row per snapshot: id, committed_at (UTC), operation, dataset, hour, files and rows
    added and removed. `ticklake sql --snapshot N` or `--as-of TIME` reads one of them.
    """
    from ticklake.query.history import SNAPSHOT_COLUMNS, snapshot_history
    from ticklake.query.output import write_result

    n = write_result(SNAPSHOT_COLUMNS, snapshot_history(_config(ctx)), fmt, sys.stdout)
    if fmt == "table":
        _echo_err(f"({n:,} snapshots)")


@cli.command()
@click.option("--contract", "contract_id", type=int, required=True, help="Contract id.")
@click.option("--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]), required=True, help="UTC day, YYYY-MM-DD.")
@click.pass_context
@catch_errors
def has(ctx: click.Context, contract_id: int, day: Any) -> None:
    """Does a contract have data on a day? Answered from the catalog alone (no data file is opened).

    Prints "yes: ..." or "no: ..." and exits 0 either way.
    """
    from ticklake.status import has_contract

    d: date = day.date()
    found = has_contract(_config(ctx), contract_id, d)
    if found.found:
        click.echo(f"yes: contract {contract_id} has {found.rows:,} ticks on {d} in {found.files} files")
    else:
        click.echo(f"no: contract {contract_id} has no ticks on {d}")


@cli.command()
@click.pass_context
@catch_errors
def status(ctx: click.Context) -> None:
    """Snapshot, live files, rows and bytes, and what waits in the landing buffer."""
    from ticklake.status import lake_status

    s = lake_status(_config(ctx))
    waiting = f"{s.pending_segments:,} sealed segments ({s.pending_bytes:,} bytes) waiting"
    landing = "on the writer's host" if s.source else waiting  # a remote lake's buffer is not in the bucket
    click.echo(
        f"snapshot {s.snapshot}: {s.files:,} files, {s.rows:,} rows, {s.bytes:,} bytes; "
        f"landing: {landing}, {s.consumed_segments:,} consumed"
    )
    if s.local_tier is not None and s.local_tier.files:
        click.echo(s.local_tier.line())


@cli.command()
@click.option("--ticks", "n_ticks", type=int, default=500_000, show_default=True, help="Synthetic ticks to generate.")
@click.option("--contracts", type=int, default=300, show_default=True, help="Synthetic contracts.")
@click.option(
    "--day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default="2022-01-07",
    show_default=True,
    help="Synthetic trading day (UTC).",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed of the synthetic day.")
@click.option("--keep", is_flag=True, help="Add the demo's data to the lake at the root; delete nothing.")
@click.option("--force", is_flag=True, help="Delete the lake at the root even if the demo did not make it (listed first).")
@click.pass_context
@catch_errors
def demo(ctx: click.Context, n_ticks: int, contracts: int, day: Any, seed: int, keep: bool, force: bool) -> None:
    """The main job, end to end: a synthetic trading day plus real EUR/USD quotes are
    ingested, compacted and queried, with pruning statistics.

    Starts from an empty lake: an empty root, or a lake an earlier demo made and nobody
    changed since, is reset. Any other root is refused, naming what it holds, unless --force
    (delete its catalog.sqlite, lake/ and landing/, listed first; other files stay) or --keep.
    """
    from ticklake.demo.run import run_demo

    config = _config(ctx, writes="demo")
    run_demo(config, n_ticks=n_ticks, contracts=contracts, day=day.date(), seed=seed, keep=keep, force=force, echo=click.echo)


# -- check, repair, vacuum -----------------------------------------------------------------------


@cli.command()
@click.pass_context
@catch_errors
def check(ctx: click.Context) -> None:
    """Check the catalog against storage and the counts against each other; change nothing.

    Prints one line per finding (KIND: PATH: MESSAGE) and a summary, and exits 1 when anything
    is damaged. Work in flight (a running compaction's new file, a producer's unsealed segment)
    and what the next vacuum finishes are reported, but are no damage.
    """
    from ticklake.maintenance.check import check_lake

    report = check_lake(_config(ctx, writes="check"))
    for finding in report.findings:
        click.echo(finding.line())
    click.echo(report.summary())
    if not report.clean:
        sys.exit(1)  # the check ran; its verdict is the exit status


@cli.command()
@click.option("--drop-lost", is_flag=True, help="Drop lost data files from the catalog, re-compacting from retained segments.")
@click.option("--reindex", is_flag=True, help="Rebuild the index rows of every live file, not only of incomplete ones.")
@click.option("--dry-run", is_flag=True, help="Print what would be done and change nothing.")
@click.option("--rebuild-catalog", is_flag=True, help="Rebuild a lost catalog.sqlite from the data files.")
@click.option("--force", is_flag=True, help="With --rebuild-catalog: move a damaged catalog aside and rebuild it.")
@click.pass_context
@catch_errors
def repair(ctx: click.Context, drop_lost: bool, reindex: bool, dry_run: bool, rebuild_catalog: bool, force: bool) -> None:
    """Fix what `ticklake check` finds where that is safe, and say what cannot be fixed.

    Deletes crash leftovers (printed before they go), deletes index rows without a file and
    rebuilds incomplete ones; --drop-lost drops lost files in a new snapshot. Exits 1 while
    problems are left. --rebuild-catalog rebuilds a lost catalog from the data files instead.
    """
    from ticklake.errors import ConfigError

    config = _config(ctx, writes="repair")
    if rebuild_catalog:
        if drop_lost or reindex or dry_run:
            raise ConfigError("--rebuild-catalog takes no other option than --force")
        from ticklake.maintenance.rebuild import rebuild_catalog as rebuild

        rebuilt = rebuild(config, force=force)
        for line in rebuilt.lines():
            click.echo(line)
        click.echo(rebuilt.summary())
        _publish(config)
        if rebuilt.unfixed:
            sys.exit(1)
        return
    if force:
        raise ConfigError("--force only goes with --rebuild-catalog")
    from ticklake.maintenance.repair import repair_lake

    result = repair_lake(config, drop_lost=drop_lost, reindex=reindex, dry_run=dry_run, echo=click.echo)
    click.echo(result.summary())
    _publish(config)
    if result.unfixed:
        sys.exit(1)


@cli.command()
@click.option("--older-than", "older_than", metavar="DURATION", help="Replaced and left over longer ago than: 0s, 90m, 36h, 7d.")
@click.option("--dry-run", is_flag=True, help="Print what would be deleted and delete nothing.")
@click.pass_context
@catch_errors
def vacuum(ctx: click.Context, older_than: str | None, dry_run: bool) -> None:
    """Delete data files replaced longer ago than DURATION, and crash leftovers older than it.

    Snapshots that held the deleted files are marked expired and can no longer be read; files
    an open reader may read are kept. Prints what was deleted and a summary.
    """
    from ticklake.maintenance.duration import parse_duration
    from ticklake.maintenance.vacuum import vacuum_lake

    config = _config(ctx, writes="vacuum")
    result = vacuum_lake(config, parse_duration(older_than, "--older-than"), dry_run=dry_run)
    for line in result.lines():
        click.echo(line)
    click.echo(result.summary())
    _publish(config)


@cli.command()
@click.option("--clear", is_flag=True, help="Delete every cached object, but for those a running reader holds.")
@click.pass_context
@catch_errors
def cache(ctx: click.Context, clear: bool) -> None:
    """The read-through cache of cold objects: its folder, cached objects, and bytes used of its bound.

    Needs no lake: the folder is $TICKLAKE_CACHE_DIR (else the user's cache folder), the bound
    $TICKLAKE_CACHE_BYTES. --clear removes the copies and prints what it removed and left.
    """
    from ticklake.storage.cache import cache_usage, clear_cache

    if clear:
        click.echo(clear_cache(_config(ctx)).cleared())
    else:
        click.echo(cache_usage(_config(ctx)).summary())


@cli.command()
@click.option("--older-than", "older_than", metavar="DURATION", help="Archive days that ended longer ago than: 36h, 7d.")
@click.option("--to", "to", metavar="URI", help="Cold tier location, s3://bucket/prefix (default: $TICKLAKE_COLD_URI).")
@click.option("--dry-run", is_flag=True, help="Print what would be archived and change nothing.")
@click.pass_context
@catch_errors
def archive(ctx: click.Context, older_than: str | None, to: str | None, dry_run: bool) -> None:
    """Move days older than DURATION to the cold tier: one object per day and partition (tick type).

    Each object is uploaded, read back and verified, swapped into the catalog in one commit, and
    only then are the local files deleted. Prints one line per day and a summary.
    """
    from ticklake.build.archive import archive_lake
    from ticklake.maintenance.duration import parse_duration

    seconds = parse_duration(older_than, "--older-than")
    result = archive_lake(_config(ctx, writes="archive"), seconds, to=to, dry_run=dry_run)
    for day in result.days:
        verb = "would pack" if dry_run else ("packed again" if day.repacked else "packed")
        click.echo(f"  {day.dataset} {day.partition}: {verb} {day.files_in} files, {day.rows:,} rows {day.uri}".rstrip())
    click.echo(result.summary())


@cli.group()
def iceberg() -> None:
    """The lake as Apache Iceberg tables (ticklake.ticks, ticklake.bars_1m) over its own Parquet files."""


@iceberg.command("publish")
@click.option("--uri", metavar="URI", help="Iceberg catalog: sqlite:///PATH or http(s)://REST (default: $TICKLAKE_ICEBERG_URI).")
@click.pass_context
@catch_errors
def iceberg_publish(ctx: click.Context, uri: str | None) -> None:
    """Bring the Iceberg catalog level with the lake: one Iceberg commit per table that differs.

    Files are referenced where they are, never copied. Running it again changes nothing; after
    missed commits it catches up. Prints one line per table and its metadata location.
    """
    from ticklake.interop.iceberg import publish

    result = publish(_config(ctx, writes="iceberg publish"), uri)
    for table in result.tables:
        click.echo(table.summary())
        click.echo(f"  metadata: {table.metadata_location}")


@cli.command()
@click.option("--query", metavar="SQL", help="Price this query's object-store requests instead (it is planned, not run).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True, help="Output format.")
@click.pass_context
@catch_errors
def cost(ctx: click.Context, query: str | None, fmt: str) -> None:
    """Storage per tier (hot, warm, cold) at list prices per month, or with --query what a query's requests cost.

    Prices are the price_* settings (TICKLAKE_PRICE_*); figures come from the catalog and the
    landing folder, and nothing is read from the object store.
    """
    import json

    from ticklake.cost import lake_cost, query_cost

    result = query_cost(_config(ctx), query) if query is not None else lake_cost(_config(ctx))
    if fmt == "json":
        click.echo(json.dumps(result.as_dict()))
    else:
        click.echo("\n".join(result.lines()))


@cli.command()
@click.option("--take-over", is_flag=True, help="Publish over another writer's catalog (only once that writer is gone for good).")
@click.pass_context
@catch_errors
def publish(ctx: click.Context, take_over: bool) -> None:
    """Publish the catalog to <cold_uri>/_catalog/ now, for readers on other machines (--root s3://...).

    Every commit publishes already; this is for a lake that set its cold tier only now, or after a
    failed publication. Refused when another writer publishes to the location.
    """
    from ticklake.storage.publication import publish_catalog

    click.echo(publish_catalog(_config(ctx, writes="publish"), take_over=take_over).summary())


@cli.command()
@click.option(
    "--flight",
    "flight_at",
    default="127.0.0.1:31337",
    show_default=True,
    help="HOST:PORT of Flight SQL (queries); port 0 picks one.",
)
@click.option(
    "--http",
    "http_at",
    default="127.0.0.1:9000",
    show_default=True,
    help="HOST:PORT of HTTP (line protocol and JSON Lines ingest).",
)
@click.option(
    "--tokens",
    "tokens_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File of 'ROLE SHA256' lines (default: $TICKLAKE_SERVE_TOKENS).",
)
@click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path), help="PEM certificate: both endpoints speak TLS.")
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path), help="PEM private key of --tls-cert.")
@click.option("--queries", type=int, help="Queries that run at once (default: $TICKLAKE_SERVE_QUERIES, 4).")
@click.option("--query-seconds", type=float, help="Cancel a query past this (default: $TICKLAKE_SERVE_QUERY_SECONDS, 300).")
@click.option("--query-memory", help="Memory a query may hold, e.g. 2GB (default: $TICKLAKE_SERVE_QUERY_MEMORY, DuckDB's).")
@click.pass_context
@catch_errors
def serve(
    ctx: click.Context,
    flight_at: str,
    http_at: str,
    tokens_file: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    queries: int | None,
    query_seconds: float | None,
    query_memory: str | None,
) -> None:
    """Serve the lake: Arrow Flight SQL for queries, InfluxDB/QuestDB line protocol over HTTP for ingest.

    Clients send 'authorization: Bearer TOKEN'; tokens have the role read or write (which may also
    read). Stops on SIGTERM or SIGINT once the ingest requests in flight are durable.
    """
    import logging

    from ticklake.errors import ConfigError
    from ticklake.serve.server import Server, Tls
    from ticklake.serve.settings import ServeSettings
    from ticklake.serve.tokens import Tokens

    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    config = _config(ctx)
    settings = ServeSettings.from_env(serve_queries=queries, serve_query_seconds=query_seconds, serve_query_memory=query_memory)
    tls = Tls(tls_cert, tls_key) if tls_cert is not None and tls_key is not None else None
    server = Server(config, Tokens.load(tokens_file), settings, flight_at, http_at, tls)

    def ready(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()  # a script waiting for this line reads it now, not at exit

    server.run(ready)


def main() -> None:
    """Console entry point."""
    cli(prog_name="ticklake")


if __name__ == "__main__":
    main()
