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
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Lake root folder (default: $TICKLAKE_ROOT, else ./lakehouse).",
)
@click.option("--verbose", "-v", is_flag=True, help="Show tracebacks of errors.")
@click.pass_context
def cli(ctx: click.Context, root: Path | None, verbose: bool) -> None:
    """ticklake: a lakehouse for market tick data.

    Ticks land as JSON Lines in a landing buffer, are compacted per hour into Hive-partitioned
    Parquet with a SQLite catalog, and are queried with DuckDB SQL that reads only the files
    the catalog cannot rule out.
    """
    ctx.obj = root


def _config(ctx: click.Context) -> LakeConfig:
    root = ctx.find_root().obj
    return LakeConfig.from_env(root=root)


@cli.command()
@click.argument("files", nargs=-1, required=True)
@click.pass_context
@catch_errors
def ingest(ctx: click.Context, files: tuple[str, ...]) -> None:
    """Validate JSONL tick files (or - for stdin) and append them to the landing buffer.

    Bad lines go to <root>/landing/_quarantine/ with file, line and reason; every valid line
    is kept. Prints one line per problem kind and exits 1 if anything was quarantined.
    Ingesting the same content again appends nothing.
    """
    from ticklake.landing.ingest import ingest_files

    config = _config(ctx)
    report = ingest_files(config, files, progress=_echo_err)
    for line in report.problems:
        _echo_err(f"quarantined {line}")
    click.echo(report.summary())
    if report.quarantined:
        where = report.quarantine_files[0].parent if report.quarantine_files else "quarantine"
        _echo_err(f"Error: {report.quarantined:,} of {report.lines:,} lines quarantined in {where}; the valid lines were kept")
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
    from ticklake.build.compaction import compact_hours, pending_hours, summarize_hours
    from ticklake.errors import ConfigError
    from ticklake.storage.layout import parse_hour

    if bool(hours) == all_hours:
        raise ConfigError("give either --hour YYYY-MM-DDTHH (one or more) or --all")
    config = _config(ctx)
    chosen = pending_hours(config) if all_hours else [parse_hour(text) for text in hours]
    results = compact_hours(config, chosen, progress=click.echo)
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

    config = _config(ctx)
    parsed = [parse_hour(text) for text in hours]
    results = []
    for hour in parsed:
        results.append(build_bars_1m(config, hour, force=force))
        click.echo(results[-1].summary())
    click.echo(summarize_rollups(results))


@cli.command()
@click.argument("query")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format; json prints JSON Lines.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the result to FILE.parquet or FILE.csv instead of stdout.",
)
@click.option("--explain", is_flag=True, help="Print the files in the snapshot, after each pruning step, and DuckDB's plan.")
@click.option("--snapshot", type=int, help="Query this snapshot instead of the newest.")
@click.pass_context
@catch_errors
def sql(ctx: click.Context, query: str, fmt: str, output: Path | None, explain: bool, snapshot: int | None) -> None:
    """Run a DuckDB SQL QUERY over the lake (tables: ticks, bars_1m).

    Predicates on timestamp, date, hour, tick_type, contract_id, exchange and symbol prune the
    files through the catalog before DuckDB opens any file.
    """
    from ticklake.query.connection import LakeConnection
    from ticklake.query.output import write_result

    with LakeConnection(_config(ctx), snapshot=snapshot) as lake:
        if explain:
            click.echo(lake.explain(query))
            return
        if output is not None:
            from ticklake.query.output import save_result

            rows = save_result(lake, query, output)
            _echo_err(f"wrote {rows:,} rows to {output}")
            return
        relation = lake.sql(query)
        if relation is None:
            return
        n = write_result(relation.columns, _rows(relation), fmt, sys.stdout)
        if fmt == "table":
            _echo_err(f"({n:,} rows)")


def _rows(relation: Any) -> Any:
    while True:
        batch = relation.fetchmany(10_000)
        if not batch:
            return
        yield from batch


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
    click.echo(
        f"snapshot {s.snapshot}: {s.files:,} files, {s.rows:,} rows, {s.bytes:,} bytes; "
        f"landing: {s.pending_segments:,} sealed segments ({s.pending_bytes:,} bytes) waiting, "
        f"{s.consumed_segments:,} consumed"
    )


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
@click.option("--keep", is_flag=True, help="Keep an existing lake at the root instead of starting afresh.")
@click.pass_context
@catch_errors
def demo(ctx: click.Context, n_ticks: int, contracts: int, day: Any, seed: int, keep: bool) -> None:
    """The main job, end to end: a synthetic trading day plus real EUR/USD quotes are
    ingested, compacted and queried, with pruning statistics.

    Starts from an empty lake at the root unless --keep (a root that is not a ticklake
    lake is never deleted).
    """
    from ticklake.demo.run import run_demo

    run_demo(_config(ctx), n_ticks=n_ticks, contracts=contracts, day=day.date(), seed=seed, fresh=not keep, echo=click.echo)


def main() -> None:
    """Console entry point."""
    cli(prog_name="ticklake")


if __name__ == "__main__":
    main()
