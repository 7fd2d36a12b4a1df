"""Find each reference to a table in a SELECT and the predicates that restrict it.

The query planner prunes Parquet files per table reference before DuckDB runs
a user's SQL.  To do that safely it must know, for every place the table is
named, which simple conditions (``col op constant``) are guaranteed to hold for
every row of that reference that can influence the result.  This package answers
that question with DuckDB's own parser (``json_serialize_sql``) and evaluates
constant expressions with DuckDB itself on the caller's connection, so casts,
time zones and literal rules are exactly those used at execution.  Whenever in
doubt it reports fewer predicates: a missing predicate only costs speed, a
wrong one changes results.
"""

from ticklake.query.predicates.context import Predicate, TableRef
from ticklake.query.predicates.references import find_table_refs

__all__ = ["Predicate", "TableRef", "find_table_refs"]
