"""What the predicate finder's modules share: its results, the parse-tree types, and per-call state.

Kept apart from the package ``__init__`` so the modules that build results (scopes, shapes)
can import them without a cycle, and so one ``Context`` carries the caches of one call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ticklake.query.quoting import quote_literal

Node = dict[str, Any]
Resolver = Callable[[Node], str | None]


@dataclass(frozen=True)
class Predicate:
    """One pruning condition on a column of the referenced table."""

    column: str  # lower-case column name
    op: str  # "=", "in", "<", "<=", ">", ">="
    values: tuple[object, ...]  # one value, or several for "in"


@dataclass(frozen=True)
class TableRef:
    """One reference to the table in the SQL text."""

    start: int  # offset where the reference (schema-qualified name) begins
    end: int  # offset just past the table name
    alias: str | None  # alias as written, or None
    predicates: tuple[Predicate, ...]


@dataclass
class Context:
    """State shared by one ``find_table_refs`` call."""

    con: duckdb.DuckDBPyConnection
    sql: str
    table: str
    columns: dict[str, str]
    preds: dict[int, tuple[Predicate, ...]] = field(default_factory=dict)  # id(BASE_TABLE node) -> predicates
    refs: list[TableRef] = field(default_factory=list)
    values: dict[tuple[str, str], object] = field(default_factory=dict)
    templates: dict[str, Node] = field(default_factory=dict)
    safe_functions: frozenset[str] | None = None
    tokens: list[int] | None = None
    params: Mapping[str, object] = field(default_factory=dict)  # values of named parameters ($name)


def fetch_one(con: duckdb.DuckDBPyConnection, function: str, text: str) -> tuple[Any, ...]:
    """``SELECT function('text')``, with the text as a quoted literal: binding a parameter makes
    DuckDB import pandas, which would cost a CLI query a third of a second."""
    row = con.execute(f"SELECT {function}({quote_literal(text)})").fetchone()
    assert row is not None, "a scalar SELECT returns one row"
    return row
