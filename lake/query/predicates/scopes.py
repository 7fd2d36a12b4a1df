"""Which table references a SELECT holds, and which of its conditions are guaranteed for each.

A CTE of the same name hides the table within its scope, and a condition restricts a reference
only where pruning by it cannot change the result: ON conditions only a join's inner side, WHERE
conditions not the searched side of an ASOF join nor either side of a POSITIONAL one, and nothing
under USING SAMPLE.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ticklake.query.kinds import KIND_SQL_TYPES
from ticklake.query.predicates.context import Context, Node, Resolver, TableRef
from ticklake.query.predicates.offsets import span
from ticklake.query.predicates.shapes import from_conjunct, split

_Leaf = tuple[Node, tuple[Node, ...] | None, bool]  # (table ref, ON conjuncts or None = never prune, WHERE applies)
_QUERY_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})


def walk(obj: Any, ctes: frozenset[str], ctx: Context) -> None:
    """Visit the parse tree, tracking visible CTE names, and record references."""
    if isinstance(obj, list):
        for item in obj:
            walk(item, ctes, ctx)
        return
    if not isinstance(obj, dict):
        return
    kind = obj.get("type")
    if isinstance(kind, str) and kind in _QUERY_NODES and "cte_map" in obj:
        for entry in obj["cte_map"].get("map", []):  # a CTE body sees only the CTEs before it
            walk(entry["value"], ctes, ctx)
            ctes = ctes | {entry["key"].lower()}
        if obj.get("cte_name"):  # a recursive CTE sees itself
            ctes = ctes | {obj["cte_name"].lower()}
        if kind == "SELECT_NODE":
            _scope_select(obj, ctes, ctx)
        obj = {key: value for key, value in obj.items() if key != "cte_map"}
    elif kind == "BASE_TABLE" and _is_target(obj, ctes, ctx):
        start, end = span(obj, ctx)
        ctx.refs.append(TableRef(start, end, obj.get("alias") or None, ctx.preds.get(id(obj), ())))
    for value in obj.values():
        walk(value, ctes, ctx)


def _is_target(ref: Node, ctes: frozenset[str], ctx: Context) -> bool:
    """Whether a BASE_TABLE node names the real table (not a CTE, other schema or catalog)."""
    schema = ref.get("schema_name", "").lower()
    return (
        ref.get("table_name", "").lower() == ctx.table
        and ref.get("catalog_name", "") == ""
        and schema in ("", "main")
        and (schema != "" or ctx.table not in ctes)
    )


def _scope_select(node: Node, ctes: frozenset[str], ctx: Context) -> None:
    """Compute predicates for every target reference in this SELECT's FROM."""
    if node.get("sample"):  # USING SAMPLE runs before WHERE: pruning would change the sample
        return
    leaves = [leaf for leaf in _leaves(node.get("from_table") or {}, (), True) if leaf[0].get("type") != "EMPTY"]
    quals = [(ref.get("alias") or ref.get("table_name") or "").lower() for ref, _, _ in leaves]
    where = split(node.get("where_clause"), "CONJUNCTION_AND")
    for (ref, conds, where_ok), qual in zip(leaves, quals, strict=False):
        if conds is None or ref.get("type") != "BASE_TABLE" or ref.get("column_name_alias"):
            continue
        if _is_target(ref, ctes, ctx):
            resolve = _resolver(qual if quals.count(qual) == 1 else None, len(leaves) == 1, ctx)
            found = [p for expr in conds + (tuple(where) if where_ok else ()) for p in from_conjunct(expr, resolve, ctx)]
            ctx.preds[id(ref)] = tuple(dict.fromkeys(found))


def _leaves(ref: Node, conds: tuple[Node, ...] | None, where_ok: bool) -> Iterator[_Leaf]:
    """Yield the non-join table refs of a FROM tree with the conditions that may prune them.

    ON conjuncts restrict the inner side(s) of a join.  Our predicate shapes are
    null-rejecting, so WHERE conjuncts restrict every leaf, except the searched
    (right) side of an ASOF join, where pruning changes which row is nearest,
    and both sides of a POSITIONAL join.  Sampled subtrees are never pruned.
    """
    if ref.get("sample"):
        conds = None
    if ref.get("type") != "JOIN":
        yield ref, conds, where_ok
        return
    join, kind = ref.get("join_type"), ref.get("ref_type")
    on = () if ref.get("using_columns") else tuple(split(ref.get("condition"), "CONJUNCTION_AND"))
    left_on = on if join in ("INNER", "SEMI", "RIGHT") else ()
    right_on = on if join in ("INNER", "SEMI", "LEFT", "ANTI") else ()
    left, right, right_where = conds, conds, where_ok
    if kind == "ASOF" and join in ("INNER", "LEFT"):
        right, right_where = (None if conds is None else ()), False
    elif kind not in ("REGULAR", "CROSS", "NATURAL"):
        left = right = None
    yield from _leaves(ref["left"], None if left is None else left + left_on, where_ok)
    yield from _leaves(ref["right"], None if right is None else right + right_on, right_where)


def _resolver(qual: str | None, single: bool, ctx: Context) -> Resolver:
    """Map a COLUMN_REF to a known column: qualified by ``qual``, or bare if ``single``."""

    def resolve(expr: Node) -> str | None:
        if expr.get("class") != "COLUMN_REF":
            return None
        names = [name.lower() for name in expr["column_names"]]
        if len(names) == 1 and single:
            column = names[0]
        elif len(names) == 2 and qual and names[0] == qual:
            column = names[1]
        else:
            return None
        return column if ctx.columns.get(column) in KIND_SQL_TYPES else None

    return resolve
