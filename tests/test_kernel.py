"""The step kernel: engine equivalence, the registry snapshot, and publication under faults.

Real parts throughout: real stdlib files, real Parquet, real Dagster runs, a real process pool and
a real Dask LocalCluster, real SIGKILLs and a real (small) tmpfs for ENOSPC.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import materialize

from opencoder_assets.core.kernel import (
    ProcessPoolEngine,
    StepFailed,
    UnitTask,
    plan_units,
    run_step,
    run_unit,
)
from opencoder_assets.core.schema import CODE_SCHEMA, RAW_SCHEMA
from opencoder_assets.core.steps import CODE_STEPS, STEP_NAMES
from opencoder_assets.definitions import code_assets, code_checks, defs
from resources import CorpusStorage, MetricsStore
from resources.storage import PublicationError
from tests.conftest import INCLUDE, copy_into, stdlib_files
from tests.kernel_steps import STEP_BY_NAME as TEST_STEPS
from tests.kernel_steps import DieParams

PARTITIONED = [a for a in code_assets if a.partitions_def is not None]
SOURCE_INDEX = [a for a in code_assets if a.partitions_def is None]
SNAPSHOT = Path(__file__).parent / "golden" / "definitions_snapshot.json"


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> Path:
    """~260 real files with exact and near duplicates, C headers, and a PII-bearing header."""
    root = tmp_path_factory.mktemp("kernel") / "repos"
    mods = stdlib_files(220)
    copy_into(root / "cpy", mods, "Lib/")
    copy_into(root / "cpy", sorted(INCLUDE.glob("*.h"))[:20], "Include/")
    copy_into(root / "fork", mods[:15], "vendored/")  # exact duplicates
    for m in mods[15:25]:  # near duplicates
        lines = m.read_text(errors="replace").splitlines()
        lines[min(5, len(lines) - 1)] += "  # patched"
        (root / "fork" / "vendored" / f"patched_{m.name}").write_text("\n".join(lines) + "\n")
    return root


def _run_partition(resources: dict, partition: str = "python", **kw):
    assert materialize(SOURCE_INDEX, resources=resources).success
    return materialize([*PARTITIONED, *code_checks], resources=resources, partition_key=partition, **kw)


def _outputs(storage: CorpusStorage, partition: str = "python") -> dict:
    """Everything published per step, independent of unit file names: kept ids, decisions, sides."""
    out = {}
    for step in STEP_NAMES:
        d = storage.current_dir(step, partition)
        files = sorted(d.glob("*.parquet"))
        tables = {}
        for prefix in ("part", "decisions", "dedup_clusters", "transform_edits", "quality_signals"):
            group = [f for f in files if f.name.startswith(prefix + "-")]
            if group:
                t = pq.read_table(group).sort_by("file_id")
                tables[prefix] = t.drop_columns([c for c in ("content",) if c in t.column_names]).to_pylist()
                if "content" in pq.read_schema(group[0]).names:
                    tables[prefix + "_content"] = sorted(pq.read_table(group, columns=["content"])["content"].to_pylist())
        out[step] = tables
    return out


# ------------------------------------------------------------------------------ engine equivalence
def test_engines_publish_identical_outputs(repos, tmp_path, pipeline_resources):
    """In-process vs a 2-process pool vs a 2-worker Dask LocalCluster, small units so the pool and
    the cluster really split the partition: identical kept files, decisions, clusters, signals."""
    results = {}
    for engine in ("inprocess", "processes", "dask"):
        res = pipeline_resources([repos], None, engine=engine, workers=2, unit_rows=60, batch_rows=40)
        res["storage"] = CorpusStorage(root=str(tmp_path / engine / "corpus"))
        res["metrics"] = MetricsStore(db_path=str(tmp_path / engine / "metrics.duckdb"))
        result = _run_partition(res)
        assert result.success, engine
        mats = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
        assert engine in mats["quality_signals"]["engine"].value
        for step, md in mats.items():  # native metadata: row count, schema, typed reason table
            if step not in STEP_NAMES:
                continue
            assert md["dagster/row_count"].value == md["kept_files"].value
            dropped = sum(r.data["files"] for r in md["drop_reasons"].records)
            assert dropped == md["dropped_files"].value == md["input_files"].value - md["kept_files"].value
            if step != "quality_signals":
                cols = [c.name for c in md["dagster/column_schema"].schema.columns]
                assert cols == (RAW_SCHEMA if step == "raw_code" else CODE_SCHEMA).names
        results[engine] = _outputs(res["storage"])
        fz = res["storage"].manifest("fuzzy_deduped_code", "python")["extra"]
        assert fz["removed"] >= 1  # the near duplicates were found
        ex = res["storage"].manifest("exact_deduped_code", "python")["extra"]
        assert ex["duplicate_groups"] == 15  # the vendored exact copies
        if engine == "dask":
            assert fz["cluster_engine"] == "dask" and ex["ranking_engine"] == "dask"
    assert results["inprocess"] == results["processes"] == results["dask"]
    # the plan really had several units (so the pool/cluster had work to spread)
    assert len(res["storage"].manifest("quality_signals", "python")["units"]) >= 3


# --------------------------------------------------------------------------------- the registry
def _snapshot() -> dict:
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "partitioned": node.partitions_def is not None,
            "checks": sorted(c.name for c in node.check_keys),
        }
    return {"assets": assets, "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
            "schedules": sorted(s.name for s in repo.schedule_defs),
            "sensors": sorted(s.name for s in repo.sensor_defs)}


def test_asset_graph_follows_the_registry():
    """Each registry entry is one asset whose upstream is the entry before it; refinecode_job and
    the lineage/schedule/scale-out step orders are the registry's order."""
    from opencoder_assets.lineage import STEP_ORDER
    from opencoder_assets.scale_out import PARTITION_STEPS as DASK_STEPS
    from sensors.schedules import PARTITION_STEPS

    snap = _snapshot()
    for i, spec in enumerate(CODE_STEPS):
        assert spec.name in snap["assets"]
        assert snap["assets"][spec.name]["deps"] == [CODE_STEPS[i - 1].name if i else "source_index"]
        assert snap["assets"][spec.name]["partitioned"]
    assert STEP_ORDER == PARTITION_STEPS == DASK_STEPS == STEP_NAMES
    job = defs.resolve_job_def("refinecode_job")
    assert {n.name for n in job.graph.node_defs} >= set(STEP_NAMES)
    assert job.executor_def.name == "in_process"


def test_definitions_snapshot():
    """The whole Definitions (assets, deps, checks, jobs, schedules, sensors) against a reviewed
    snapshot; regenerate with OPENCODER_UPDATE_SNAPSHOT=1 after an intended change."""
    snap = _snapshot()
    if os.environ.get("OPENCODER_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(snap, indent=1, sort_keys=True) + "\n")
    assert snap == json.loads(SNAPSHOT.read_text())


# ------------------------------------------------------------------------------- publication faults
def _publish(storage: CorpusStorage, step: str = "s", partition: str = "p", payload: bytes = b"x") -> Path:
    with storage.writer(step, partition) as w:
        (w.path / "part-00000.parquet").write_bytes(payload)
        w.commit({"step": step, "partition": partition, "counts": {"input_count": 1, "kept": 1}})
    return storage.current_dir(step, partition)


@pytest.mark.parametrize("pointer", ["", "v-123", "../../other/p/v-01796530327446124504-fcb40fb1",
                                     "v-01796530327446124504-fcb40fb1"])
def test_bad_current_pointer_is_an_error_naming_it(tmp_path, pointer):
    storage = CorpusStorage(root=str(tmp_path / "corpus"))
    _publish(storage)
    (storage.base_dir("s", "p") / "CURRENT").write_text(pointer)
    with pytest.raises(PublicationError, match="CURRENT"):
        storage.shards("s", "p")
    # the metrics store refuses too, instead of silently describing nothing
    with pytest.raises(PublicationError, match="CURRENT"):
        MetricsStore(db_path=str(tmp_path / "m.duckdb")).query("SELECT * FROM step_runs")


def test_incomplete_version_is_not_followed(tmp_path):
    storage = CorpusStorage(root=str(tmp_path / "corpus"))
    good = _publish(storage)
    (good / "_MANIFEST.json").unlink()
    with pytest.raises(PublicationError, match="incomplete"):
        storage.current_dir("s", "p")


def test_concurrent_writers_of_one_partition_serialise(tmp_path):
    """Two writers of one partition: the second waits for the first; both versions complete, the
    later one is current, and the clean-up never removed a version while it was being written."""
    storage = CorpusStorage(root=str(tmp_path / "corpus"), keep_versions=1)
    first = storage.writer("s", "p")
    (first.path / "part-00000.parquet").write_bytes(b"first")
    done = {}

    def second():
        with storage.writer("s", "p") as w:
            (w.path / "part-00000.parquet").write_bytes(b"second")
            done["second"] = w.commit({"step": "s"})

    t = threading.Thread(target=second)
    t.start()
    time.sleep(0.5)
    assert "second" not in done and t.is_alive()  # blocked on the partition lock
    assert (first.path / "part-00000.parquet").read_bytes() == b"first"
    first.commit({"step": "s"})
    t.join(10)
    assert storage.current_dir("s", "p") == done["second"]
    assert storage.shards("s", "p")[0].read_bytes() == b"second"


def test_lock_timeout_names_the_lock(tmp_path):
    storage = CorpusStorage(root=str(tmp_path / "corpus"), lock_timeout_s=0.3)
    w = storage.writer("s", "p")
    with pytest.raises(TimeoutError, match=r"\.lock.*pid="):
        storage.writer("s", "p")
    w.abort()


_CRASH = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, sys.argv[3])
    from resources.storage import CorpusStorage
    point = sys.argv[2]
    real_rename, real_replace = os.rename, os.replace
    def die(*a, **k):
        os.kill(os.getpid(), signal.SIGKILL)
    if point == "before_rename":
        os.rename = die
    elif point == "before_pointer":
        def replace(src, dst, *a, **k):
            if str(dst).endswith("CURRENT"):
                die()
            return real_replace(src, dst, *a, **k)
        os.replace = replace
    storage = CorpusStorage(root=sys.argv[1])
    w = storage.writer("s", "p")
    (w.path / "part-00000.parquet").write_bytes(b"new")
    (w.path / "decisions-00000.parquet").write_bytes(b"new")
    w.commit({"step": "s", "partition": "p", "counts": {"input_count": 7, "kept": 7}})
""")


@pytest.mark.parametrize("point", ["before_rename", "before_pointer"])
def test_kill_during_publication_keeps_data_and_metrics_in_agreement(tmp_path, point):
    """SIGKILL between the manifest (the metrics record) and the pointer swap: the old version is
    still published, the metrics describe it (not the half-published one), and the next writer
    cleans up the debris."""
    root = tmp_path / "corpus"
    storage = CorpusStorage(root=str(root))
    old = _publish(storage, payload=b"old")
    metrics = MetricsStore(db_path=str(tmp_path / "m.duckdb"))
    script = tmp_path / "crash.py"
    script.write_text(_CRASH)
    proc = subprocess.run([sys.executable, str(script), str(root), point, str(Path(__file__).resolve().parents[1])],
                          capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert storage.current_dir("s", "p") == old
    assert storage.shards("s", "p")[0].read_bytes() == b"old"
    assert metrics.query("SELECT version, kept FROM step_runs WHERE step = 's'") == [(old.name, 1)]
    base = storage.base_dir("s", "p")
    new = _publish(storage, payload=b"newer")
    assert storage.current_dir("s", "p") == new
    assert not [p.name for p in base.iterdir() if p.name.startswith((".staging", ".CURRENT."))]
    assert sorted(p.name for p in base.iterdir() if p.name.startswith("v-")) == sorted({old.name, new.name})


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")
def test_enospc_leaves_previous_version_published(tmp_path, pipeline_resources):
    """A partition step that runs out of disk fails loudly; the published version, its metrics and
    the directory listing are as before (no staging debris, no stray pointer file)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], check=True)
    try:
        root = tmp_path / "repos"
        copy_into(root / "a", stdlib_files(5))
        res = pipeline_resources([root], None)
        res["storage"] = CorpusStorage(root=str(mnt / "corpus"))
        res["metrics"] = MetricsStore(db_path=str(mnt / "metrics.duckdb"))
        assert materialize(SOURCE_INDEX, resources=res).success
        raw = [a for a in PARTITIONED if a.key.to_user_string() == "raw_code"]
        assert materialize(raw, resources=res, partition_key="python").success
        before = res["storage"].current_dir("raw_code", "python")
        listing = sorted(p.name for p in before.parent.iterdir())
        filler = mnt / "filler"
        free = shutil.disk_usage(mnt).free
        filler.write_bytes(b"\0" * max(0, free - 8192))
        filler.unlink()
        copy_into(root / "a", stdlib_files(40, start=5))
        assert materialize(SOURCE_INDEX, resources=res).success
        filler.write_bytes(b"\0" * max(0, shutil.disk_usage(mnt).free - 8192))
        result = materialize(raw, resources=res, partition_key="python", raise_on_error=False)
        assert not result.success
        errors = " ".join(e.event_specific_data.error.to_string() for e in result.all_events
                          if e.event_type_value == "STEP_FAILURE")
        assert "No space left" in errors or "ENOSPC" in errors or "Errno 28" in errors, errors
        assert res["storage"].current_dir("raw_code", "python") == before
        assert sorted(p.name for p in before.parent.iterdir()) == listing
        filler.unlink()
        assert res["metrics"].query("SELECT kept FROM step_runs WHERE step = 'raw_code'") == [(5,)]
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_flipped_bit_in_a_shard_is_detected(tmp_path, pipeline_resources):
    root = tmp_path / "repos"
    copy_into(root / "a", stdlib_files(12))
    res = pipeline_resources([root], None)
    assert materialize(SOURCE_INDEX, resources=res).success
    steps = [a for a in PARTITIONED if a.key.to_user_string() in ("raw_code", "preprocessed_code")]
    assert materialize(steps[:1], resources=res, partition_key="python").success
    shard = res["storage"].shards("raw_code", "python")[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x10
    shard.write_bytes(bytes(data))
    result = materialize(steps[1:], resources=res, partition_key="python", raise_on_error=False)
    assert not result.success
    errors = " ".join(e.event_specific_data.error.to_string() for e in result.all_events
                      if e.event_type_value == "STEP_FAILURE")
    assert str(shard) in errors and "sha256" in errors
    assert not res["storage"].has("preprocessed_code", "python")


# ------------------------------------------------------------------------------------- dead workers
def _shard(tmp_path: Path, n: int, die_at: int | None = None) -> Path:
    import pyarrow as pa

    from opencoder_assets.core.schema import CODE_SCHEMA

    files = stdlib_files(n)
    rows = [{"file_id": f"{i:020x}", "source": "t", "repo": "r", "path": f.name, "language": "Python",
             "doc_type": "code", "ext": "py", "size_bytes": f.stat().st_size, "sha256": None, "stars": None,
             "commit_time": None, "content": f.read_text(errors="replace") + ("__die__" if i == die_at else "")}
            for i, f in enumerate(files)]
    path = tmp_path / "part-00000.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=CODE_SCHEMA), path, row_group_size=10)
    return path


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie; a process reaped mid-read counts as gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _children() -> set[int]:
    """Live child processes of this test process (read from /proc, no helper process)."""
    me = os.getpid()
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == me and fields[0] != "Z":
            out.add(int(stat.parent.name))
    return out


def test_killed_pool_worker_fails_the_step_fast_and_leaves_no_process(tmp_path):
    shard = _shard(tmp_path, 60, die_at=45)
    units = plan_units([shard], 10)
    out = tmp_path / "out"
    out.mkdir()
    before = _children()
    engine = ProcessPoolEngine(2)
    t0 = time.monotonic()
    with pytest.raises(StepFailed, match=r"die\[python\].*worker process died.*unit 00000-0000[0-9]"):
        try:
            run_step(TEST_STEPS["die"], partition="python", params=DieParams(), units=units, input_shards=[shard],
                     out_dir=out, work_dir=tmp_path / "w", engine=engine, batch_rows=10,
                     spec_module="tests.kernel_steps")
        finally:
            engine.close()
    assert time.monotonic() - t0 < 30
    def workers() -> set[int]:
        out = set()
        for pid in _children() - before:
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                state = Path(f"/proc/{pid}/stat").read_text().split()[2]
            except (FileNotFoundError, ProcessLookupError):
                continue
            if "forkserver" not in cmd and "resource_tracker" not in cmd and state != "Z":
                out.add(pid)
        return out

    deadline = time.monotonic() + 10
    while workers() and time.monotonic() < deadline:
        time.sleep(0.1)
    leftover = workers()
    assert not leftover


def test_pool_workers_stop_on_sigterm_even_if_the_parent_ignores_it(tmp_path):
    """Workers must not inherit a handler that ignores SIGTERM (Dagster installs its own)."""
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        engine = ProcessPoolEngine(2)
        shard = _shard(tmp_path, 20)
        task = UnitTask("die", "python", "tests.kernel_steps", DieParams(), str(tmp_path), 10)
        list(engine.map(run_unit, task, plan_units([shard], 10), "die[python]"))
        pids = list(engine._pool._processes)
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while any(_running(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        alive = [p for p in pids if _running(p)]
        assert not alive
        engine.close()
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_step_that_loses_a_decision_fails_naming_the_unit(tmp_path):
    shard = _shard(tmp_path, 12)
    with pytest.raises(StepFailed, match=r"lose\[python\] unit 00000-00000 .*part-00000.parquet.*decision rows"):
        run_step(TEST_STEPS["lose"], partition="python", params=DieParams(), units=plan_units([shard], 100),
                 input_shards=[shard], out_dir=tmp_path, work_dir=tmp_path / "w",
                 engine=__import__("opencoder_assets.core.kernel", fromlist=["Engine"]).Engine(), batch_rows=10,
                 spec_module="tests.kernel_steps")


# ------------------------------------------------------------------------ partitions follow the data
def test_partitions_without_files_are_not_missing_work(tmp_path, pipeline_resources):
    from dagster import AssetKey, instance_for_test

    root = tmp_path / "repos"
    copy_into(root / "a", stdlib_files(4))
    res = pipeline_resources([root], None)
    with instance_for_test() as instance:
        assert materialize(SOURCE_INDEX, resources=res, instance=instance).success
        for step in STEP_NAMES:
            done = instance.get_materialized_partitions(AssetKey(step))
            assert "rust" in done and "sql" in done, step  # no files: recorded, 0 rows
            assert "python" not in done, step  # has files: real work is missing
        ev = instance.get_latest_materialization_event(AssetKey("raw_code"))
        assert ev is not None
        python = materialize(PARTITIONED, resources=res, instance=instance, partition_key="python")
        assert python.success
        assert "python" in instance.get_materialized_partitions(AssetKey("refinecode_code"))
        # a second index run does not re-record partitions that have published data
        assert materialize(SOURCE_INDEX, resources=res, instance=instance).success
        recorded = [e for e in python.all_events if e.is_step_materialization]
        assert recorded and all(e.partition == "python" for e in recorded)


def test_target_jaccard_derives_bands_and_rows_from_datasketch(repos, pipeline_resources):
    """The launchpad's target Jaccard becomes bands x rows via datasketch's optimiser; a lower
    threshold finds at least the near duplicates the paper's 16 x 128 finds."""
    from datasketch.lsh import _optimal_param

    res = pipeline_resources([repos], None, engine="inprocess")
    assert materialize(SOURCE_INDEX, resources=res).success
    upto = [a for a in PARTITIONED if a.key.to_user_string() in STEP_NAMES[:4]]
    assert materialize(upto, resources=res, partition_key="python").success
    paper = res["storage"].manifest("fuzzy_deduped_code", "python")["extra"]
    fuzzy = [a for a in PARTITIONED if a.key.to_user_string() == "fuzzy_deduped_code"]
    cfg = {"ops": {"fuzzy_deduped_code": {"config": {"target_jaccard": 0.7}}}}
    assert materialize(fuzzy, resources=res, partition_key="python", run_config=cfg).success
    derived = res["storage"].manifest("fuzzy_deduped_code", "python")["extra"]
    b, r = _optimal_param(0.7, 2048, 0.5, 0.5)
    assert (b, r) != (16, 128)
    assert derived["bands_x_rows"] == f"{b} x {r} (from target_jaccard=0.7)"
    assert derived["params"]["bands"] == b and derived["params"]["rows"] == r
    assert derived["removed"] >= paper["removed"] >= 5


def test_raw_units_stream_the_index_in_order(tmp_path):
    """raw_code's plan reads the partition's index rows batch by batch (one unit held at a time):
    units of exactly ``unit_rows`` rows (the last one shorter), in index order, only this partition,
    across index shards whose batches straddle unit boundaries."""
    import pyarrow as pa

    from opencoder_assets.core.steps import plan_raw_units

    shards = []
    n = 0
    for s in range(3):
        langs = ["python" if (n + i) % 3 else "c" for i in range(50)]
        t = pa.table({"path": [f"r/f{n + i:04d}.x" for i in range(50)], "partition": langs})
        n += 50
        path = tmp_path / f"index-{s}.parquet"
        pq.write_table(t, path, row_group_size=9)  # batches of 9 rows, units of 7
        shards.append(path)
    units = plan_raw_units(shards, [], "python", tmp_path / "work", 7)
    rows = [pq.read_table(u.payload[1]) for u in units]
    assert [r.num_rows for r in rows[:-1]] == [7] * (len(rows) - 1) and 0 < rows[-1].num_rows <= 7
    expected = pa.concat_tables(pq.read_table(s) for s in shards)
    expected = expected.filter(pa.compute.equal(expected["partition"], "python"))["path"].to_pylist()
    assert [p for r in rows for p in r["path"].to_pylist()] == expected
    assert [u.key for u in units] == [f"{i:05d}-00000" for i in range(len(units))]
