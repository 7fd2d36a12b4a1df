"""Tests for catalog leases: one holder at a time per name, across threads and processes, on a real SQLite file."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ticklake.build.hours import lease_name, partition_lease
from ticklake.catalog import Catalog, CatalogError, LeaseHeld, hold_lease
from ticklake.catalog.leases import try_acquire
from ticklake.config import LakeConfig

NAME = "ticks/2022-01-07T05"

# One holder in a new process: waits for the lease, notes when it held it, lets go.
HOLDER = """
import sys, time
from ticklake.catalog import Catalog, hold_lease
path, name, out, hold = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
with Catalog(path) as catalog, hold_lease(catalog, name, f"proc-{out[-5:]}", ttl=5, wait=60):
    start = time.time()
    time.sleep(hold)
    end = time.time()
with open(out, "w") as f:
    f.write(f"{start} {end}")
"""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "catalog.sqlite"


def assert_disjoint(intervals: list[tuple[float, float]]) -> None:
    spans = sorted(intervals)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start, spans


def test_threads_never_hold_one_lease_together(path: Path) -> None:
    Catalog(path).close()
    held: list[tuple[float, float]] = []
    inside = 0
    most = 0
    guard = threading.Lock()

    def work(n: int) -> None:
        nonlocal inside, most
        with Catalog(path) as catalog, hold_lease(catalog, NAME, f"thread-{n}", ttl=5, wait=30):
            with guard:
                inside += 1
                most = max(most, inside)
            start = time.monotonic()
            time.sleep(0.05)
            end = time.monotonic()
            with guard:
                inside -= 1
                held.append((start, end))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(held) == 6 and most == 1
    assert_disjoint(held)


def test_processes_never_hold_one_lease_together(path: Path, tmp_path: Path) -> None:
    Catalog(path).close()
    outs = [tmp_path / f"held-{n}" for n in range(3)]
    procs = [
        subprocess.Popen([sys.executable, "-c", HOLDER, str(path), NAME, str(out), "0.3"], stderr=subprocess.PIPE, text=True)
        for out in outs
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    spans = [tuple(map(float, out.read_text().split())) for out in outs]
    assert_disjoint([(s[0], s[1]) for s in spans])


def test_a_held_lease_is_refused_with_its_holder_and_other_names_are_free(path: Path) -> None:
    with Catalog(path) as one, Catalog(path) as two, hold_lease(one, NAME, "run-a"):
        with pytest.raises(LeaseHeld) as info:
            with hold_lease(two, NAME, "run-b", wait=0.2):
                pass
        assert str(info.value).startswith(f"lease '{NAME}' is held by run-a until ")
        assert str(info.value).endswith("(waited 0.2s)")
        with hold_lease(two, "ticks/2022-01-07T06", "run-b"):
            pass
    with Catalog(path) as catalog:  # released on exit
        assert catalog.db.execute("SELECT count(*) FROM leases").fetchone()[0] == 0


def test_the_same_owner_name_twice_still_excludes(path: Path) -> None:
    with Catalog(path) as one, Catalog(path) as two, hold_lease(one, NAME, "run-a"):
        with pytest.raises(LeaseHeld):
            with hold_lease(two, NAME, "run-a"):
                pass


def test_a_crashed_holder_blocks_for_one_ttl_at_most(path: Path) -> None:
    with Catalog(path) as catalog:
        lease, _, _ = try_acquire(catalog, NAME, "crashed", ttl=0.3)  # taken, never renewed or released
        assert lease is not None
        with pytest.raises(LeaseHeld):
            with hold_lease(catalog, NAME, "next"):
                pass
        started = time.monotonic()
        with hold_lease(catalog, NAME, "next", wait=5) as taken:
            assert taken.owner == "next"
        assert time.monotonic() - started < 2


def test_a_live_holder_renews_its_lease_past_the_ttl(path: Path) -> None:
    with Catalog(path) as one, Catalog(path) as two:
        with hold_lease(one, NAME, "slow", ttl=0.3) as lease:
            time.sleep(0.8)  # well past one TTL
            with pytest.raises(LeaseHeld):
                with hold_lease(two, NAME, "eager"):
                    pass
            assert not lease.lost.is_set()


def test_a_lapsed_lease_taken_over_is_reported_lost_and_not_released(path: Path) -> None:
    with Catalog(path) as one, Catalog(path) as two:
        with hold_lease(one, NAME, "slow", ttl=0.6) as lease:
            # Someone else found it expired: simulate by moving the expiry into the past.
            two.db.execute("UPDATE leases SET expires_at = 0")
            with hold_lease(two, NAME, "other", ttl=30):
                assert lease.lost.wait(2)
            # the other holder released its own lease; ours stays lost
        assert two.db.execute("SELECT count(*) FROM leases").fetchone()[0] == 0


def test_partition_lease_names_dataset_and_hour(tmp_path: Path) -> None:
    config = LakeConfig(root=tmp_path / "lake")
    with partition_lease(config, "bars_1m", 455981, "run-x"):
        with Catalog(config.catalog_path) as catalog:
            rows = catalog.db.execute("SELECT name, owner FROM leases").fetchall()
    assert rows == [(lease_name("bars_1m", 455981), "run-x")] == [("bars_1m/2022-01-07T05", "run-x")]


def test_read_only_catalog_cannot_lease(path: Path) -> None:
    Catalog(path).close()
    with Catalog(path, read_only=True) as reader:
        with pytest.raises(CatalogError, match="read-only"):
            with hold_lease(reader, NAME, "x"):
                pass
