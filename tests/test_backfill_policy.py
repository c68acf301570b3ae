"""Backfill policy: one run covers a range of language partitions, each processed independently.

The run is launched as a backfill run is (tags ``dagster/asset_partition_range_start``/``_end``),
on real code: stdlib modules (python) and this interpreter's C headers (c).
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import (
    AssetCheckResult,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    define_asset_job,
    instance_for_test,
    materialize,
)
from dagster._core.definitions.backfill_policy import BackfillPolicyType
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from opencoder_assets.assets.checks import OPS_CHECKS
from opencoder_assets.assets.common import MAX_PARTITIONS_PER_RUN, combine_check_results
from opencoder_assets.definitions import code_assets, code_checks
from tests.conftest import copy_into, stdlib_files

PARTITIONED = [a for a in code_assets if a.partitions_def is not None]
SOURCE_INDEX = [a for a in code_assets if a.partitions_def is None]
STEPS = ["raw_code", "preprocessed_code", "exact_deduped_code", "fuzzy_deduped_code", "transformed_code",
         "quality_signals", "filtered_code", "refinecode_code"]
RANGE = ("python", "c")  # adjacent in language_partitions: python, c, cpp, ...


def test_every_code_asset_has_multi_run_backfill_policy():
    assert sorted(a.key.to_user_string() for a in PARTITIONED) == sorted(STEPS)
    assert MAX_PARTITIONS_PER_RUN == 1  # per-partition metadata on every materialization
    for a in PARTITIONED:
        policy = a.backfill_policy
        assert policy is not None, a.key
        assert policy.policy_type == BackfillPolicyType.MULTI_RUN
        assert policy.max_partitions_per_run == MAX_PARTITIONS_PER_RUN


@pytest.fixture()
def two_language_corpus(tmp_path: Path) -> Path:
    repos = tmp_path / "repos"
    copy_into(repos / "pylib", stdlib_files(12, start=20))
    headers = sorted(p for p in Path(sysconfig.get_paths()["include"]).glob("*.h") if p.stat().st_size > 200)[:10]
    assert len(headers) >= 5
    copy_into(repos / "cheaders", headers, "include/")
    return repos


def _run_range(res: dict, instance: DagsterInstance):
    job = define_asset_job("backfill_range_job", selection=[a.key for a in PARTITIONED])
    defs = Definitions(assets=code_assets, asset_checks=[*code_checks, *OPS_CHECKS], jobs=[job], resources=res)
    return defs.resolve_job_def("backfill_range_job").execute_in_process(
        instance=instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: RANGE[0], ASSET_PARTITION_RANGE_END_TAG: RANGE[1]},
        raise_on_error=False,
    )


def test_one_run_materializes_several_partitions(two_language_corpus, pipeline_resources):
    res = pipeline_resources([two_language_corpus], None)
    # entered, so Dagster's current defs-state storage is this instance's (not a closed one)
    with instance_for_test() as instance:
        _check_range_run(res, instance)


def _check_range_run(res: dict, instance: DagsterInstance) -> None:
    assert materialize(SOURCE_INDEX, resources=res, instance=instance).success
    runs_before = len(instance.get_runs())

    result = _run_range(res, instance)
    assert result.success
    assert len(instance.get_runs()) == runs_before + 1  # one run for both partitions
    run_id = result.run_id

    storage, metrics = res["storage"], res["metrics"]
    for step in STEPS:
        for partition in RANGE:
            assert storage.has(step, partition), (step, partition)
    # both partitions' corpus published, each in its own language
    for partition in RANGE:
        rows = pq.read_table(storage.shards("refinecode_code", partition), columns=["language"]).to_pylist()
        assert rows and {r["language"] for r in rows} == {partition}

    # metrics store: one latest row per step and partition, written by this run, kept + dropped = input
    step_rows = metrics.query(
        "SELECT step, partition, run_id, input_count, kept, dropped FROM latest_step_runs WHERE partition IN (?, ?)",
        list(RANGE))
    assert {(r[0], r[1]) for r in step_rows} == {(s, p) for s in STEPS for p in RANGE}
    for step, partition, rid, n_in, kept, dropped in step_rows:
        assert rid == run_id, (step, partition)
        assert kept + dropped == n_in, (step, partition)
        n_dec = metrics.query("SELECT count(*) FROM file_decisions WHERE step = ? AND partition = ?",
                              [step, partition])[0][0]
        assert n_dec == n_in, (step, partition)
    raw_in = {r[1]: r[3] for r in step_rows if r[0] == "raw_code"}
    assert raw_in == {"python": 12, "c": 10}

    # one materialization event per asset and partition, with aggregated metadata
    mats = [e for e in result.all_events if e.event_type == DagsterEventType.ASSET_MATERIALIZATION]
    got = {(e.asset_key.to_user_string(), e.partition) for e in mats}
    assert got == {(s, p) for s in STEPS for p in RANGE}
    raw_meta = next(e.materialization.metadata for e in mats if e.asset_key.to_user_string() == "raw_code")
    assert raw_meta["input_files"].value == 22
    assert raw_meta["partitions"].value == list(RANGE)
    assert "| python | 12 | 12 | 0 |" in raw_meta["per_partition"].value
    assert "| c | 10 | 10 | 0 |" in raw_meta["per_partition"].value
    for a in PARTITIONED:
        assert set(RANGE) <= instance.get_materialized_partitions(a.key), a.key

    # the checks evaluated every partition of the range and passed
    evals = [e for e in result.all_events if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION]
    assert evals
    failed = [e.event_specific_data.check_name for e in evals
              if not e.event_specific_data.passed and e.event_specific_data.severity.value == "ERROR"]
    assert not failed, failed
    for e in evals:  # each check evaluated both partitions of the range
        assert e.event_specific_data.metadata["partitions"].value == list(RANGE), e.event_specific_data.check_name
    assert {e.event_specific_data.check_name for e in evals} >= {
        "refinecode_funnel_consistent", "refinecode_size_cap", "raw_code_schema", "refinecode_code_funnel"}


def test_range_check_fails_if_any_partition_fails():
    ok = AssetCheckResult(passed=True, metadata={"problems": []})
    bad = AssetCheckResult(passed=False, metadata={"problems": ["kept 3 + dropped 1 != input 5"]})
    assert combine_check_results({"python": bad}) is bad  # one partition: unchanged
    combined = combine_check_results({"python": ok, "c": bad, "cpp": ok})
    assert not combined.passed
    assert combined.metadata["failing_partitions"].value == ["c"]
    assert combined.metadata["failures"].value == {"c": {"problems": ["kept 3 + dropped 1 != input 5"]}}
    assert combine_check_results({"python": ok, "c": ok}).passed
