"""Read-only access to a DuckDB file (the metrics store) for inspection commands.

Why: ``opencoder lineage`` / ``opencoder why`` only read. They must work on a store someone else
owns or publishes read-only (a copied run, a mounted archive, a directory without write access):
so no lock file, no schema DDL, no WAL, no new files, and a one-line error naming the file when
it is missing or not a DuckDB database (docs/security.md, "Lineage on a read-only store").
"""

from __future__ import annotations

import contextlib
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

#: A DuckDB file has "DUCK" at bytes 8..12 (after the header checksum).
_MAGIC = b"DUCK"
_MAGIC_END = 12
#: Inspection never installs or loads extensions and never reads files other than the database.
_READ_ONLY_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False,
                     "enable_external_access": False}


class MetricsStoreError(RuntimeError):
    """The metrics database cannot be read (missing, not a DuckDB file, held by a writer)."""


@contextlib.contextmanager
def connect_read_only(db_path: str | Path, lock_wait_s: float = 30.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A ``read_only=True`` connection; waits up to ``lock_wait_s`` while a writer holds the file.

    Writers hold DuckDB's file lock only for the few milliseconds of one ``record_step``, so a
    conflict is retried rather than reported.
    """
    path = Path(db_path).expanduser().absolute()
    try:
        mode = path.stat().st_mode
        with open(path, "rb") as f:  # readable? (DuckDB's own message would not say why)
            header = f.read(_MAGIC_END)
    except FileNotFoundError:
        raise MetricsStoreError(f"metrics store {path} does not exist (give --db PATH or set OPENCODER_METRICS_DB)"
                                ) from None
    except IsADirectoryError:
        raise MetricsStoreError(f"metrics store {path} is not a file") from None
    except OSError as exc:
        raise MetricsStoreError(f"metrics store {path} cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise MetricsStoreError(f"metrics store {path} is not a file")
    if header[_MAGIC_END - len(_MAGIC):] != _MAGIC:
        # Checked here: DuckDB would otherwise auto-detect e.g. a SQLite file and fetch an extension.
        what = "a SQLite database" if header.startswith(b"SQLite") else "no DuckDB header"
        raise MetricsStoreError(f"metrics store {path} is not a valid DuckDB database file ({what})")
    deadline = time.monotonic() + lock_wait_s
    while True:
        try:
            con = duckdb.connect(str(path), read_only=True, config=_READ_ONLY_CONFIG)
            break
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "lock" in first.lower() and time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            raise MetricsStoreError(f"metrics store {path} cannot be opened read-only: {first}") from None
    try:
        yield con
    finally:
        con.close()
