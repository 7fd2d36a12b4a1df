"""What `GetSqlInfo` tells a Flight SQL client about this server: ODBC-style facts in a dense union.

The schema is fixed by the protocol (``CommandGetSqlInfo`` in FlightSql.proto): one row per fact,
``info_name: uint32`` and ``value: dense_union<string_value, bool_value, bigint_value,
int32_bitmask, string_list, int32_to_int32_list_map>``.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pyarrow as pa

SQL_INFO_SCHEMA = pa.schema(
    [
        pa.field("info_name", pa.uint32(), nullable=False),
        pa.field(
            "value",
            pa.dense_union(
                [
                    pa.field("string_value", pa.utf8()),
                    pa.field("bool_value", pa.bool_()),
                    pa.field("bigint_value", pa.int64()),
                    pa.field("int32_bitmask", pa.int32()),
                    pa.field("string_list", pa.list_(pa.field("item", pa.utf8()))),
                    pa.field("int32_to_int32_list_map", pa.map_(pa.int32(), pa.list_(pa.field("item", pa.int32())))),
                ],
                type_codes=[0, 1, 2, 3, 4, 5],
            ),
            nullable=False,
        ),
    ]
)
_CODES = {str: 0, bool: 1, int: 3, list: 4}  # Python type -> union member (ints are the protocol's int32 facts)
_CASE_INSENSITIVE = 1  # SqlSupportedCaseSensitivity
_NULLS_AT_END = 3  # SqlNullOrdering: DuckDB sorts NULLs last by default


def facts(statement_timeout_ms: int) -> dict[int, str | bool | int | list[str]]:
    """The facts this server reports, by SqlInfo number."""
    import ticklake  # noqa: PLC0415 - the version, read when asked

    with duckdb.connect() as con:
        keywords = [r[0].upper() for r in con.execute("SELECT keyword_name FROM duckdb_keywords() ORDER BY 1").fetchall()]
    return {
        0: "ticklake",  # FLIGHT_SQL_SERVER_NAME
        1: _version(ticklake.__name__),  # FLIGHT_SQL_SERVER_VERSION
        2: pa.__version__,  # FLIGHT_SQL_SERVER_ARROW_VERSION
        3: True,  # FLIGHT_SQL_SERVER_READ_ONLY
        4: True,  # FLIGHT_SQL_SERVER_SQL
        5: False,  # FLIGHT_SQL_SERVER_SUBSTRAIT
        8: 0,  # FLIGHT_SQL_SERVER_TRANSACTION: none
        9: True,  # FLIGHT_SQL_SERVER_CANCEL
        100: statement_timeout_ms,  # FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT (prepared statement handles)
        101: 0,  # FLIGHT_SQL_SERVER_TRANSACTION_TIMEOUT
        500: False,  # SQL_DDL_CATALOG
        501: False,  # SQL_DDL_SCHEMA
        502: False,  # SQL_DDL_TABLE
        503: _CASE_INSENSITIVE,  # SQL_IDENTIFIER_CASE
        504: '"',  # SQL_IDENTIFIER_QUOTE_CHAR
        505: _CASE_INSENSITIVE,  # SQL_QUOTED_IDENTIFIER_CASE
        506: True,  # SQL_ALL_TABLES_ARE_SELECTABLE
        507: _NULLS_AT_END,  # SQL_NULL_ORDERING
        508: keywords,  # SQL_KEYWORDS
        513: "\\",  # SQL_SEARCH_STRING_ESCAPE
        529: "schema",  # SQL_SCHEMA_TERM
        531: "catalog",  # SQL_CATALOG_TERM
        532: True,  # SQL_CATALOG_AT_START
    }


def sql_info_table(known: dict[int, str | bool | int | list[str]], wanted: Iterable[int] = ()) -> pa.Table:
    """The rows of `known` asked for (all when `wanted` is empty), in the protocol's schema."""
    asked = list(wanted) or sorted(known)
    names = [i for i in asked if i in known]
    members: list[list[object]] = [[] for _ in range(6)]
    types, offsets = [], []
    for i in names:
        value = known[i]
        code = _CODES[type(value)]
        types.append(code)
        offsets.append(len(members[code]))
        members[code].append(value)
    union_type = SQL_INFO_SCHEMA.field("value").type
    children = [pa.array(members[k], type=union_type.field(k).type) for k in range(6)]
    value = pa.UnionArray.from_dense(
        pa.array(types, pa.int8()),
        pa.array(offsets, pa.int32()),
        children,
        [union_type.field(k).name for k in range(6)],
        list(range(6)),
    )
    return pa.Table.from_arrays([pa.array(names, pa.uint32()), value], schema=SQL_INFO_SCHEMA)


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"
