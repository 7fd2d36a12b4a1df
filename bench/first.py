"""One system, one query, in a fresh process: open (attach) time and first-query time, as JSON on stdout.

``python -m bench.first SYSTEM WORKDIR SCALE_DATA_DIR QUERY``; the runner starts it once per
system and query, because a new process is what a CLI user or a scheduled job pays.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> None:
    """Print ``{"open": seconds, "first": seconds, "rows": n}``."""
    started = time.perf_counter()
    from bench.queries import make_queries
    from bench.systems import load_system

    system_name, workdir, facts_file, query_name = argv
    facts = json.loads(Path(facts_file).read_text())["facts"]
    query = next(q for q in make_queries(facts) if q.name == query_name)
    system = load_system(system_name)(Path(workdir))
    imported = time.perf_counter()
    system.open()
    opened = time.perf_counter()
    rows = system.query(query)
    done = time.perf_counter()
    system.close()
    print(json.dumps({"import": imported - started, "open": opened - imported, "first": done - opened, "rows": len(rows)}))


if __name__ == "__main__":
    main(sys.argv[1:])
