"""SQL built around paths/settings survives a data root containing a single quote.

Why: DuckDB cannot take a parameter for ``COPY ... TO '<file>'`` or ``SET``; those literals are
built with ``sql_str``. These tests run the real core dedups on a real directory named with a
``'`` (and a ``--`` to make an unquoted literal a comment).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opencoder_assets.core.duckdb_sql import sql_path_list, sql_str
from opencoder_assets.core.exact_dedup import exact_dedup
from opencoder_assets.core.fuzzy_dedup import FuzzyDedupParams, run_fuzzy_dedup
from opencoder_assets.core.web_recall import aggregate_domains
from tests.test_fuzzy_dedup import _real_files, _write_shards

UTC = dt.timezone.utc
QUOTED = "o'neil's -- data"


def test_sql_str_round_trips_through_duckdb() -> None:
    con = duckdb.connect()
    try:
        for value in ["plain", "o'neil", "''", "a'); DROP TABLE x; --", "ünï'côdé"]:
            assert con.execute(f"SELECT {sql_str(value)}").fetchone()[0] == value
        listed = sql_path_list([Path("/a/b"), "c'd"])
        assert con.execute(f"SELECT {listed}").fetchone()[0] == ["/a/b", "c'd"]
    finally:
        con.close()
    with pytest.raises(ValueError, match="NUL"):
        sql_str("a\x00b")


def test_exact_dedup_in_a_quoted_data_root(tmp_path: Path) -> None:
    root = tmp_path / QUOTED
    shards = []
    for s in range(2):
        table = pa.table({
            "file_id": [f"f{s}a", f"f{s}b"], "repo": ["r", "r"], "path": [f"{s}a.py", f"{s}b.py"],
            "language": ["python"] * 2, "size_bytes": pa.array([1, 1], pa.int64()),
            "sha256": ["same", f"own{s}"], "stars": pa.array([s, s], pa.int64()),
            "commit_time": pa.array([None, None], pa.timestamp("us", tz="UTC")),
            "content": ["x", f"y{s}"],
        })
        path = root / "in" / f"shard-{s}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        shards.append(path)
    stats = exact_dedup(shards, root / "out", root / "out" / "decisions.parquet", memory_limit="1GB")
    assert (stats.input_files, stats.kept_files, stats.duplicate_groups) == (4, 3, 1)
    kept = pq.read_table(sorted((root / "out").glob("part-*.parquet"))).column("file_id").to_pylist()
    assert sorted(kept) == ["f0b", "f1a", "f1b"]  # f1a has more stars than f0a
    decisions = pq.read_table(root / "out" / "decisions.parquet").to_pylist()
    assert {d["file_id"]: d["detail"] for d in decisions}["f0a"] == "duplicate_of:f1a"


def test_fuzzy_dedup_in_a_quoted_data_root(tmp_path: Path) -> None:
    (_, text), (_, other) = _real_files(2, min_lines=300)[:2]
    t = dt.datetime(2023, 1, 1, tzinfo=UTC)
    recs = [
        {"file_id": "a1", "content": text, "stars": 1, "commit_time": t},
        {"file_id": "a2", "content": text + "\n", "stars": 9, "commit_time": t},
        {"file_id": "b1", "content": other, "stars": 1, "commit_time": t},
    ]
    root = tmp_path / QUOTED
    params = FuzzyDedupParams(num_perm=256, bands=32, rows=8, verify_jaccard=0.5, memory_limit="1GB")
    res = run_fuzzy_dedup(_write_shards(recs, root / "in", 2), root / "work", params)
    assert res.stats["removed"] == 1 and res.stats["verified_edges"] >= 1
    assert pq.read_table(res.removed_ids).column("file_id").to_pylist() == ["a1"]
    assert str(res.clusters_path).startswith(str(root))


def test_domain_aggregation_reads_score_files_in_a_quoted_root(tmp_path: Path) -> None:
    path = tmp_path / QUOTED / "scores.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"domain": ["a.org", "a.org", "b.org"], "score": [0.9, 0.1, 0.2]}), path)
    out = aggregate_domains([path], min_ratio=0.1, memory_limit="1GB").to_pylist()
    assert {r["domain"]: (r["pages"], r["code_pages"]) for r in out} == {"a.org": (2, 1), "b.org": (1, 0)}
