"""Real EUR/USD top-of-book quotes (2020-01-01 17:00-23:00), packaged for tests and the demo.

The CSV under ``lake/demo/data`` comes from the NautilusTrader project's test data
(``tests/test_data/quote_tick_data.csv``, LGPL-3.0; see ``lake/demo/data/README.md``). It gives real,
irregular market data next to the generated ticks of :mod:`ticklake.demo.synthetic`, in the same columns.

>>> t = eurusd_ticks()
>>> t.num_rows, t.column("bid_price")[0].as_py(), t.column("ask_price")[0].as_py()
(9500, 1.1212, 1.12172)
"""

from __future__ import annotations

import datetime
import math
import re
from pathlib import Path

import pyarrow as pa

from ticklake.demo.synthetic import TICK_SCHEMA

__all__ = ["EURUSD_CONTRACT_ID", "EURUSD_EXCHANGE", "EURUSD_SYMBOL", "eurusd_path", "eurusd_ticks"]

EURUSD_CONTRACT_ID = 12087792
EURUSD_SYMBOL = "EUR.USD"
EURUSD_EXCHANGE = "IDEALPRO"

# "20200101 170000065,1.121200,1.121720,0": date, HHMMSSmmm, bid, ask, volume (always 0).
_LINE = re.compile(r"(\d{4})(\d\d)(\d\d) (\d\d)(\d\d)(\d\d)(\d{3}),([^,]+),([^,]+),([^,]+)")
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def eurusd_path() -> Path:
    """Path of the packaged CSV ``lake/demo/data/eurusd_quotes_2020-01-01.csv``."""
    return Path(__file__).parent / "data" / "eurusd_quotes_2020-01-01.csv"


def eurusd_ticks(path: Path | None = None) -> pa.Table:
    """Read the quotes as ``bid_ask`` ticks with the columns of :func:`ticklake.demo.synthetic.synthetic_ticks`.

    One row per line, in file order: quotes sharing a millisecond and unchanged repeated quotes
    are real and kept. Timestamps are the vendor clock read as UTC (millisecond precision);
    ``bid_price``/``ask_price`` are ``float()`` of the file's text, so they are exact; sizes are
    null (the volume column is always 0); contract is EUR.USD on IDEALPRO (id 12087792).
    Raises ``ValueError`` naming the line if a line does not have that format.
    """
    source = eurusd_path() if path is None else Path(path)
    micros: list[int] = []
    bids: list[float] = []
    asks: list[float] = []
    for number, line in enumerate(source.read_text(encoding="ascii").splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.fullmatch(line.strip())
        try:
            if match is None:
                raise ValueError("expected 'YYYYMMDD HHMMSSmmm,bid,ask,volume'")
            y, mo, d, h, mi, s, ms = (int(g) for g in match.groups()[:7])
            when = datetime.datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=datetime.UTC)
            bid, ask = float(match[8]), float(match[9])
            float(match[10])  # volume: must be a number, but carries no size (always 0), so unused
            if not (math.isfinite(bid) and math.isfinite(ask)):
                raise ValueError("bid and ask must be finite numbers")
        except ValueError as exc:
            raise ValueError(f"{source}:{number}: bad quote line {line!r}: {exc}") from None
        micros.append((when - _EPOCH) // datetime.timedelta(microseconds=1))
        bids.append(bid)
        asks.append(ask)
    n = len(micros)
    no_float = pa.nulls(n, pa.float64())
    columns = [
        pa.array(micros, pa.int64()).cast(TICK_SCHEMA.field("timestamp").type),
        pa.array([EURUSD_CONTRACT_ID] * n, pa.int64()),
        pa.array(["bid_ask"] * n, pa.string()),
        no_float,
        no_float,
        pa.array(bids, pa.float64()),
        pa.array(asks, pa.float64()),
        no_float,
        no_float,
        pa.array([EURUSD_SYMBOL] * n, pa.string()),
        pa.array([EURUSD_EXCHANGE] * n, pa.string()),
        pa.nulls(n, pa.list_(pa.string())),
    ]
    return pa.Table.from_arrays(columns, schema=TICK_SCHEMA)
