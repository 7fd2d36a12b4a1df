"""The read-only query surface: what a lake connection runs unless it was opened with ``unsafe``.

Two layers. `check_read_only` judges every statement of a query with DuckDB's own parser
(`extract_statements` gives each statement's type; `tokenize` its words, with comments and
strings told apart) and refuses what writes files, opens databases, loads extensions, stores
secrets or changes settings. `confine` then locks DuckDB itself: no extension loading or
auto-install, no network file systems, and no ``SET`` can undo that. DuckDB cannot make a
directory readable but not writable, so local files stay readable (``read_csv('/some/x.csv')``)
and only the statement check keeps ``COPY ... TO '<lake>/...'`` out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from ticklake.errors import QueryRefused
from ticklake.query.quoting import literal_list

ADVICE = "needs --unsafe (unsafe=True in Python)"

# Statement types that only read the lake or change this connection's in-memory database.
_READS = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "ALTER", "CREATE", "DROP", "TRANSACTION", "EXECUTE", "CALL", "VACUUM"}
    | {"MERGE_INTO", "VARIABLE_SET"}
)
# Statement types refused outright, with why.
_REFUSED = {
    "COPY": "reads or writes files directly",
    "EXPORT": "writes files",
    "COPY_DATABASE": "writes a database",
    "ATTACH": "opens another database",
    "DETACH": "changes the attached databases",
    "LOAD": "loads extension code",
    "SET": "changes settings",
    "PRAGMA": "changes settings",
}
_LABELS = {"EXPORT": "EXPORT DATABASE", "COPY_DATABASE": "COPY FROM DATABASE", "PRAGMA": "PRAGMA"}
# Table functions that write files or change settings even on a locked connection, or run SQL
# text (a string this check cannot read) that could call them.
_FUNCTIONS = {
    "enable_logging": "writes files or changes settings",
    "disable_logging": "changes settings",
    "truncate_duckdb_logs": "changes the logs",
    "enable_profiling": "writes files or changes settings",
    "disable_profiling": "changes settings",
    "query": "runs SQL text the check cannot read",
    "json_execute_serialized_sql": "runs SQL text the check cannot read",
}
_CREDENTIAL_WORDS = frozenset({"or", "replace", "persistent", "temporary", "temp"})
_WORD = re.compile(r'"((?:[^"]|"")*)"|([^\W\d]\w*)')


@dataclass(frozen=True)
class _Token:
    offset: int
    kind: str  # identifier, keyword, operator, numeric_const, string_const
    word: str  # identifiers and keywords: lower case, unquoted; operators: their first character


def check_read_only(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Refuse `query` (QueryRefused, one line naming the statement) unless every statement only reads.

    >>> con = duckdb.connect()
    >>> check_read_only(con, "SELECT 1; CREATE TEMP TABLE t AS SELECT 2")
    >>> check_read_only(con, "select 1; /* note */ copy (select 1) to 'x.csv'")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ticklake.errors.QueryRefused: read-only query: statement 2 of 2: COPY reads or writes files directly; needs --unsafe ...
    """
    tokens = _tokens(query)
    for here, after in zip(tokens, tokens[1:], strict=False):
        # DuckDB expands IMPORT DATABASE into the SQL files of a folder, read once to be checked and
        # again to be run: what runs need not be what was checked, so it is refused unread.
        if here.kind == "keyword" and here.word == "import" and after.word == "database":
            raise QueryRefused(f"read-only query: IMPORT DATABASE runs the SQL files of a folder; {ADVICE}")
    statements = con.extract_statements(query)
    for i, statement in enumerate(statements, start=1):
        refusal = _refusal(con, statement.type, statement.query)
        if refusal:
            where = f"statement {i} of {len(statements)}: " if len(statements) > 1 else ""
            raise QueryRefused(f"read-only query: {where}{refusal}; {ADVICE}")


def check_served(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Refuse (QueryRefused) all but one SELECT, or EXPLAIN of one: what a server's shared connections run.

    A server's connections serve one client after another, so nothing a statement leaves behind (a
    temp table, a variable, a prepared statement) may outlive it; `check_read_only` still judges it.

    >>> check_served(duckdb.connect(), "CREATE TEMP TABLE t AS SELECT 1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ticklake.errors.QueryRefused: served query: CREATE is refused; a server runs one SELECT (or EXPLAIN of one) per statement
    """
    try:
        statements = con.extract_statements(query)
    except duckdb.Error:
        return  # the query's own run reports the syntax error
    if len(statements) != 1:
        raise QueryRefused(
            f"served query: {len(statements)} statements; a server runs one SELECT (or EXPLAIN of one) per statement"
        )
    kind = statements[0].type.name
    if kind == "EXPLAIN":
        text = statements[0].query
        start, _ = _inner_start(kind, _tokens(text))
        try:
            inner = con.extract_statements(text[start:]) if start is not None else []
        except duckdb.Error:
            inner = []
        kind = "EXPLAIN of " + (inner[0].type.name if len(inner) == 1 else "a statement that cannot be read")
        if len(inner) == 1 and inner[0].type.name == "SELECT":
            return
    if kind != "SELECT":
        raise QueryRefused(f"served query: {kind} is refused; a server runs one SELECT (or EXPLAIN of one) per statement")


def confine(con: duckdb.DuckDBPyConnection, objects: Sequence[str] = (), folders: Sequence[str] | None = None) -> None:
    """Lock a prepared connection (views made, extensions loaded) so that nothing loosens it again.

    DuckDB may then reach only `folders` (default: the whole local file system) and the object
    prefixes in `objects`, the lake's cold buckets (e.g. ``s3://ticks/``); loading or installing
    extensions is refused, and ``lock_configuration`` refuses any later ``SET``. The order matters:
    DuckDB takes allowed directories only while external access is still on.
    """
    allowed = ["/"] if folders is None else [f.rstrip("/") + "/" for f in folders]
    for setting in (
        "SET autoinstall_known_extensions = false",
        "SET autoload_known_extensions = false",
        f"SET allowed_directories = {literal_list([*allowed, *objects])}",
        "SET enable_external_access = false",
        "SET lock_configuration = true",
    ):
        con.execute(setting)


def _refusal(con: duckdb.DuckDBPyConnection, statement_type: duckdb.StatementType, text: str) -> str | None:
    """Why one statement is refused (``"COPY reads or writes files directly"``), or None."""
    kind = statement_type.name
    tokens = _tokens(text)
    words = [t.word for t in tokens]
    if kind in ("EXPLAIN", "PREPARE"):
        return _nested_refusal(con, kind, text, tokens)
    if kind == "SET" and words[:1] in (["set"], ["reset"]) and words[1:2] == ["variable"] and _is_name(tokens, 2):
        return None  # SET VARIABLE / RESET VARIABLE: a value of this session, not a setting
    if kind in _REFUSED:
        return f"{_label(kind, words)} {_REFUSED[kind]}"
    if kind not in _READS:
        return f"{' '.join(words[:2]).upper() or kind} is not known to be read-only"
    if kind in ("CREATE", "DROP") and _names_secret(words):
        return f"{words[0].upper()} SECRET {'stores' if kind == 'CREATE' else 'removes'} credentials"
    for here, after in zip(tokens, tokens[1:], strict=False):
        if here.word in _FUNCTIONS and after.kind == "operator" and after.word == "(":
            return f"{here.word}() {_FUNCTIONS[here.word]}"
    return None


def _nested_refusal(con: duckdb.DuckDBPyConnection, kind: str, text: str, tokens: list[_Token]) -> str | None:
    """EXPLAIN and PREPARE are judged by the statement they hold (EXPLAIN ANALYZE runs it)."""
    start, label = _inner_start(kind, tokens)
    if start is None:
        return f"{label} of a statement that cannot be read"
    try:
        inner = con.extract_statements(text[start:])
    except duckdb.Error:
        return f"{label} of a statement that cannot be read"
    if len(inner) != 1:
        return f"{label} of {len(inner)} statements"
    refusal = _refusal(con, inner[0].type, inner[0].query)
    return f"{label} {refusal}" if refusal else None


def _inner_start(kind: str, tokens: list[_Token]) -> tuple[int | None, str]:
    """Where the statement inside ``EXPLAIN [ANALYZE | (options)]`` or ``PREPARE name AS`` begins."""
    if kind == "PREPARE":
        depth = 0
        for i, token in enumerate(tokens[2:], start=2):
            depth += _depth_change(token)
            if depth == 0 and token.kind == "keyword" and token.word == "as":
                return (tokens[i + 1].offset if i + 1 < len(tokens) else None), "PREPARE"
        return None, "PREPARE"
    i = 1
    analyze = False
    if len(tokens) > i and tokens[i].word == "analyze":
        i, analyze = i + 1, True
    elif len(tokens) > i and tokens[i].kind == "operator" and tokens[i].word == "(":
        # Options are words and constants, never nested parentheses: the first ")" closes them.
        close = next((j for j in range(i + 1, len(tokens)) if tokens[j].kind == "operator" and tokens[j].word == ")"), None)
        if close is None:
            return None, "EXPLAIN"
        analyze = any(t.word == "analyze" for t in tokens[i + 1 : close])
        i = close + 1
    label = "EXPLAIN ANALYZE" if analyze else "EXPLAIN"
    return (tokens[i].offset if i < len(tokens) else None), label


def _tokens(text: str) -> list[_Token]:
    """DuckDB's tokens of `text` (comments are not tokens), each with its word."""
    tokens = []
    for offset, token_type in duckdb.tokenize(text):
        kind = token_type.name
        word = ""
        if kind in ("identifier", "keyword"):
            m = _WORD.match(text, offset)
            if m:
                word = (m.group(1).replace('""', '"') if m.group(1) is not None else m.group(2)).lower()
        elif kind == "operator":
            word = text[offset]
        tokens.append(_Token(offset, kind, word))
    return tokens


def _depth_change(token: _Token) -> int:
    if token.kind != "operator":
        return 0
    return {"(": 1, ")": -1}.get(token.word, 0)


def _is_name(tokens: list[_Token], i: int) -> bool:
    return i < len(tokens) and tokens[i].kind in ("identifier", "keyword") and bool(tokens[i].word)


def _names_secret(words: list[str]) -> bool:
    """``CREATE [OR REPLACE] [PERSISTENT | TEMPORARY] SECRET`` and ``DROP [PERSISTENT] SECRET``."""
    rest = words[1:]
    while rest and rest[0] in _CREDENTIAL_WORDS:
        rest = rest[1:]
    return rest[:1] == ["secret"]


def _label(kind: str, words: list[str]) -> str:
    """The statement's kind as a user wrote it: COPY, INSTALL, FORCE INSTALL, SET, RESET, USE, ..."""
    if kind in _LABELS:
        return _LABELS[kind]
    if kind == "LOAD" and words[:1] == ["force"]:
        return "FORCE INSTALL"
    return (words[0] if words else kind).upper()
