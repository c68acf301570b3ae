"""Small helpers for the DuckDB SQL the stages build."""

from __future__ import annotations

import os
from collections.abc import Iterable


def sql_path_list(paths: Iterable[str | os.PathLike[str]]) -> str:
    """A DuckDB list literal of file paths, single quotes escaped, for ``read_parquet([...])``."""
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"
