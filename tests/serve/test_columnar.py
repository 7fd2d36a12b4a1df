"""The column-wise reading of line protocol gives, for every line it takes, the record the per-line parser gives."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ticklake.serve.columnar import landing_json
from ticklake.serve.lineprotocol import PRECISIONS, parse_line

RECEIVED = 1_641_531_600_000_000_000
_WORD = st.sampled_from(["AAPL", "EUR.USD", "S1", "ARCA", "x=y", "a b", "é", '"q"', "007", "-5", "12", "0", "1.5", ""])
_NUMBER = st.sampled_from(["10.5", "0", "-0", "1e3", "1E-5", "100i", "-7i", "NaN", "007", "1.", ".5", "t", "1e999", "3u", "2.50"])
_KEY = st.sampled_from(
    ["tick_type", "contract_id", "symbol", "exchange", "price", "size", "bid_price", "ask_size", "conditions", "venue"]
)


@st.composite
def lines(draw: st.DrawFn) -> str:
    """Lines of line protocol near the column-wise path's edges: known and unknown keys, twice, odd values."""
    measurement = draw(st.sampled_from(["ticks", "last", "bid_ask", "mid_point", "trades"]))
    tags = []
    for key in draw(st.lists(st.sampled_from(["tick_type", "contract_id", "symbol", "exchange", "venue"]), max_size=4)):
        value = draw(st.sampled_from(["last", "bid_ask", "101", "007"]) if key in ("tick_type", "contract_id") else _WORD)
        tags.append(f",{key}={value}")
    fields = []
    for key in draw(st.lists(_KEY, min_size=1, max_size=5)):
        if key in ("conditions", "symbol", "venue"):
            fields.append(f'{key}="{draw(st.sampled_from(["ODD_LOT,ISO", "", "A", "x=1", "a b,c"]))}"')
        elif key == "contract_id":
            fields.append(f"{key}={draw(st.sampled_from(['101i', '7', '5.0', '-3i']))}")
        else:
            fields.append(f"{key}={draw(_NUMBER)}")
    stamp = draw(st.sampled_from(["", " 1641531600123456789", " 1", " 0", " 99999999999999999999", " 4102444800000000000"]))
    return f"{measurement}{''.join(tags)} {','.join(fields)}{stamp}"


@settings(max_examples=400, deadline=None)
@given(st.lists(lines(), min_size=1, max_size=20), st.sampled_from(sorted(PRECISIONS)))
def test_every_line_taken_column_wise_is_the_per_line_parsers_record(body: list[str], precision: str) -> None:
    unit = PRECISIONS[precision]
    fast = landing_json(("\n".join(body) + "\n").encode(), unit, RECEIVED)
    assert fast is not None and len(fast) == len(body)
    for line, text in zip(body, fast, strict=True):
        if text is None:
            continue  # left to the per-line parser
        slow = json.loads(json.dumps(parse_line(line, unit_ns=unit, received_ns=RECEIVED)))
        assert json.loads(text) == slow, line


def test_plain_lines_take_the_column_wise_path_and_escapes_do_not() -> None:
    plain = b'ticks,tick_type=last,symbol=S1,contract_id=101 price=10.5,size=100i,conditions="ODD_LOT,ISO" 1641531600000000000\n'
    assert (
        landing_json(plain * 3, 1, RECEIVED)
        == [
            '{"tick_type":"last","contract_id":101,"symbol":"S1","price":10.5,"size":100,"conditions":["ODD_LOT","ISO"],'
            '"timestamp":"2022-01-07T05:00:00.000000Z"}'
        ]
        * 3
    )
    assert landing_json(b"ticks,symbol=a\\ b price=1\n", 1, RECEIVED) is None
    assert landing_json(b"\xff\n", 1, RECEIVED) is None
