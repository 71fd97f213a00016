"""Is a PartiQL statement one read-only SELECT on an allowed table? (`run_query`)

Deliberately conservative: rather than understand PartiQL, the statement is
cut into tokens, and anything outside a small, plainly read-only shape is
refused — `SELECT <anything> FROM <table>[.<index>] [WHERE ...] [ORDER BY ...]`
with exactly one SELECT and one FROM, no `;`, no comments, no Ion literals in
backticks, and none of the words that write or that nest statements
(INSERT, UPDATE, DELETE, EXISTS, ...) outside quotes. Values belong in
`parameters` (`?`), which also keeps them out of the statement.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from chalicelib.actions.base import ActionFailed
from chalicelib.settings import Settings

_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<comment>--|/\*)
    | (?P<string>'(?:[^']|'')*')
    | (?P<quoted>"(?:[^"]|"")+")
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<op><>|!=|<=|>=|\|\||[?=<>+\-*/%(),.\[\]{}:])
    """,
    re.VERBOSE,
)

#: Words that write, define, or open a second statement; refused unquoted.
FORBIDDEN = frozenset(
    {
        "INSERT",
        "UPDATE",
        "DELETE",
        "REPLACE",
        "UPSERT",
        "REMOVE",
        "SET",
        "INTO",
        "VALUE",
        "EXISTS",
        "CREATE",
        "DROP",
        "ALTER",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "EXEC",
        "EXECUTE",
    }
)
#: What may follow the FROM target.
AFTER_TARGET = frozenset({"WHERE", "ORDER"})


class QueryRefused(ActionFailed):
    """The statement is not one read-only SELECT on an allowed table."""


@dataclass(frozen=True)
class Token:
    kind: str
    text: str

    @property
    def word(self) -> str:
        """Upper-cased text of an unquoted word, else ""."""
        return self.text.upper() if self.kind == "word" else ""


@dataclass(frozen=True)
class Select:
    table: str
    index: str | None = None


def tokens(statement: str) -> list[Token]:
    """The statement's tokens (no spaces); QueryRefused at anything unexpected."""
    found: list[Token] = []
    position = 0
    while position < len(statement):
        match = _TOKEN.match(statement, position)
        if match is None:
            raise QueryRefused(
                f"refused: unexpected {statement[position]!r} at character {position + 1} "
                "(one SELECT, no ';', values as ? parameters)"
            )
        kind = match.lastgroup or ""
        if kind == "comment":
            raise QueryRefused("refused: comments are not allowed")
        if kind != "space":
            found.append(Token(kind, match.group()))
        position = match.end()
    return found


def check_select(statement: str, allowed_tables: Collection[str]) -> Select:
    """The table (and index) a read-only SELECT reads; QueryRefused otherwise."""
    found = tokens(statement)
    if not found or found[0].word != "SELECT":
        raise QueryRefused("refused: only a SELECT statement may run")
    words = [token.word for token in found]
    bad = sorted({word for word in words if word in FORBIDDEN})
    if bad:
        raise QueryRefused(f"refused: {', '.join(bad)} is not allowed in a read-only query")
    if words.count("SELECT") != 1:
        raise QueryRefused("refused: nested or multiple SELECTs")
    if words.count("FROM") != 1:
        raise QueryRefused("refused: a SELECT reads FROM exactly one table")
    at = words.index("FROM") + 1
    table, at = _name(found, at)
    index = None
    if at < len(found) and found[at].text == ".":
        index, at = _name(found, at + 1)
    if at < len(found) and found[at].word not in AFTER_TARGET:
        raise QueryRefused(f"refused: unexpected {found[at].text!r} after the table name")
    if Settings.is_own_table(table):
        # Whatever TICKWORK_QUERY_TABLES says: they hold every project's data.
        raise QueryRefused(f"refused: table {table!r} is one of Tickwork's own tables")
    if table not in allowed_tables:
        raise QueryRefused(
            f"refused: table {table!r} is not in the allowed tables (TICKWORK_QUERY_TABLES)"
        )
    return Select(table, index)


def _name(found: list[Token], at: int) -> tuple[str, int]:
    """The table or index name at `at`, quoted or not, and the position after it."""
    if at >= len(found) or found[at].kind not in ("word", "quoted"):
        raise QueryRefused("refused: FROM must name a table")
    token = found[at]
    name = token.text[1:-1].replace('""', '"') if token.kind == "quoted" else token.text
    return name, at + 1
