"""A producer for the fault matrix: one `LandingWriter` appending unique ticks in a loop.

``python -m tests.faults.producer --root R --writer W --first-seq N --seconds T`` appends batches of
ticks numbered from N (over every hour and tick type), seals all its open segments every few
batches, and after each seal prints ``sealed <count>``: the ticks numbered N to N+count-1 are
then sealed. It stops after T seconds (0: never) or once ``--stop-file`` exists, closes the writer and prints
``closed <count>``; ``--pause`` paces it like a recorder fed by a market. Killed from outside,
it leaves its unsealed temporary files behind.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tests.faults.matrix import make_tick
from ticklake.config import LakeConfig
from ticklake.landing.writer import LandingWriter


def main() -> None:
    """Parse the options and append until the time is up (or the process is killed)."""
    parser = argparse.ArgumentParser(prog="python -m tests.faults.producer")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--writer", required=True)
    parser.add_argument("--first-seq", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--stop-file", type=Path, help="stop (and close) once this file exists")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--seal-every", type=int, default=3)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between batches (a recorder paced by its feed)")
    args = parser.parse_args()

    seq = args.first_seq
    deadline = time.monotonic() + args.seconds if args.seconds else None
    with LandingWriter(LakeConfig(root=args.root), writer_id=args.writer) as writer:
        batches = 0
        while (deadline is None or time.monotonic() < deadline) and not (args.stop_file and args.stop_file.exists()):
            writer.append(make_tick(s) for s in range(seq, seq + args.batch))
            seq += args.batch
            batches += 1
            if batches % args.seal_every == 0:
                writer.seal()
                print(f"sealed {seq - args.first_seq}", flush=True)
            else:
                writer.flush()  # the bytes reach the file unsealed: what a kill leaves behind
            time.sleep(args.pause)
    print(f"closed {seq - args.first_seq}", flush=True)


def sealed_count(output: str) -> int:
    """The ticks a producer reported sealed (its last ``sealed``/``closed`` line)."""
    counts = [int(line.split()[1]) for line in output.splitlines() if line.startswith(("sealed ", "closed "))]
    return counts[-1] if counts else 0


if __name__ == "__main__":
    main()
