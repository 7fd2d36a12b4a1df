"""A `kill -9` of `ticklake vacuum` at each of its steps leaves a consistent lake: `ticklake check`
finds nothing the next vacuum does not finish, queries return the same rows, and the next vacuum
leaves nothing behind."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.maintenance.conftest import backdate, ok, rows_of, ticklake
from tests.maintenance.test_check import findings, live
from tests.maintenance.test_vacuum import live_bytes
from ticklake.maintenance.disk import tree_bytes

# Where the kill leaves the three replaced files of the template's late merge (still on disk, or
# deleted, with only expired snapshots holding them: "pending") and the two crash leftovers.
POINTS = {
    "vacuum.before_expire": ([], 2),
    "vacuum.after_expire": (["deletes it"] * 3, 2),
    "vacuum.before_delete": (["deletes it"] * 3, 2),
    "vacuum.mid_delete": (["forgets it", "deletes it", "deletes it"], 2),
    "vacuum.before_forget": (["forgets it"] * 3, 2),
    "vacuum.after_catalog": ([], 2),
    "vacuum.mid_leftovers": ([], 1),
}


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
def test_a_kill_at_any_step_is_finished_by_the_next_vacuum(lake: Path, point: str) -> None:
    folder = Path(live(lake)["tick_type=last/date=2022-01-07/hour=06"]).parent
    leftovers = [(folder / "0000000000001-00000000dead.parquet").as_posix(), (folder / ".x.parquet.0123abcd.tmp").as_posix()]
    for rel in leftovers:
        (lake / rel).write_bytes(b"left by a crash")
        backdate(lake / rel)
    ticks, bars = rows_of(lake), rows_of(lake, "SELECT * FROM bars_1m ORDER BY ALL")

    killed = ticklake(lake, "vacuum", "--older-than", "0s", env={"TICKLAKE_FAULT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr

    after = findings(ticklake(lake, "check").stdout)
    pending, left = POINTS[point]
    assert sorted(line.rsplit(" the next vacuum ", 1)[1] for line in after if line.startswith("pending: ")) == sorted(pending)
    unfinished = [line for line in after if not line.startswith("pending: ")]
    assert len(unfinished) == left and all(line.split(": ")[1] in leftovers for line in unfinished), after
    assert (rows_of(lake), rows_of(lake, "SELECT * FROM bars_1m ORDER BY ALL")) == (ticks, bars)

    ok(ticklake(lake, "vacuum", "--older-than", "0s"))
    assert findings(ok(ticklake(lake, "check")).stdout) == []
    assert (rows_of(lake), rows_of(lake, "SELECT * FROM bars_1m ORDER BY ALL")) == (ticks, bars)
    assert tree_bytes(lake / "lake") == live_bytes(lake)
