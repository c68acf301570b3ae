"""Small helpers for the DuckDB SQL the stages build.

Why: paths and settings end up in SQL text where DuckDB cannot take a prepared parameter
(``COPY ... TO '<file>'``, ``SET x = '<value>'``, views over ``read_parquet([...])``). Every such
value goes through :func:`sql_str`, so a data root like ``/data/o'neil`` neither breaks the
statement nor changes its meaning. Where a parameter works (``read_parquet(?)`` in a plain
query), prefer the parameter.
"""

from __future__ import annotations

import os
from collections.abc import Iterable


def sql_str(value: str | os.PathLike[str]) -> str:
    """A DuckDB string literal for ``value``: wrapped in single quotes, inner quotes doubled.

    A NUL character cannot be part of a DuckDB string (nor of a path), so it is rejected
    with the offending value named rather than silently truncated.
    """
    text = os.fspath(value)
    if not isinstance(text, str):
        raise TypeError(f"sql_str needs a str or str path, got {type(text).__name__}: {text!r}")
    if "\x00" in text:
        raise ValueError(f"NUL character in a value meant for SQL: {text!r}")
    return "'" + text.replace("'", "''") + "'"


def sql_path_list(paths: Iterable[str | os.PathLike[str]]) -> str:
    """A DuckDB list literal of file paths, each quoted with :func:`sql_str`, for ``read_parquet([...])``."""
    return "[" + ", ".join(sql_str(p) for p in paths) + "]"
