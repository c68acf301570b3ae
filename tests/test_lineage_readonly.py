"""`opencoder lineage` / `opencoder why` on a read-only metrics store: real DuckDB files, real processes.

The store is a copy in a directory without write permission. Root ignores file permissions, so
when the tests run as root the command runs as ``nobody`` (the permissions then really apply),
and in every case the directory listing and the database bytes must be unchanged afterwards.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opencoder_assets.core.readonly_duckdb import MetricsStoreError
from opencoder_assets.core.schema import DECISION_SCHEMA, stable_file_id
from opencoder_assets.lineage import lineage_main
from resources import MetricsStore

ROOT = Path(__file__).resolve().parents[1]
KEPT = stable_file_id("test", "cpy", "Lib/heapq.py")
COPY = stable_file_id("test", "fork", "vendored/heapq.py")


def _decisions(path: Path, rows: list[tuple[str, str, str, str, str | None, str | None]]) -> Path:
    pq.write_table(pa.Table.from_pylist([
        {"file_id": fid, "repo": repo, "path": p, "language": "python", "decision": decision, "reason": reason,
         "detail": detail, "size_bytes": 100} for fid, repo, p, decision, reason, detail in rows
    ], schema=DECISION_SCHEMA), path)
    return path


def build_store(directory: Path) -> Path:
    """A real store: published raw_code + exact dedup versions (the fork's copy lost to cpy) under
    ``directory/corpus``, and the DuckDB file with a recorded run failure."""
    from resources import CorpusStorage

    directory.mkdir(parents=True, exist_ok=True)
    storage = CorpusStorage(root=str(directory / "corpus"))
    raw = [(KEPT, "cpy", "Lib/heapq.py", "kept", None, None), (COPY, "fork", "vendored/heapq.py", "kept", None, None)]
    dedup = [raw[0], (COPY, "fork", "vendored/heapq.py", "dropped", "exact_duplicate", f"duplicate_of:{KEPT}")]
    for step, rows in (("raw_code", raw), ("exact_deduped_code", dedup)):
        with storage.writer(step, "python") as w:
            _decisions(w.path / "decisions-00000-00000.parquet", rows)
            w.commit({"step": step, "partition": "python", "run_id": "r1",
                      "counts": {"input_count": 2, "kept": sum(r[3] == "kept" for r in rows)},
                      "tables": {"file_decisions": ["decisions-00000-00000.parquet"]}})
    store = MetricsStore(db_path=str(directory / "metrics.duckdb"))
    store.record_failure("r0", "refinecode_job", "an earlier failure")
    (directory / "metrics.duckdb.lock").unlink()
    return directory / "metrics.duckdb"


def _snapshot(directory: Path) -> dict[str, tuple[str, int]]:
    """Every file of the directory with its sha256 and mtime: what "nothing was written" means."""
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir", p.stat().st_mtime_ns)
            for p in sorted(directory.iterdir())}


@pytest.fixture()
def world_dir() -> Iterator[Path]:
    """A world-readable temp dir (pytest's are 0700: the unprivileged user must reach the files)."""
    outer = Path(tempfile.mkdtemp(prefix="ro-metrics-"))
    outer.chmod(0o755)
    try:
        yield outer
    finally:
        for p in outer.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        shutil.rmtree(outer)


@pytest.fixture()
def readonly_store(tmp_path: Path, world_dir: Path) -> Path:
    """A copy of a real store in a world-readable, nobody-writable directory (r-x dir, r-- file)."""
    build_store(tmp_path / "src")
    directory = world_dir / "store"
    shutil.copytree(tmp_path / "src", directory, symlinks=True)
    for p in sorted(directory.rglob("*"), reverse=True):
        if not p.is_symlink():
            p.chmod(0o555 if p.is_dir() else 0o444)
    directory.chmod(0o555)
    return directory / "metrics.duckdb"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m opencoder_assets.cli ...`` in a fresh process, as ``nobody`` when we are root.

    Root bypasses permissions, so it drops to nobody with util-linux ``setpriv`` (no capabilities
    left; in .ci/apt-packages.txt) and the read-only directory really binds.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": "/tmp"}
    env.pop("OPENCODER_METRICS_DB", None)
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, sys.executable, "-m", "opencoder_assets.cli", *args], cwd="/", env=env,
                          capture_output=True, text=True, timeout=120)


def test_why_and_lineage_on_a_read_only_store(readonly_store: Path) -> None:
    directory = readonly_store.parent
    before = _snapshot(directory)
    assert not os.access(directory, os.W_OK) or os.geteuid() == 0
    why = run_cli("why", "fork/vendored/heapq.py", "--db", str(readonly_store))
    assert why.returncode == 0, why.stderr
    assert "dropped at exact_deduped_code: exact_duplicate (duplicate of cpy/Lib/heapq.py)" in why.stdout
    lin = run_cli("lineage", "inputs", "cpy/Lib/heapq.py", "--db", str(readonly_store), "--json")
    assert lin.returncode == 0, lin.stderr
    assert '"path": "vendored/heapq.py"' in lin.stdout and '"step": "exact_deduped_code"' in lin.stdout
    assert _snapshot(directory) == before  # no lock file, no WAL, no schema change, no new file
    # In process too (as root: permissions do not bind, so only the unchanged directory proves it).
    assert lineage_main(["where", "--file-id", COPY, "--db", str(readonly_store)]) == 0
    assert _snapshot(directory) == before


def test_read_only_store_refuses_writes(readonly_store: Path, tmp_path: Path) -> None:
    directory = readonly_store.parent
    before = _snapshot(directory)
    store = MetricsStore(db_path=str(readonly_store), read_only=True)
    assert store.query("SELECT count(*) FROM file_decisions")[0][0] == 4
    assert store.query("SELECT count(*) FROM run_failures")[0][0] == 1
    with pytest.raises(MetricsStoreError, match="read-only"):
        store.record_failure("r2", "refinecode_job", "x")
    assert _snapshot(directory) == before


@pytest.mark.parametrize("kind", ["missing", "missing_dir", "not_duckdb", "sqlite", "empty_duckdb", "directory",
                                  "unreadable"])
def test_bad_database_is_a_one_line_error(kind: str, world_dir: Path) -> None:
    """Missing / foreign / unreadable database: exit 2, one stderr line naming the file, no traceback,
    nothing created."""
    tmp_path = world_dir
    db = tmp_path / "metrics.duckdb"
    expected = {"missing": "does not exist", "missing_dir": "does not exist", "directory": "is not a file",
                "not_duckdb": "not a valid DuckDB database file", "sqlite": "not a valid DuckDB database file (a SQLite",
                "empty_duckdb": "no published data under", "unreadable": "cannot be read: Permission denied"}[kind]
    if kind == "missing_dir":
        db = tmp_path / "nope" / "metrics.duckdb"
    elif kind == "directory":
        db.mkdir()
    elif kind == "not_duckdb":
        db.write_text("id,repo\n1,a\n")
    elif kind == "sqlite":
        import sqlite3

        con = sqlite3.connect(db)
        con.execute("CREATE TABLE file_decisions (x)")
        con.commit()
        con.close()
    elif kind == "empty_duckdb":
        duckdb.connect(str(db)).close()
    elif kind == "unreadable":
        build_store(tmp_path)
        db.chmod(0)
    before = _snapshot(tmp_path)
    commands = [["why", "cpy/Lib/heapq.py", "--db", str(db)]]
    if kind == "missing":
        commands.append(["lineage", "where", "--file-id", KEPT, "--db", str(db)])
    for args in commands:
        proc = run_cli(*args)
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert lines[0].startswith("opencoder lineage: error: metrics store ") and str(db) in lines[0]
        assert expected in lines[0], lines[0]
    assert _snapshot(tmp_path) == before and not (tmp_path / "nope").exists()
    if kind != "unreadable":  # (root reads it anyway)
        with pytest.raises((MetricsStoreError, duckdb.Error)):
            MetricsStore(db_path=str(db), read_only=True).query("SELECT count(*) FROM file_decisions")


def test_writer_store_still_creates_and_locks(tmp_path: Path) -> None:
    """The pipeline's (read-write) store creates its DuckDB file and lock file when it records."""
    db = build_store(tmp_path / "rw")
    assert stat.S_ISREG(db.stat().st_mode)
    store = MetricsStore(db_path=str(db))
    assert store.query("SELECT count(*) FROM file_decisions WHERE step = 'exact_deduped_code'")[0][0] == 2
    store.record_failure("r3", "refinecode_job", "y")
    assert (tmp_path / "rw" / "metrics.duckdb.lock").exists()
    assert store.query("SELECT count(*) FROM run_failures")[0][0] == 2
