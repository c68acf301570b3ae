"""The DuckDB metrics store: per step/partition/run counts and every per-file decision.

Why a lock file: DuckDB allows one writing process per database file, and the multiprocess executor
runs partitions in parallel processes. Each step first writes its decisions to Parquet (no lock
needed), then takes an exclusive ``fcntl`` lock for the few milliseconds it needs to replace its
rows in one transaction. Readers take the same lock, so nobody ever sees DuckDB's lock error.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb
from dagster import ConfigurableResource

from opencoder_assets.core.readonly_duckdb import connect_read_only
from resources.storage import DEFAULT_DATA_ROOT

DECISION_COLUMNS = (
    "file_id",
    "repo",
    "path",
    "language",
    "decision",
    "reason",
    "detail",
    "size_bytes",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS step_runs (
    step VARCHAR, partition VARCHAR, run_id VARCHAR, recorded_at TIMESTAMP,
    input_count BIGINT, kept BIGINT, dropped BIGINT, input_bytes BIGINT, kept_bytes BIGINT,
    extra JSON
);
CREATE TABLE IF NOT EXISTS file_decisions (
    step VARCHAR, partition VARCHAR, run_id VARCHAR,
    file_id VARCHAR, repo VARCHAR, path VARCHAR, language VARCHAR,
    decision VARCHAR, reason VARCHAR, detail VARCHAR, size_bytes BIGINT
);
CREATE TABLE IF NOT EXISTS run_failures (
    run_id VARCHAR, job_name VARCHAR, failed_at TIMESTAMP, message VARCHAR
);
CREATE OR REPLACE VIEW drop_reasons AS
    SELECT step, partition, reason, count(*) AS files, sum(size_bytes) AS bytes
    FROM file_decisions WHERE decision = 'dropped' GROUP BY ALL;
CREATE OR REPLACE VIEW latest_step_runs AS
    SELECT * FROM step_runs QUALIFY row_number() OVER (
        PARTITION BY step, partition ORDER BY recorded_at DESC) = 1;
"""


class MetricsStore(ConfigurableResource):
    """A real DuckDB file; path configurable (``OPENCODER_METRICS_DB`` or ``data/metrics.duckdb``)."""

    db_path: str = os.environ.get(
        "OPENCODER_METRICS_DB", os.path.join(DEFAULT_DATA_ROOT, "metrics.duckdb")
    )
    lock_timeout_s: float = 600.0
    read_only: bool = False  # inspection (lineage/why): no lock file, no DDL, no writes

    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """An exclusive, schema-initialised connection; serialised across processes.

        With ``read_only``: a DuckDB ``read_only=True`` connection, no lock file and no DDL
        (``core/readonly_duckdb.py``); every query path (``query``, ``query_df``) then reads only.
        """
        if self.read_only:
            with connect_read_only(self.db_path, min(self.lock_timeout_s, 30.0)) as con:
                yield con
            return
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
                con = duckdb.connect(str(path))
                try:
                    con.execute(_SCHEMA)
                    yield con
                finally:
                    con.close()
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)

    def record_step(
        self,
        *,
        step: str,
        partition: str,
        run_id: str,
        decisions_parquet: str | Path,
        extra: Mapping[str, Any] | None = None,
        tables: Mapping[str, str | Path] | None = None,
    ) -> dict[str, int]:
        """Replace this step/partition's decisions with the given Parquet file and log the run.

        ``tables`` maps extra table names (e.g. ``quality_signals``) to Parquet files whose rows
        replace this partition's rows in that table (columns ``step``/``partition`` are added).
        Returns the counts that were recorded, computed by DuckDB from the Parquet itself.
        """
        decisions = str(Path(decisions_parquet).resolve())
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(
                    "DELETE FROM file_decisions WHERE step = ? AND partition = ?", [step, partition]
                )
                cols = ", ".join(DECISION_COLUMNS)
                con.execute(
                    f"INSERT INTO file_decisions SELECT ?, ?, ?, {cols} FROM read_parquet(?)",
                    [step, partition, run_id, decisions],
                )
                row = con.execute(
                    """SELECT count(*), count(*) FILTER (decision = 'kept'),
                              count(*) FILTER (decision = 'dropped'),
                              coalesce(sum(size_bytes), 0),
                              coalesce(sum(size_bytes) FILTER (decision = 'kept'), 0)
                       FROM read_parquet(?)""",
                    [decisions],
                ).fetchone()
                counts = dict(
                    zip(("input_count", "kept", "dropped", "input_bytes", "kept_bytes"), row, strict=True)
                )
                con.execute(
                    "INSERT INTO step_runs VALUES (?, ?, ?, now(), ?, ?, ?, ?, ?, ?)",
                    [step, partition, run_id, *counts.values(), json.dumps(dict(extra or {}), default=str)],
                )
                for table, parquet in (tables or {}).items():
                    src = str(Path(parquet).resolve())
                    con.execute(
                        f"CREATE TABLE IF NOT EXISTS {table} AS "
                        "SELECT ''::VARCHAR AS step, ''::VARCHAR AS partition, * "
                        "FROM read_parquet(?) LIMIT 0",
                        [src],
                    )
                    con.execute(f"DELETE FROM {table} WHERE step = ? AND partition = ?", [step, partition])
                    con.execute(
                        f"INSERT INTO {table} BY NAME SELECT ? AS step, ? AS partition, * FROM read_parquet(?)",
                        [step, partition, src],
                    )
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        return {k: int(v) for k, v in counts.items()}

    def record_failure(self, run_id: str, job_name: str, message: str) -> None:
        with self.connect() as con:
            con.execute("INSERT INTO run_failures VALUES (?, ?, now(), ?)", [run_id, job_name, message])

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql, params or []).fetchall()

    def query_df(self, sql: str, params: list[Any] | None = None):  # -> polars.DataFrame
        with self.connect() as con:
            return con.execute(sql, params or []).pl()
