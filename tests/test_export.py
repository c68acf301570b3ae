"""`opencoder export`: the final corpus as parquet, jsonl and dolma, read back with pyarrow/json."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import materialize

from opencoder_assets.core.export import export_partition
from opencoder_assets.definitions import code_assets
from tests.conftest import INCLUDE, copy_into, stdlib_files

PARTITIONED = [a for a in code_assets if a.partitions_def is not None]
SOURCE_INDEX = [a for a in code_assets if a.partitions_def is None]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    from resources import CodeSources, CorpusStorage, MetricsStore, PipelineSettings
    from resources.engine import ExecutionEngine

    tmp = tmp_path_factory.mktemp("export")
    root = tmp / "repos"
    copy_into(root / "cpy", stdlib_files(15), "Lib/")
    copy_into(root / "cpy", sorted(INCLUDE.glob("*.h"))[:8], "Include/")
    res = {"sources": CodeSources(folders=[str(root)], manifest=None),
           "storage": CorpusStorage(root=str(tmp / "data" / "corpus")),
           "metrics": MetricsStore(db_path=str(tmp / "data" / "metrics.duckdb")), "settings": PipelineSettings(),
           "engine": ExecutionEngine(kind="inprocess")}
    assert materialize(SOURCE_INDEX, resources=res).success
    for part in ("python", "c"):
        assert materialize(PARTITIONED, resources=res, partition_key=part).success
    return tmp, res["storage"]


def _final(storage, part):
    t = pq.read_table(storage.shards("refinecode_code", part))
    return {r["file_id"]: r for r in t.to_pylist()}


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "dolma"])
def test_export_round_trips(published, tmp_path, fmt):
    _, storage = published
    final = _final(storage, "python")
    assert final
    n = export_partition(storage.shards("refinecode_code", "python"), "python", tmp_path, fmt, created="2026-01-01")
    assert n["documents"] == len(final)
    if fmt == "parquet":
        rows = pq.read_table(sorted((tmp_path / "python").glob("part-*.parquet"))).to_pylist()
    elif fmt == "jsonl":
        rows = [json.loads(line) for f in sorted((tmp_path / "python").glob("*.jsonl")) for line in f.open()]
    else:
        rows = [json.loads(line) for f in sorted((tmp_path / "documents").glob("python-*.json.gz"))
                for line in gzip.open(f, "rt", encoding="utf-8")]
        assert all(r["source"] == "refinecode-python" and r["added"] == "2026-01-01" for r in rows)
    assert {r["id"] for r in rows} == set(final)
    for r in rows:
        src = final[r["id"]]
        assert r["text"] == src["content"]
        assert (r["metadata"]["repo"], r["metadata"]["path"], r["metadata"]["language"]) == (
            src["repo"], src["path"], src["language"])
        assert r["metadata"]["sha256"] == src["sha256"] and r["metadata"]["partition"] == "python"
    assert not list(tmp_path.rglob(".*.tmp"))


def test_export_command_all_partitions(published, tmp_path):
    tmp, storage = published
    env = {**os.environ, "OPENCODER_DATA": str(tmp / "data")}
    out = subprocess.run([sys.executable, "-m", "opencoder_assets.cli", "export", "--format", "jsonl", "--out",
                          str(tmp_path / "out")], env=env, capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    for part in ("python", "c"):
        assert f"{part}: {len(_final(storage, part))} documents" in out.stdout
        assert list((tmp_path / "out" / part).glob("part-*.jsonl"))
