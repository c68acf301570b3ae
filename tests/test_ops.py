"""Operations: schedules and sensors (Dagster's test contexts), failure sensor, lineage, blocking checks."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    build_run_status_sensor_context,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
    materialize,
)

from opencoder_assets.assets.checks import OPS_CHECKS, schema_drift
from opencoder_assets.core.schema import CODE_SCHEMA
from opencoder_assets.definitions import code_assets, code_checks, refinecode_job, source_index_job
from opencoder_assets.lineage import inputs_of, lineage_main, resolve_file_ids, where
from sensors import OPS_JOBS, SCHEDULES, SENSORS
from sensors.code_sensors import (
    PARTITIONS_TAG,
    new_code_sensor,
    record_run_failures_sensor,
    reindexed_partitions_sensor,
)
from sensors.schedules import nightly_stale_partitions_schedule, stale_partitions
from tests.conftest import INCLUDE, STDLIB, copy_into

PARTITIONED = [a for a in code_assets if a.partitions_def is not None]
SOURCE_INDEX = [a for a in code_assets if a.partitions_def is None]


def _long_modules(n: int) -> list[Path]:
    """Real stdlib modules long enough that a one-line edit stays above the 16x128 LSH threshold."""
    files = sorted(p for p in STDLIB.glob("*.py") if 1500 <= len(p.read_text(errors="replace").splitlines()) <= 4000)
    return files[:n]


@pytest.fixture()
def corpus(tmp_path: Path) -> tuple[Path, Path]:
    """cpy: real modules + C headers; fork: exact copies of two modules and a one-line edit of a third."""
    root = tmp_path / "repos"
    mods = _long_modules(4)
    assert len(mods) == 4
    copy_into(root / "cpy", mods, "Lib/")
    copy_into(root / "cpy", sorted(INCLUDE.glob("*.h"))[:6], "Include/")
    copy_into(root / "fork", mods[:2], "vendored/")
    edited = mods[2].read_text().splitlines()
    edited[10] = edited[10] + "  # local patch"
    (root / "fork" / "vendored" / f"patched_{mods[2].name}").write_text("\n".join(edited) + "\n")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"repos": [
        {"name": "cpy", "stars": 100, "commit_time": "2024-01-01T00:00:00Z"},
        {"name": "fork", "stars": 3, "commit_time": "2024-06-01T00:00:00Z"},
    ]}))
    return root, manifest


def _defs(resources: dict) -> Definitions:
    """The project's assets/jobs plus this feature's schedules, sensors, jobs and checks."""
    return Definitions(assets=[*code_assets], asset_checks=[*code_checks, *OPS_CHECKS],
                       jobs=[source_index_job, refinecode_job, *OPS_JOBS], schedules=SCHEDULES, sensors=SENSORS,
                       resources=resources)


def _run(instance: DagsterInstance, res: dict, partition: str, index: bool = True):
    if index:
        assert materialize(SOURCE_INDEX, resources=res, instance=instance).success
    return materialize([*PARTITIONED, *OPS_CHECKS], resources=res, instance=instance, partition_key=partition,
                       raise_on_error=False)


def test_definitions_with_ops_load(pipeline_resources):
    defs = _defs(pipeline_resources([]))
    Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    assert {"nightly_stale_partitions_schedule"} <= {s.name for s in repo.schedule_defs}
    assert {"new_code_sensor", "reindexed_partitions_sensor", "record_run_failures_sensor",
            "refinecode_automation_sensor"} <= {s.name for s in repo.sensor_defs}


def test_nightly_schedule_requests_only_stale_partitions(corpus, pipeline_resources):
    root, manifest = corpus
    res = pipeline_resources([root], manifest)
    repo = _defs(res).get_repository_def()
    with instance_for_test() as instance:
        # contexts are entered and exited: one left to the garbage collector exits the instance it
        # opened from the ref at a random later point, resetting Dagster's current defs-state
        # storage to this (by then dead) instance in whichever test runs at that moment
        with build_schedule_context(instance=instance, repository_def=repo,
                                    scheduled_execution_time=dt.datetime(2030, 1, 1, 2, tzinfo=dt.timezone.utc)) as ctx:
            assert nightly_stale_partitions_schedule.evaluate_tick(ctx).skip_message  # nothing indexed yet
        assert _run(instance, res, "python").success
        now = time.time()
        # c has files in the index but was never run; python is fresh
        assert stale_partitions(instance, now) == {"c": "never materialized"}
        with build_schedule_context(instance=instance, repository_def=repo,
                                    scheduled_execution_time=dt.datetime.now(dt.timezone.utc)) as ctx:
            data = nightly_stale_partitions_schedule.evaluate_tick(ctx)
        reqs = data.run_requests
        assert [r.partition_key for r in reqs] == ["c"]
        assert reqs[0].run_config == {}  # one process per run whatever the size (in_process_executor)
        assert reqs[0].tags["opencoder/stale_reason"] == "never materialized"
        # a re-index makes python stale too; an upstream step re-run alone makes it stale as well
        assert materialize(SOURCE_INDEX, resources=res, instance=instance).success
        assert stale_partitions(instance, time.time()) == {"c": "never materialized", "python": "source_index is newer"}
        assert _run(instance, res, "python", index=False).success
        assert materialize([a for a in PARTITIONED if a.key == AssetKey("filtered_code")], resources=res,
                           instance=instance, partition_key="python").success
        assert stale_partitions(instance, time.time())["python"] == "filtered_code is newer"
        # age: a month later everything fresh is stale again
        assert materialize([a for a in PARTITIONED if a.key == AssetKey("refinecode_code")], resources=res,
                           instance=instance, partition_key="python").success
        assert "python" not in stale_partitions(instance, time.time())
        assert stale_partitions(instance, time.time() + 31 * 86400)["python"].startswith("older than")


def test_new_code_sensor_triggers_reindex_then_affected_partitions(corpus, pipeline_resources):
    root, manifest = corpus
    res = pipeline_resources([root], manifest)
    defs = _defs(res)
    with instance_for_test() as instance:
        def tick(cursor):
            with build_sensor_context(instance=instance, cursor=cursor, resources={"sources": res["sources"]},
                                      definitions=defs) as ctx:
                return new_code_sensor.evaluate_tick(ctx)

        first = tick(None)  # never indexed: everything is new
        assert len(first.run_requests) == 1
        req = first.run_requests[0]
        assert req.job_name == "source_index_job"
        assert req.tags[PARTITIONS_TAG] == "c,python"
        cursor = first.cursor
        assert tick(cursor).skip_message and not tick(cursor).run_requests  # nothing changed

        # a new repo with Go and a shell script
        (root / "newrepo").mkdir()
        (root / "newrepo" / "main.go").write_text("package main\n\nfunc main() {}\n")
        (root / "newrepo" / "build.sh").write_text("#!/bin/sh\necho hi\n")
        data = tick(cursor)
        assert data.run_requests[0].tags[PARTITIONS_TAG] == "go,shell"
        cursor = data.cursor
        # a changed header of an existing repo -> only c
        header = next((root / "cpy" / "Include").glob("*.h"))
        future = time.time() + 60
        header.write_text(header.read_text() + "\n/* patched */\n")
        os.utime(header, (future, future))
        data = tick(cursor)
        assert data.run_requests[0].tags[PARTITIONS_TAG] == "c"
        cursor = data.cursor
        # a deleted Python file -> python (its partition's file count dropped)
        next((root / "fork" / "vendored").glob("*.py")).unlink()
        data = tick(cursor)
        assert data.run_requests[0].tags[PARTITIONS_TAG] == "python"
        # a whole repo removed -> every partition it had
        cursor = data.cursor
        for f in (root / "newrepo").iterdir():
            f.unlink()
        (root / "newrepo").rmdir()
        assert tick(cursor).run_requests[0].tags[PARTITIONS_TAG] == "go,shell"

        # once the re-index succeeded, the follow-up sensor asks for one refinecode_job run per partition
        result = defs.resolve_job_def("source_index_job").execute_in_process(
            instance=instance, tags={PARTITIONS_TAG: "c,python"})
        assert result.success
        with build_sensor_context(instance=instance, cursor=None, definitions=defs) as ctx:
            follow = reindexed_partitions_sensor.evaluate_tick(ctx)
        assert sorted(r.partition_key for r in follow.run_requests) == ["c", "python"]
        assert {r.job_name for r in follow.run_requests} == {"refinecode_job"}
        with build_sensor_context(instance=instance, cursor=follow.cursor, definitions=defs) as ctx:
            again = reindexed_partitions_sensor.evaluate_tick(ctx)
        assert not again.run_requests


def test_first_tick_after_existing_index_only_records_baseline(corpus, pipeline_resources):
    root, manifest = corpus
    res = pipeline_resources([root], manifest)
    with instance_for_test() as instance:
        assert materialize(SOURCE_INDEX, resources=res, instance=instance).success
        with build_sensor_context(instance=instance, resources={"sources": res["sources"]},
                                  definitions=_defs(res)) as ctx:
            data = new_code_sensor.evaluate_tick(ctx)
        assert not data.run_requests and data.cursor


def test_run_failure_sensor_records_failure(corpus, pipeline_resources):
    root, manifest = corpus
    res = pipeline_resources([root], manifest)
    with instance_for_test() as instance:
        # raw_code without a source_index fails: a real failed run
        result = materialize([a for a in PARTITIONED if a.key == AssetKey("raw_code")], resources=res,
                             instance=instance, partition_key="c", raise_on_error=False)
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        failure = next(e for e in instance.all_logs(result.run_id, of_type=DagsterEventType.RUN_FAILURE))
        ctx = build_run_status_sensor_context(
            sensor_name="record_run_failures_sensor", dagster_event=failure.dagster_event, dagster_instance=instance,
            dagster_run=run, resources={"metrics": res["metrics"]},
        ).for_run_failure()
        record_run_failures_sensor(ctx)
    rows = res["metrics"].query("SELECT run_id, job_name, message FROM run_failures")
    assert len(rows) == 1
    assert rows[0][0] == result.run_id
    assert "[partition c]" in rows[0][2] and "source_index has not been materialized" in rows[0][2]


def test_lineage_command_on_a_real_run(corpus, pipeline_resources, capsys):
    root, manifest = corpus
    res = pipeline_resources([root], manifest)
    with instance_for_test() as instance:
        assert _run(instance, res, "python").success
    store = res["metrics"]
    db = store.db_path
    mods = _long_modules(4)
    # an exact copy in fork lost to cpy (more stars): where did it go and why
    assert lineage_main(["where", f"fork/vendored/{mods[0].name}", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "dropped at exact_deduped_code: exact_duplicate" in out
    assert f"-> cpy/Lib/{mods[0].name}" in out
    steps = [ln.split()[0] for ln in out.splitlines()[1:] if ln.startswith("  ") and "[python]" in ln]
    assert steps == ["raw_code", "preprocessed_code", "exact_deduped_code"]
    # the patched copy is a fuzzy duplicate
    patched = where(store, resolve_file_ids(store, f"fork/vendored/patched_{mods[2].name}")[0])
    assert patched.final.startswith("dropped at fuzzy_deduped_code: fuzzy_duplicate")
    assert patched.steps[-1].duplicate_of_path == f"cpy/Lib/{mods[2].name}"
    assert patched.fuzzy_cluster and patched.fuzzy_cluster["cluster_size"] == 2
    # a kept file went through every step
    kept = where(store, resolve_file_ids(store, f"cpy/Lib/{mods[0].name}")[0])
    assert [s.step for s in kept.steps][-1] == "refinecode_code" and kept.final.startswith("in the RefineCode")
    assert [s.step for s in kept.steps] == ["raw_code", "preprocessed_code", "exact_deduped_code",
                                            "fuzzy_deduped_code", "transformed_code", "quality_signals",
                                            "filtered_code", "refinecode_code"]
    # which inputs produced the output file: its raw input and the duplicates it absorbed
    if kept.final.startswith("in the RefineCode"):
        assert lineage_main(["inputs", f"cpy/Lib/{mods[0].name}", "--db", db, "--json"]) == 0
        data = json.loads(capsys.readouterr().out)[0]
        assert data["in_output"] and data["raw_input"]["path"] == f"Lib/{mods[0].name}"
        assert [(a["repo"], a["path"], a["step"]) for a in data["absorbed"]] == [
            ("fork", f"vendored/{mods[0].name}", "exact_deduped_code")]
    survivor = inputs_of(store, resolve_file_ids(store, f"cpy/Lib/{mods[2].name}")[0])
    assert [(a["path"], a["step"]) for a in survivor.absorbed] == [
        (f"vendored/patched_{mods[2].name}", "fuzzy_deduped_code")]
    assert survivor.transform_edits is not None
    assert lineage_main(["where", "nope/missing.py", "--db", db]) == 1


def test_blocking_checks_stop_bad_downstream(corpus, pipeline_resources):
    root, manifest = corpus
    res = pipeline_resources([root], manifest)
    steps = [a for a in PARTITIONED if a.key.to_user_string() in {"raw_code", "preprocessed_code", "exact_deduped_code"}]
    checks = [c for c in OPS_CHECKS if next(iter(c.check_keys)).asset_key in {a.key for a in steps}]
    with instance_for_test() as instance:
        assert materialize(SOURCE_INDEX, resources=res, instance=instance).success
        ok = materialize([*steps, *checks], resources=res, instance=instance, partition_key="python")
        assert ok.success
        assert all(e.passed for e in ok.get_asset_check_evaluations())
        # corrupt the accounting: raw_code's published record claims 5 more kept files than exist
        manifest = res["storage"].current_dir("raw_code", "python") / "_MANIFEST.json"
        record = json.loads(manifest.read_text())
        record["counts"]["kept"] += 5
        record["counts"]["input_count"] += 5
        manifest.write_text(json.dumps(record))
        downstream = [s for s in steps if s.key != AssetKey("raw_code")]
        bad = materialize([*downstream, *checks], resources=res, instance=instance, partition_key="python",
                          raise_on_error=False)
        assert not bad.success
        failures = [e.event_specific_data.error.to_string() for e in bad.all_events if e.event_type_value == "STEP_FAILURE"]
        assert any("preprocessed_code[python]" in m and "raw_code kept" in m for m in failures), failures
        mats = {e.asset_key.to_user_string() for e in bad.get_asset_materialization_events()}
        assert not mats & {"preprocessed_code", "exact_deduped_code"}  # nothing published downstream
        # the funnel check reads the same records and flags the published preprocessed_code too
        from opencoder_assets.assets.checks import _funnel_result

        funnel = _funnel_result("preprocessed_code", "raw_code", "python", res["metrics"])
        assert not funnel.passed and "raw_code kept" in json.dumps(funnel.metadata["problems"].value)
        record["counts"]["kept"] -= 5
        record["counts"]["input_count"] -= 5
        manifest.write_text(json.dumps(record))
        # empty partition: a warning, not a failure
        raw_checks = [c for c in checks if next(iter(c.check_keys)).asset_key == AssetKey("raw_code")]
        raw = next(s for s in steps if s.key == AssetKey("raw_code"))
        empty = materialize([raw, *raw_checks], resources=res, instance=instance, partition_key="rust",
                            raise_on_error=False)
        assert empty.success
        ev = {e.check_name: e for e in empty.get_asset_check_evaluations()}
        assert not ev["raw_code_not_empty"].passed and ev["raw_code_not_empty"].severity.value == "WARN"
    # schema drift: a shard without `content` and with an int path is reported
    shard = res["storage"].shards("exact_deduped_code", "python")[0]
    schema = pq.read_schema(shard)
    drifted = schema.remove(schema.get_field_index("content"))
    drifted = drifted.set(drifted.get_field_index("size_bytes"), drifted.field("size_bytes").with_type(pa.string()))
    problems = schema_drift([schema, drifted], CODE_SCHEMA)
    assert problems == ["shard 1: missing column content", "shard 1: size_bytes is string, expected int64"]
