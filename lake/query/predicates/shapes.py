"""Which conditions on a column become predicates: ``col op const``, BETWEEN, IN and ORed equalities.

Only these shapes are recognised, and all of them reject NULL, which is what lets a WHERE
conjunct restrict every side of an outer join; anything else yields no predicate.
"""

from __future__ import annotations

from ticklake.query.predicates import constants
from ticklake.query.predicates.context import Context, Node, Predicate, Resolver

_OPS = {
    "COMPARE_EQUAL": "=",
    "COMPARE_LESSTHAN": "<",
    "COMPARE_LESSTHANOREQUALTO": "<=",
    "COMPARE_GREATERTHAN": ">",
    "COMPARE_GREATERTHANOREQUALTO": ">=",
}
_FLIP = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def split(expr: Node | None, conjunction: str) -> list[Node]:
    """Split nested AND (or OR) conjunctions into their parts."""
    if not expr:
        return []
    if expr.get("class") == "CONJUNCTION" and expr.get("type") == conjunction:
        return [part for child in expr["children"] for part in split(child, conjunction)]
    return [expr]


def from_conjunct(expr: Node, resolve: Resolver, ctx: Context) -> list[Predicate]:
    """Predicates implied by one conjunct, or [] if it has no recognised shape."""
    cls, kind = expr.get("class"), expr.get("type")
    if cls == "COMPARISON" and kind in _OPS:
        side = _comparison(expr, resolve)
        if side is None:
            return []
        column, op, const = side
        value = constants.value(const, column, ctx)
        return [] if value is constants.SKIP else [Predicate(column, op, (value,))]
    if cls == "BETWEEN" and (target := resolve(expr["input"])) is not None:
        bounds = ((">=", constants.value(expr["lower"], target, ctx)), ("<=", constants.value(expr["upper"], target, ctx)))
        return [Predicate(target, op, (value,)) for op, value in bounds if value is not constants.SKIP]
    if cls == "CONJUNCTION" and kind == "CONJUNCTION_OR":
        return _equalities(split(expr, "CONJUNCTION_OR"), resolve, ctx)
    if cls == "OPERATOR" and kind == "COMPARE_IN":
        return _equalities([expr], resolve, ctx)
    return []


def _comparison(expr: Node, resolve: Resolver) -> tuple[str, str, Node] | None:
    """Split ``col op const`` or ``const op col`` into (column, op, constant side)."""
    op = _OPS[expr["type"]]
    if (column := resolve(expr["left"])) is not None:
        return column, op, expr["right"]
    if (column := resolve(expr["right"])) is not None:
        return column, _FLIP[op], expr["left"]
    return None


def _equalities(exprs: list[Node], resolve: Resolver, ctx: Context) -> list[Predicate]:
    """One "in" predicate from ORed equalities / IN lists, all on the same column."""
    columns: set[str | None] = set()
    consts: list[Node] = []
    for expr in exprs:
        if expr.get("class") == "COMPARISON" and expr.get("type") == "COMPARE_EQUAL":
            side = _comparison(expr, resolve)
            columns.add(side and side[0])
            consts.extend([side[2]] if side else [])
        elif expr.get("class") == "OPERATOR" and expr.get("type") == "COMPARE_IN":
            columns.add(resolve(expr["children"][0]))
            consts.extend(expr["children"][1:])
        else:
            return []
    column = columns.pop() if len(columns) == 1 else None
    if column is None or not consts:
        return []
    values = [constants.value(const, column, ctx) for const in consts]
    return [] if any(value is constants.SKIP for value in values) else [Predicate(column, "in", tuple(dict.fromkeys(values)))]
