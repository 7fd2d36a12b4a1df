"""The kinds of constant catalog pruning compares a column with, by the column's DuckDB type.

Kept apart from the Arrow column tables (`ticklake.columns`) so that planning a query imports
no pyarrow: a new ``ticklake sql`` process pays for what it uses.

>>> PREDICATE_KINDS["BIGINT"], KIND_SQL_TYPES["integer"]
('integer', 'BIGINT')
"""

from __future__ import annotations

# A kind's DuckDB column types; its constants are cast to the first. Columns of other types are not pruned on.
_KIND_TYPES: dict[str, tuple[str, ...]] = {
    "timestamptz": ("TIMESTAMP WITH TIME ZONE",),
    "date": ("DATE",),
    "integer": ("BIGINT", "INTEGER"),
    "double": ("DOUBLE",),
    "varchar": ("VARCHAR",),
}
# DuckDB column type -> predicate kind.
PREDICATE_KINDS: dict[str, str] = {t: kind for kind, types in _KIND_TYPES.items() for t in types}
# Predicate kind -> the DuckDB type its constants are cast to.
KIND_SQL_TYPES: dict[str, str] = {kind: types[0] for kind, types in _KIND_TYPES.items()}
