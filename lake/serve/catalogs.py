"""Flight SQL's metadata commands: the lake's datasets (``ticks``, ``bars_1m``, ...) as tables of one catalog.

DuckDB names the in-memory database of a lake connection ``memory`` and its schema ``main``; the
datasets are listed there, so a name a client builds from this listing resolves in a query. A
table's Arrow schema is the one a ``SELECT *`` on it returns, derived from the dataset's declared
columns (reading a data file for it could fetch a cold object).
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight

from ticklake.access import open_catalog
from ticklake.config import LakeConfig
from ticklake.query.duck import connect_duckdb
from ticklake.query.quoting import quote_identifier
from ticklake.serve.sqlinfo import SQL_INFO_SCHEMA

CATALOG = "memory"
SCHEMA = "main"
TABLE_TYPE = "TABLE"

_KEYS = [("table_name", False), ("column_name", False), ("key_name", True), ("key_sequence", False)]
_FOREIGN = ["pk_catalog_name", "pk_db_schema_name", "pk_table_name", "pk_column_name", "fk_catalog_name"]
_FOREIGN += ["fk_db_schema_name", "fk_table_name", "fk_column_name", "key_sequence", "fk_key_name", "pk_key_name"]
_FOREIGN += ["update_rule", "delete_rule"]


def _utf8(name: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, pa.utf8(), nullable=nullable)


_SCHEMAS: dict[str, pa.Schema] = {
    "CommandGetCatalogs": pa.schema([_utf8("catalog_name", False)]),
    "CommandGetDbSchemas": pa.schema([_utf8("catalog_name"), _utf8("db_schema_name", False)]),
    "CommandGetTables": pa.schema(
        [_utf8("catalog_name"), _utf8("db_schema_name"), _utf8("table_name", False), _utf8("table_type", False)]
    ),
    "CommandGetTableTypes": pa.schema([_utf8("table_type", False)]),
    "CommandGetPrimaryKeys": pa.schema(
        [_utf8("catalog_name"), _utf8("db_schema_name")]
        + [pa.field(n, pa.int32() if n == "key_sequence" else pa.utf8(), nullable=null) for n, null in _KEYS]
    ),
    "CommandGetSqlInfo": SQL_INFO_SCHEMA,
}
_TYPED = {"key_sequence": pa.int32(), "update_rule": pa.uint8(), "delete_rule": pa.uint8()}
_NULLABLE = {"pk_catalog_name", "pk_db_schema_name", "fk_catalog_name", "fk_db_schema_name", "fk_key_name", "pk_key_name"}
for _name in ("CommandGetExportedKeys", "CommandGetImportedKeys", "CommandGetCrossReference"):
    _SCHEMAS[_name] = pa.schema([pa.field(n, _TYPED.get(n, pa.utf8()), nullable=n in _NULLABLE) for n in _FOREIGN])
_TABLE_SCHEMA = pa.field("table_schema", pa.binary(), nullable=False)


class Catalogs:
    """Answers the metadata commands from the lake's catalog."""

    def __init__(self, config: LakeConfig) -> None:
        self.config = config

    def schema_of(self, name: str, command: Any = None) -> pa.Schema:
        """The Arrow schema of a metadata command's result (GetTables with ``include_schema`` has one column more)."""
        if name not in _SCHEMAS:
            raise flight.FlightServerError(f"Flight SQL command {name} is not supported by ticklake serve")
        schema = _SCHEMAS[name]
        if name == "CommandGetTables" and command is not None and command.include_schema:
            schema = schema.append(_TABLE_SCHEMA)
        return schema

    def table(self, name: str, command: Any) -> pa.Table:
        """The result of a metadata command (the foreign and primary key commands: none, the lake has no keys)."""
        schema = self.schema_of(name, command)
        if name == "CommandGetCatalogs":
            return pa.table({"catalog_name": [CATALOG]}, schema=schema)
        if name == "CommandGetTableTypes":
            return pa.table({"table_type": [TABLE_TYPE]}, schema=schema)
        if name == "CommandGetDbSchemas":
            keep = _catalog_matches(command) and _like(command, "db_schema_filter_pattern", SCHEMA)
            return pa.table({"catalog_name": [CATALOG] * keep, "db_schema_name": [SCHEMA] * keep}, schema=schema)
        if name == "CommandGetTables":
            return self._tables(command, schema)
        return schema.empty_table()

    def _tables(self, command: Any, schema: pa.Schema) -> pa.Table:
        types = list(command.table_types)
        keep = _catalog_matches(command) and _like(command, "db_schema_filter_pattern", SCHEMA)
        keep = keep and (not types or TABLE_TYPE in types)
        tables = self.datasets() if keep else {}
        names = sorted(n for n in tables if _like(command, "table_name_filter_pattern", n))
        columns: dict[str, list[Any]] = {
            "catalog_name": [CATALOG] * len(names),
            "db_schema_name": [SCHEMA] * len(names),
            "table_name": names,
            "table_type": [TABLE_TYPE] * len(names),
        }
        if command.include_schema:
            columns["table_schema"] = [tables[n].serialize().to_pybytes() for n in names]
        return pa.table(columns, schema=schema)

    def datasets(self) -> dict[str, pa.Schema]:
        """Each dataset's name and the Arrow schema of ``SELECT *`` on it."""
        catalog = open_catalog(self.config)
        try:
            specs = [d.spec for d in catalog.datasets()]
        finally:
            catalog.close()
        found = {}
        with connect_duckdb() as con:  # the lake's session settings (UTC), so the types are those of a query
            for spec in specs:
                select = ", ".join(f"CAST(NULL AS {kind}) AS {quote_identifier(c)}" for c, kind in spec.columns.items())
                found[spec.name] = con.execute(f"SELECT {select} LIMIT 0").to_arrow_table().schema
        return found


def _catalog_matches(command: Any) -> bool:
    return not command.HasField("catalog") or command.catalog == CATALOG


def _like(command: Any, field: str, name: str) -> bool:
    """SQL LIKE (``%`` any run, ``_`` one character, ``\\`` escapes) of the command's pattern; no pattern matches all."""
    if not command.HasField(field):
        return True
    pattern = getattr(command, field)
    regex = "".join(
        re.escape(part[1]) if part.startswith("\\") else ".*" if part == "%" else "." if part == "_" else re.escape(part)
        for part in re.findall(r"\\.|%|_|[^\\%_]+", pattern)
    )
    return re.fullmatch(regex, name, flags=re.DOTALL) is not None
