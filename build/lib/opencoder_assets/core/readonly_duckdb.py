"""Read-only access to a DuckDB file (the metrics store) for inspection commands.

Why: ``opencoder lineage`` / ``opencoder why`` only read. They must work on a store someone else
owns or publishes read-only (a copied run, a mounted archive, a directory without write access):
so no lock file, no schema DDL, no WAL, no new files, and a one-line error naming the file when
it is missing or not a DuckDB database (docs/security.md, "Lineage on a read-only store").
"""

from __future__ import annotations

import stat
from pathlib import Path

#: A DuckDB file has "DUCK" at bytes 8..12 (after the header checksum).
_MAGIC = b"DUCK"
_MAGIC_END = 12
#: Inspection never installs or loads DuckDB extensions (it reads only our Parquet and the database).
NO_EXTENSIONS = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


class MetricsStoreError(RuntimeError):
    """The metrics database cannot be read (missing, not a DuckDB file, held by a writer)."""


def check_duckdb_file(db_path: str | Path) -> Path:
    """The absolute path of a readable DuckDB file, or a ``MetricsStoreError`` saying what it is."""
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
    return path
