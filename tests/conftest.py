"""Shared fixtures: real code from this interpreter's stdlib, fresh storage + metrics per test."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import pytest

from resources import CodeSources, CorpusStorage, MetricsStore, PipelineSettings

STDLIB = Path(sysconfig.get_paths()["stdlib"])
INCLUDE = Path(sysconfig.get_paths()["include"])
#: The reference filter's 120 test files and its per-file numbers, vendored with the tests
#: (origin and license: ``tests/data/reference/README.md``).
REFERENCE_DATA = Path(__file__).resolve().parent / "data" / "reference"


def stdlib_files(n: int, suffix: str = ".py", start: int = 0) -> list[Path]:
    """``n`` real, non-empty stdlib modules in a stable order (code nobody here wrote)."""
    files = sorted(p for p in STDLIB.glob(f"*{suffix}") if p.stat().st_size > 200)
    return files[start : start + n]


def copy_into(repo_dir: Path, files: list[Path], prefix: str = "") -> list[str]:
    out = []
    for f in files:
        rel = f"{prefix}{f.name}"
        target = repo_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
        out.append(rel)
    return out


@pytest.fixture()
def pipeline_resources(tmp_path: Path):
    """Real resources on a temp dir: CorpusStorage, a DuckDB file, and folder sources."""

    def make(folders: list[Path] | None = None, manifest: Path | None = None, tables: list[Path] | None = None,
             **settings):
        return {
            "sources": CodeSources(
                folders=[str(f) for f in (folders or [])],
                manifest=str(manifest) if manifest else None,
                tables=[str(t) for t in (tables or [])],
            ),
            "storage": CorpusStorage(root=str(tmp_path / "corpus")),
            "metrics": MetricsStore(db_path=str(tmp_path / "metrics.duckdb")),
            "settings": PipelineSettings(**settings),
        }

    return make


@pytest.fixture(autouse=True)
def _no_leaked_dagster_state_storage():
    """Dagster keeps the defs-state storage of the last instance in a ContextVar; a test that
    disposed its instance would otherwise break the next ``materialize()`` ("Attempted to resolve
    undefined DagsterInstance weakref"). Each test starts without one."""
    try:
        from dagster._core.storage.defs_state import base
    except ImportError:  # pragma: no cover - other dagster versions
        yield
        return
    token = base._current_storage.set(None)
    try:
        yield
    finally:
        try:
            base._current_storage.reset(token)
        except ValueError:
            base._current_storage.set(None)
