"""Scale-out: fuzzy dedup on a Dask LocalCluster gives the single-process clusters; a partition runs on
Dagster's dask executor."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster  # a hard dependency (dask[distributed]): never skipped

from opencoder_assets.core.distributed_dedup import (
    compute_band_hashes_distributed,
    find_clusters_distributed,
    run_fuzzy_dedup_distributed,
)
from opencoder_assets.core.fuzzy_dedup import FuzzyDedupParams, compute_band_hashes, find_clusters
from tests.conftest import INCLUDE, copy_into, stdlib_files

UTC = dt.timezone.utc


def _edit(text: str, k: int, seed: int) -> str:
    """A real small edit: rename identifiers on k lines."""
    lines = text.splitlines()
    rng = np.random.default_rng(seed)
    cand = [i for i, ln in enumerate(lines) if len(ln.split()) >= 2]
    for i in rng.choice(cand, size=min(k, len(cand)), replace=False):
        lines[i] = " ".join(w + "_x" if w.isidentifier() else w for w in lines[i].split())
    return "\n".join(lines)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> list[str]:
    """Real stdlib modules, a third with one- and two-line edited copies, ties on stars/commit time."""
    out = tmp_path_factory.mktemp("fuzzy_in")
    rows: list[tuple[str, str, int | None, dt.datetime | None]] = []
    for i, f in enumerate(stdlib_files(90)):
        text = f.read_text(errors="replace")
        rows.append((f"a{i:04d}", text, (i % 4) or None, dt.datetime(2020, 1, 1 + i % 20, tzinfo=UTC)))
        if i % 3 == 0:
            rows.append((f"b{i:04d}", _edit(text, 1, i), 3, None))
            rows.append((f"c{i:04d}", _edit(text, 2, i + 1), (i % 4) or None,
                         dt.datetime(2020, 1, 1 + i % 20, tzinfo=UTC)))
    paths = []
    for s in range(3):
        part = rows[s::3]
        path = out / f"part-{s:05d}.parquet"
        pq.write_table(pa.table({
            "file_id": [r[0] for r in part],
            "content": pa.array([r[1] for r in part], pa.large_string()),
            "stars": pa.array([r[2] for r in part], pa.int64()),
            "commit_time": pa.array([r[3] for r in part], pa.timestamp("us", tz="UTC")),
        }), path, row_group_size=40)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


PARAMS = FuzzyDedupParams(num_perm=256, bands=32, rows=8, batch_rows=40)


@pytest.mark.parametrize("components_on", ["cluster", "client"])
def test_dask_clusters_identical_to_single_process(shards, client, tmp_path, components_on):
    """Connected components by label propagation on the cluster, or in one pass on the client
    (a small candidate graph): the same clusters as the single-process path either way."""
    compute_band_hashes(shards, tmp_path / "bands", PARAMS)
    single = find_clusters(tmp_path / "bands", tmp_path / "single.parquet", PARAMS, shards)
    dist = find_clusters_distributed(tmp_path / "bands", tmp_path / "dask.parquet", PARAMS, shards, client,
                                     local_max_edges=0 if components_on == "cluster" else None)
    assert dist.components_on == components_on
    assert (dist.cc_iterations > 1) == (components_on == "cluster")
    a = pq.read_table(tmp_path / "single.parquet")
    b = pq.read_table(tmp_path / "dask.parquet")
    assert single.clusters >= 20 and dist.clusters == single.clusters
    assert dist.candidate_edges == single.candidate_edges
    # same clusters, members, survivors, sizes, row order; est_similarity to the last ulp
    assert a.drop_columns(["est_similarity"]).equals(b.drop_columns(["est_similarity"]))
    np.testing.assert_allclose(a["est_similarity"].to_numpy(), b["est_similarity"].to_numpy(), rtol=1e-12)


def test_dask_clusters_do_not_depend_on_the_partition_count(shards, client, tmp_path, monkeypatch):
    """Many small shuffle partitions (as at 10 M documents) give the same clusters as the default."""
    import opencoder_assets.core.distributed_dedup as dd_mod

    compute_band_hashes(shards, tmp_path / "bands", PARAMS)
    find_clusters_distributed(tmp_path / "bands", tmp_path / "few.parquet", PARAMS, shards, client, local_max_edges=0)
    monkeypatch.setattr(dd_mod, "ROWS_PER_PARTITION", 97)
    many = find_clusters_distributed(tmp_path / "bands", tmp_path / "many.parquet", PARAMS, shards, client, local_max_edges=0)
    assert many.clusters >= 20
    a, b = pq.read_table(tmp_path / "few.parquet"), pq.read_table(tmp_path / "many.parquet")
    assert a.drop_columns(["est_similarity"]).equals(b.drop_columns(["est_similarity"]))
    np.testing.assert_allclose(a["est_similarity"].to_numpy(), b["est_similarity"].to_numpy(), rtol=1e-12)


def test_dask_end_to_end_including_signatures(shards, client, tmp_path):
    """Signatures as Dask tasks write the same band parts; the whole run removes the same files."""
    compute_band_hashes(shards, tmp_path / "single_bands", PARAMS)
    compute_band_hashes_distributed(shards, tmp_path / "dask_bands", PARAMS, client)
    single_parts = sorted(p.name for p in (tmp_path / "single_bands").glob("bands-*.parquet"))
    assert single_parts == sorted(p.name for p in (tmp_path / "dask_bands").glob("bands-*.parquet"))
    for name in single_parts:
        assert pq.read_table(tmp_path / "single_bands" / name).equals(pq.read_table(tmp_path / "dask_bands" / name))
    from opencoder_assets.core.fuzzy_dedup import run_fuzzy_dedup

    ref = run_fuzzy_dedup(shards, tmp_path / "ref", PARAMS)
    res = run_fuzzy_dedup_distributed(shards, tmp_path / "dist", PARAMS, client)
    assert res.removed_id_set() == ref.removed_id_set() and ref.removed_id_set()
    assert res.stats["clusters"] == ref.stats["clusters"]


def test_refinecode_partition_on_dagster_dask_executor(tmp_path):
    """source_index_job, then refinecode_dask_job for partition c: every step runs as a Dask task."""
    data = tmp_path / "data"
    repos = data / "default_corpus" / "repos"
    copy_into(repos / "cpy", sorted(INCLUDE.glob("*.h"))[:15], "Include/")
    (data / "default_corpus" / "manifest.json").write_text(json.dumps({"repos": [{"name": "cpy", "stars": 1}]}))
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "OPENCODER_DATA": str(data), "DAGSTER_HOME": str(home), "OPENCODER_DASK_WORKERS": "2",
           "OPENCODER_METRICS_DB": str(data / "metrics.duckdb")}
    env.pop("OPENCODER_DASK_SCHEDULER", None)
    dagster = str(Path(sys.executable).parent / "dagster")
    root = Path(__file__).resolve().parents[1]
    base = [dagster, "job", "execute", "-m", "opencoder_assets.scale_out_defs"]
    subprocess.run([*base, "-j", "source_index_job"], env=env, cwd=root, check=True, capture_output=True,
                   timeout=300)
    out = subprocess.run([*base, "-j", "refinecode_dask_job", "--tags", json.dumps({"dagster/partition": "c"})],
                         env=env, cwd=root, capture_output=True, text=True, timeout=600)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert "RUN_SUCCESS" in log
    assert "dask" in log.lower()
    from resources import MetricsStore

    metrics = MetricsStore(db_path=str(data / "metrics.duckdb"))
    steps = {r[0] for r in metrics.query("SELECT step FROM latest_step_runs WHERE partition = 'c'")}
    assert {"raw_code", "fuzzy_deduped_code", "refinecode_code"} <= steps
    n = metrics.query("SELECT kept FROM latest_step_runs WHERE partition = 'c' AND step = 'raw_code'")[0][0]
    assert n == 15
