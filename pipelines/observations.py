"""The catalog sensor: each commit the catalog records for an hour of `ticks` or `bars_1m` shows in
Dagster as a materialization of that hour's partition, whoever made it (``ticklake compact``,
``ticklake demo``, another host), with the metadata a run records as far as the catalog knows it.

Each tick reads at most BATCH snapshots after its cursor, so a long history is reported in bounded
steps. The cursor (kept in the instance, so across restarts) holds the last snapshot read, the
catalog it was read from (a catalog made again numbers its snapshots from 1 again: then it starts
over) and the snapshots that could not be reported yet.

Nothing is reported twice. A commit is skipped when its partition's latest materialization covers
it: it carries the commit's snapshot or a newer one (a run's own, or this sensor's), or it is a run
that found nothing new after the commit. A commit whose hour a run is still materializing waits
for the next tick, when that run's own event is recorded. An archive (days moved to the cold tier)
changes no hour and vacuum makes no snapshot, so neither shows; an hour whose files were replaced
since is still materialized, just newer. Hours before the first partition are not shown, and an
hour whose partition does not exist yet (the hour still open) waits until it does.
"""

# No `from __future__ import annotations`: Dagster reads the context and resource parameter
# annotations of decorated functions as classes.
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    HourlyPartitionsDefinition,
    MetadataValue,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from ticklake.build.changes import HourChange, HourChanges, hour_changes
from ticklake.datasets import BARS_1M, TICKS
from ticklake.pipelines.assets import Metadata
from ticklake.pipelines.partitions import partition_hour, partition_key
from ticklake.pipelines.resources import LakeResource
from ticklake.pipelines.settings import PARTITION_FORMAT
from ticklake.storage.layout import hour_key

SENSOR = "catalog_commits_sensor"
BATCH = 500  # snapshots read per tick: a few seconds of event writes in Dagster's SQLite storage
ASSETS = (TICKS.name, BARS_1M.name)
# Runs that may be between their commit and the recording of their materialization.
RUNNING = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


@dataclass(frozen=True)
class Cursor:
    """Where the sensor is: the catalog it reads (when its first snapshot was committed), the last
    snapshot read, the first partition it reported for, and snapshots to read again."""

    lake: str | None = None
    snapshot: int = 0
    start: str = ""
    waiting: tuple[int, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> "Cursor":
        """The cursor a tick left; a missing or unreadable one (edited in the UI) starts over, which
        reports nothing twice."""
        try:
            data = json.loads(text or "{}")
            return cls(
                data.get("lake"),
                int(data.get("snapshot", 0)),
                str(data.get("start", "")),
                tuple(int(s) for s in data.get("waiting", ())),
            )
        except (ValueError, TypeError, AttributeError):
            return cls()

    def dump(self) -> str:
        """The cursor as Dagster keeps it."""
        data = {"lake": self.lake, "snapshot": self.snapshot, "start": self.start, "waiting": list(self.waiting)}
        return json.dumps(data, sort_keys=True)


def build_catalog_sensor(partitions: HourlyPartitionsDefinition, interval: int) -> SensorDefinition:
    """The `catalog_commits_sensor` over `partitions`, evaluated every `interval` seconds."""
    first = partitions.start.strftime(PARTITION_FORMAT)

    @sensor(
        name=SENSOR,
        minimum_interval_seconds=interval,
        default_status=DefaultSensorStatus.RUNNING,
        description="Reports the hours the lake's catalog committed (by runs or not) as materializations of "
        "ticks and bars_1m, with their rows, files, bytes and snapshot.",
    )
    def catalog_commits_sensor(context: SensorEvaluationContext, lake: LakeResource) -> SensorResult:
        cursor = Cursor.parse(context.cursor)
        config = lake.lake_config()
        read = hour_changes(config, cursor.snapshot, BATCH, cursor.waiting)
        if read.lake is None:
            return SensorResult(skip_reason=SkipReason("no commits in the lake's catalog yet"), cursor=cursor.dump())
        if cursor.lake not in (None, read.lake) or cursor.snapshot > read.newest or first < cursor.start:
            context.log.info(f"another catalog, or partitions from {first} on: reading the lake's history again")
            read = hour_changes(config, 0, BATCH)
        events, waiting, skipped = report(context.instance, read, partition_hour(first))
        after = Cursor(read.lake, read.last, first, waiting)
        if not events:
            return SensorResult(skip_reason=SkipReason(_nothing(read, skipped, waiting)), cursor=after.dump())
        done = f"reported {len(events)} committed hours up to snapshot {read.last} as materializations"
        context.log.info(done)
        # A tick that requests no run counts as skipped: its reason says what it did instead.
        return SensorResult(asset_events=events, skip_reason=SkipReason(done), cursor=after.dump())

    return catalog_commits_sensor


def report(
    instance: DagsterInstance, read: HourChanges, first_hour: int, now: datetime | None = None
) -> tuple[list[AssetMaterialization], tuple[int, ...], int]:
    """The materializations to report for `read`, the snapshots to read again next tick, and how many
    changes Dagster knew of already.

    The catalog was read before the runs and the materializations are looked at here: a run that
    committed after that read is not in it, and one that finished since has its event recorded.
    """
    last_closed = int((now or datetime.now(UTC)).timestamp()) // 3600 - 1  # the newest partition
    running = _hours_in_runs(instance)
    changes = [c for c in read.changes if c.dataset in ASSETS and c.hour >= first_hour]
    latest = _latest(instance, changes, _timestamp(read.lake))
    events: list[AssetMaterialization] = []
    waiting: set[int] = set()
    for change in changes:
        if change.hour > last_closed or change.hour in running:
            waiting.add(change.snapshot)
        elif not _covered(latest.get((change.dataset, change.hour)), change):
            events.append(materialization(change))
    known = len(changes) - len(events) - sum(c.snapshot in waiting for c in changes)
    return events, tuple(sorted(waiting)[-BATCH:]), known


def materialization(change: HourChange) -> AssetMaterialization:
    """The materialization of one committed hour, as a run of its asset would have recorded it."""
    return AssetMaterialization(
        asset_key=change.dataset,
        partition=partition_key(change.hour),
        description=f"Committed to the lake's catalog as snapshot {change.snapshot} ({change.operation}); reported by {SENSOR}.",
        metadata=commit_metadata(change),
    )


def commit_metadata(change: HourChange) -> dict[str, Metadata]:
    """The keys a run of the asset records (`ticklake.pipelines.assets`) that the catalog knows for this
    commit, plus its operation and commit time; the summary's counts only when the commit was of this
    hour alone (a rebuilt catalog adds every hour in one snapshot)."""
    s = change.summary if change.whole_commit else {}
    values: dict[str, Metadata | None] = {"hour": hour_key(change.hour)}
    if change.dataset == TICKS.name:
        values.update(
            rows_in=s.get("lines"),
            rows_stored=s.get("rows_stored"),
            rows_quarantined=s.get("rows_quarantined"),
            rows_in_hour=s.get("rows_in_hour") if change.whole_commit else change.rows,
            segments=s.get("segments_consumed"),
        )
    else:
        values.update(trades=s.get("trades"), rows=s.get("rows") if change.whole_commit else change.rows)
    values.update(files=change.files, bytes=change.bytes, replaced_files=change.replaced_files)
    if change.dataset == BARS_1M.name:
        values["source_snapshot"] = s.get("source_snapshot")
    values["snapshot"] = change.snapshot
    known = {k: v for k, v in values.items() if v is not None}
    known["summary"] = _summary(change, known)
    if change.dataset == TICKS.name:
        start = float(change.hour * 3600)
        known.update(span_start=MetadataValue.timestamp(start), span_end=MetadataValue.timestamp(start + 3600))
    known.update(operation=change.operation, committed_at=MetadataValue.timestamp(change.committed_at))
    return known


def _summary(change: HourChange, values: dict[str, Metadata]) -> str:
    """One line, like a run's summary, from what the catalog knows."""
    when = f"{change.committed_at:%Y-%m-%d %H:%M:%S} UTC"
    line = f"{values['hour']}: snapshot {change.snapshot} ({change.operation}, committed {when})"
    lines, stored, quarantined = (values.get(k) for k in ("rows_in", "rows_stored", "rows_quarantined"))
    if isinstance(lines, int) and isinstance(stored, int) and isinstance(quarantined, int):
        line += f", {lines:,} lines -> {stored:,} stored, {quarantined:,} quarantined"
    rows = values.get("rows_in_hour", values.get("rows"))
    content = f"{rows:,} rows in {change.files} files" if isinstance(rows, int) else f"{change.files} files"
    size = f"{change.bytes:,} bytes, " if change.bytes is not None else ""
    what = "hour" if change.dataset == TICKS.name else "bars"
    return f"{line}; {what} now {content} ({size}{change.replaced_files} replaced)"


def _hours_in_runs(instance: DagsterInstance) -> set[int]:
    """Event hours that runs in progress materialize (one partition, or a range of them)."""
    hours: set[int] = set()
    for run in instance.get_runs(filters=RunsFilter(statuses=RUNNING)):
        tags = run.tags
        try:
            if "dagster/partition" in tags:
                hours.add(partition_hour(tags["dagster/partition"]))
            if RANGE_START in tags and RANGE_END in tags:
                hours.update(range(partition_hour(tags[RANGE_START]), partition_hour(tags[RANGE_END]) + 1))
        except ValueError:  # another code location's partitions, not hours
            continue
    return hours


Latest = dict[tuple[str, int], tuple[int | None, float]]


def _latest(instance: DagsterInstance, changes: Sequence[HourChange], since: float) -> Latest:
    """Per (asset, hour) of `changes`, the latest materialization recorded since `since`: the snapshot
    it carries (None: a run that committed nothing) and when it was recorded."""
    latest: Latest = {}
    for asset in ASSETS:
        keys = {partition_key(c.hour) for c in changes if c.dataset == asset}
        if not keys:
            continue
        ids = instance.get_latest_storage_id_by_partition(AssetKey(asset), DagsterEventType.ASSET_MATERIALIZATION, keys)
        if not ids:
            continue
        records = instance.fetch_materializations(
            AssetRecordsFilter(AssetKey(asset), storage_ids=list(ids.values())), limit=len(ids)
        ).records
        for record in records:
            event = record.asset_materialization
            if event is None or record.partition_key is None or record.timestamp < since:
                continue  # older than this catalog: about another lake that was here before
            snapshot = event.metadata.get("snapshot")
            value = snapshot.value if snapshot is not None else None
            latest[(asset, partition_hour(record.partition_key))] = (value if isinstance(value, int) else None, record.timestamp)
    return latest


def _covered(latest: tuple[int | None, float] | None, change: HourChange) -> bool:
    """Whether Dagster's latest materialization of the hour stands for this commit already."""
    if latest is None:
        return False
    snapshot, recorded = latest
    if snapshot is not None:
        return snapshot >= change.snapshot
    return recorded >= change.committed_at.timestamp()  # a run that found the hour as this commit left it


def _timestamp(committed_at: str | None) -> float:
    return datetime.fromisoformat(committed_at).timestamp() if committed_at else 0.0


def _nothing(read: HourChanges, known: int, waiting: tuple[int, ...]) -> str:
    wait = f"; {len(waiting)} snapshots wait for a run in progress or for their hour to close" if waiting else ""
    known_already = f" ({known} committed hours were known to Dagster already)" if known else ""
    return f"nothing new to report up to snapshot {read.last}{known_already}{wait}"


__all__ = ["build_catalog_sensor"]
