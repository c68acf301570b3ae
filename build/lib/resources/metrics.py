"""The metrics store: DuckDB views over the manifests and per-file tables of *published* versions.

Why views, not copied rows: every step writes its per-file decisions (and side tables such as
quality signals or dedup clusters) as Parquet inside its version directory, and its counts into
the version's manifest (resources/storage.py). A query sees exactly the current versions, so

- the metrics and the published data agree after a crash at any point (there is no second copy
  to fall out of step),
- bulk rows never serialise across partitions under one database lock, and a lineage query
  never blocks a writer,
- a read-only or archived store works: the views are temporary, built per connection in an
  in-memory DuckDB; the database file (``db_path``) only holds the small ``run_failures`` table
  and is attached read-only for queries.

Why not ``dagster_duckdb.DuckDBResource`` for the reads: it opens the database file itself,
read-write, so every lineage query would take the file's write lock and need write access. The
reads use an in-memory DuckDB instead; the one write path (``run_failures``) does go through
``DuckDBResource`` (its connect retries while a reader holds the file).

Views: ``step_runs`` / ``latest_step_runs`` (one row per current version), ``file_decisions``,
``drop_reasons`` and one view per side table a step published (``quality_signals``,
``dedup_clusters``, ``transform_edits``, …), each with ``step``, ``partition``, ``run_id`` first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from dagster import ConfigurableResource
from dagster_duckdb import DuckDBResource

from opencoder_assets.core.readonly_duckdb import NO_EXTENSIONS, MetricsStoreError, check_duckdb_file
from resources.storage import DEFAULT_DATA_ROOT, MANIFEST, POINTER, PublicationError, current_version_dir

STEP_RUN_SCHEMA = pa.schema([
    ("step", pa.string()), ("partition", pa.string()), ("run_id", pa.string()), ("recorded_at", pa.timestamp("us")),
    ("input_count", pa.int64()), ("kept", pa.int64()), ("dropped", pa.int64()), ("input_bytes", pa.int64()),
    ("kept_bytes", pa.int64()), ("extra", pa.string()), ("version", pa.string()), ("data_path", pa.string()),
])
_COUNT_KEYS = ("input_count", "kept", "dropped", "input_bytes", "kept_bytes")

_FAILURES_DDL = "CREATE TABLE IF NOT EXISTS run_failures (run_id VARCHAR, job_name VARCHAR, failed_at TIMESTAMP, message VARCHAR)"


def _q(value: str) -> str:
    """A SQL string literal (paths may contain quotes)."""
    return "'" + value.replace("'", "''") + "'"


def published_versions(corpus_root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """(version dir, manifest) of every current version under ``corpus_root`` that carries a
    step record; a corrupt pointer is an error naming it, never silently skipped."""
    out = []
    if not corpus_root.is_dir():
        return out
    for pointer in sorted(corpus_root.glob(f"*/*/{POINTER}")):
        version_dir = current_version_dir(pointer.parent)
        manifest = json.loads((version_dir / MANIFEST).read_text())
        if "step" in manifest:
            out.append((version_dir, manifest))
    return out


def _register_views(con: duckdb.DuckDBPyConnection, corpus_root: Path) -> None:
    versions = published_versions(corpus_root)
    runs: dict[str, list] = {f.name: [] for f in STEP_RUN_SCHEMA}
    tables: dict[str, list[tuple[str, str, str, str]]] = {"file_decisions": []}
    for version_dir, m in versions:
        counts = m.get("counts", {})
        row = {"step": m["step"], "partition": m.get("partition"), "run_id": m.get("run_id"),
               "recorded_at": pa.scalar(int(m.get("created_ns", 0)) // 1000, pa.timestamp("us")).as_py(),
               **{k: int(counts.get(k, 0)) for k in _COUNT_KEYS},
               "extra": json.dumps(m.get("extra", {}), default=str), "version": m.get("version"),
               "data_path": str(version_dir)}
        for k, v in row.items():
            runs[k].append(v)
        for table, files in (m.get("tables") or {}).items():
            for name in files:
                tables.setdefault(table, []).append((str(version_dir / name), m["step"], m.get("partition"),
                                                     m.get("run_id")))
    con.register("_step_runs_arrow", pa.table(runs, schema=STEP_RUN_SCHEMA))
    con.execute("CREATE OR REPLACE TEMP VIEW step_runs AS SELECT * FROM _step_runs_arrow")
    con.execute("CREATE OR REPLACE TEMP VIEW latest_step_runs AS SELECT * FROM step_runs")
    for table, entries in tables.items():
        if not table.isidentifier():
            raise PublicationError(f"table name {table!r} in a manifest under {corpus_root} is not an identifier")
        if not entries:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT NULL::VARCHAR AS step, NULL::VARCHAR AS "
                        "partition, NULL::VARCHAR AS run_id, NULL::VARCHAR AS file_id, NULL::VARCHAR AS repo, "
                        "NULL::VARCHAR AS path, NULL::VARCHAR AS language, NULL::VARCHAR AS decision, "
                        "NULL::VARCHAR AS reason, NULL::VARCHAR AS detail, NULL::BIGINT AS size_bytes WHERE false")
            continue
        files_table = pa.table({"file": [e[0] for e in entries], "step": [e[1] for e in entries],
                                "partition": [e[2] for e in entries], "run_id": [e[3] for e in entries]})
        con.register(f"_files_{table}", files_table)
        file_list = "[" + ", ".join(_q(e[0]) for e in entries) + "]"
        con.execute(
            f"""CREATE OR REPLACE TEMP VIEW {table} AS
                SELECT f.step, f.partition, f.run_id, t.* EXCLUDE (filename)
                FROM read_parquet({file_list}, filename = true, union_by_name = true) t
                JOIN _files_{table} f ON t.filename = f.file"""
        )
    con.execute("""CREATE OR REPLACE TEMP VIEW drop_reasons AS
                   SELECT step, partition, reason, count(*) AS files, sum(size_bytes) AS bytes
                   FROM file_decisions WHERE decision = 'dropped' GROUP BY ALL""")


class MetricsStore(ConfigurableResource):
    """Queries over the published versions, plus the ``run_failures`` table in a real DuckDB file.

    ``corpus_root``: where CorpusStorage publishes (default: ``corpus`` next to ``db_path``, which
    is where the default CorpusStorage root is).
    """

    db_path: str = os.environ.get("OPENCODER_METRICS_DB", os.path.join(DEFAULT_DATA_ROOT, "metrics.duckdb"))
    corpus_root: str | None = None
    lock_timeout_s: float = 600.0
    #: Inspection (lineage / why): the store must exist, and nothing is ever written.
    read_only: bool = False

    def root(self) -> Path:
        return Path(self.corpus_root).resolve() if self.corpus_root else Path(self.db_path).resolve().parent / "corpus"

    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read connection: in-memory DuckDB with the views, the store file attached read-only.
        Creates no file and takes no lock, so it works on a read-only or archived store."""
        root = self.root()
        db = Path(self.db_path).expanduser().absolute()
        db_present = db.exists() or db.is_symlink()
        if self.read_only and not db_present and not root.is_dir():
            raise MetricsStoreError(f"metrics store {db} does not exist and there is no published data under {root} "
                                    "(give --db PATH or set OPENCODER_METRICS_DB)")
        path = check_duckdb_file(db) if db_present else None
        if self.read_only and not root.is_dir():
            raise MetricsStoreError(f"metrics store {db}: no published data under {root} (the corpus next to it)")
        con = duckdb.connect(config=NO_EXTENSIONS)
        try:
            _register_views(con, root)
            attached = False
            if path is not None:
                deadline = time.monotonic() + self.lock_timeout_s
                while not attached:
                    try:
                        con.execute(f"ATTACH {_q(str(path))} AS store (READ_ONLY)")
                        attached = True
                    except duckdb.Error as exc:
                        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                        if "lock" not in first.lower() or time.monotonic() > deadline:
                            raise MetricsStoreError(f"metrics store {path} cannot be opened read-only: {first}"
                                                    ) from None
                        time.sleep(0.05)
            has_failures = attached and con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'store' AND table_name = 'run_failures'"
            ).fetchone()[0]
            if has_failures:
                con.execute("CREATE OR REPLACE TEMP VIEW run_failures AS SELECT * FROM store.run_failures")
            else:
                con.execute("CREATE OR REPLACE TEMP VIEW run_failures AS SELECT NULL::VARCHAR AS run_id, "
                            "NULL::VARCHAR AS job_name, NULL::TIMESTAMP AS failed_at, NULL::VARCHAR AS message WHERE false")
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The only writes left (run failures): short, serialised across processes by a file lock."""
        path = Path(self.db_path).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = path.with_name(path.name + ".lock")
        with open(lock_path, "a+") as lock_file:
            deadline = time.monotonic() + self.lock_timeout_s
            while True:
                try:
                    fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"metrics store {path} stayed locked for {self.lock_timeout_s}s") from None
                    time.sleep(0.05)
            try:
                # dagster-duckdb's resource: its connect retries while a reader holds the file briefly
                with DuckDBResource(database=str(path), connection_config=NO_EXTENSIONS).get_connection() as con:
                    con.execute(_FAILURES_DDL)
                    yield con
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)

    def record_failure(self, run_id: str, job_name: str, message: str) -> None:
        if self.read_only:
            raise MetricsStoreError(f"metrics store {self.db_path} is opened read-only; run failures are not recorded")
        with self._write() as con:
            con.execute("INSERT INTO run_failures VALUES (?, ?, now(), ?)", [run_id, job_name, message])

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql, params or []).fetchall()

    def query_df(self, sql: str, params: list[Any] | None = None):  # -> polars.DataFrame
        with self.connect() as con:
            return con.execute(sql, params or []).pl()
