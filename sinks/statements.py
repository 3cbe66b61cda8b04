"""Checks on the SQL that readers send to the audit log.

The query endpoint takes exactly one statement per request. chDB 4.4 runs
every statement of a `;`-separated text and concatenates their results, and
after a failed multi-statement text it returns leftover rows with the next
query's result, so several statements in one request must not reach it.
"""

from __future__ import annotations

import re

from sinks.errors import QueryError

# The client appends its own FORMAT clause, so a second one is a syntax error.
TRAILING_FORMAT = re.compile(r"\bFORMAT\s+\w+\s*$", re.IGNORECASE)
QUOTES = "'\"`"
# ClickHouse heredoc strings: $$text$$ or $tag$text$tag$.
HEREDOC_OPENING = re.compile(r"\$(\w*)\$")


def single_statement(sql: str) -> str:
    """Return SQL without a trailing `;` after checking that it is one statement.

    Raises:
        QueryError: SQL is empty, has more than one statement, an unclosed
            string or comment, or a FORMAT clause.
    """
    code = _code_only(sql).rstrip()
    statement = sql[: len(code)]
    if code.endswith(";"):
        code = code[:-1].rstrip()
        statement = sql[: len(code)]
    if not code.strip():
        raise QueryError("the query is empty; send one SQL statement as the request body")
    if ";" in code:
        raise QueryError("the query has more than one statement; send one statement per request")
    if TRAILING_FORMAT.search(code):
        raise QueryError("remove the FORMAT clause; results come back as JSON")
    return statement


def _code_only(sql: str) -> str:
    """Return SQL with comments blanked and string literals and quoted names masked.

    The result has the same length as SQL, so positions in it are positions in
    SQL. Literals become `_` rather than spaces so that trimming the result does
    not cut a literal at the end of the statement.
    """
    out = list(sql)
    index = 0
    length = len(sql)
    while index < length:
        char = sql[index]
        heredoc = HEREDOC_OPENING.match(sql, index) if char == "$" else None
        mask = "_"
        if char in QUOTES:
            end = _closing_quote(sql, index)
        elif heredoc is not None:
            close = sql.find(heredoc.group(0), heredoc.end())
            if close < 0:
                raise QueryError(f"the query has an unclosed {heredoc.group(0)} string")
            end = close + len(heredoc.group(0))
        elif sql.startswith("--", index) or char == "#":
            mask = " "
            newline = sql.find("\n", index)
            end = length if newline < 0 else newline
        elif sql.startswith("/*", index):
            close = sql.find("*/", index + 2)
            if close < 0:
                raise QueryError("the query has an unclosed /* comment")
            mask = " "
            end = close + 2
        else:
            index += 1
            continue
        for position in range(index, end):
            if out[position] != "\n":
                out[position] = mask
        index = end
    return "".join(out)


def _closing_quote(sql: str, start: int) -> int:
    """Return the index after the quote that closes the one at START."""
    quote = sql[start]
    index = start + 1
    while index < len(sql):
        char = sql[index]
        if char == "\\":
            index += 2
            continue
        if char == quote:
            if sql.startswith(quote * 2, index):
                index += 2
                continue
            return index + 1
        index += 1
    raise QueryError(f"the query has an unclosed {quote} quote")
