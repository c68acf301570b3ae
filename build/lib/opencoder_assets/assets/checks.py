"""Operational asset checks for every partitioned code step: empty partition, schema drift, funnel.

Why blocking: a step whose shards no longer match the schema contract, or whose accounting does
not line up with its upstream step, must not feed the next step -- in a run, a failed blocking
check (ERROR severity) stops the downstream assets, so the bad version never propagates.
An empty partition is only a warning: a language with no files is legitimate.

The checks are generated per asset by name (no import of the asset modules), so they can be added
to any ``Definitions`` next to the assets. Exported as ``OPS_CHECKS``.
"""

import pyarrow as pa
import pyarrow.parquet as pq
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    multi_asset_check,
)

from opencoder_assets.assets.common import check_partition_keys, combine_check_results
from opencoder_assets.core.steps import CODE_STEPS as REGISTRY
from opencoder_assets.partitions import language_partitions
from resources import CorpusStorage, MetricsStore

#: Partitioned code steps, upstream first, and the schema contract of their ``part-*`` shards
#: (None: the step writes no shards), from the registry.
CODE_STEPS: list[tuple[str, pa.Schema | None]] = [(s.name, s.out_schema) for s in REGISTRY]
_UPSTREAM = {s.name: s.upstream for s in REGISTRY if s.upstream}


def _normalise(t: pa.DataType) -> pa.DataType:
    """Physical spellings that read_batches casts away (DuckDB writes string/binary, we use large_*)."""
    if pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz="UTC" if t.tz else None)
    return t


def schema_drift(shard_schemas: list[pa.Schema], expected: pa.Schema) -> list[str]:
    """Problems of each shard vs the contract: missing/extra columns, changed types."""
    problems: list[str] = []
    want = {f.name: _normalise(f.type) for f in expected}
    for i, schema in enumerate(shard_schemas):
        have = {f.name: _normalise(f.type) for f in schema}
        for name in want.keys() - have.keys():
            problems.append(f"shard {i}: missing column {name}")
        for name in have.keys() - want.keys():
            problems.append(f"shard {i}: unexpected column {name}")
        for name in want.keys() & have.keys():
            if want[name] != have[name]:
                problems.append(f"shard {i}: {name} is {have[name]}, expected {want[name]}")
    return problems


def _empty_result(step: str, part: str | None, metrics: MetricsStore) -> AssetCheckResult:
    row = metrics.query("SELECT input_count, kept FROM latest_step_runs WHERE step = ? AND partition = ?",
                        [step, part])
    n_in, kept = row[0] if row else (0, 0)
    return AssetCheckResult(asset_key=AssetKey(step), check_name=f"{step}_not_empty", passed=kept > 0,
                            severity=AssetCheckSeverity.WARN,
                            metadata={"input_files": int(n_in), "kept_files": int(kept)})


def _schema_result(step: str, expected: pa.Schema, part: str | None, storage: CorpusStorage) -> AssetCheckResult:
    shards = storage.shards(step, part) if storage.has(step, part) else []
    problems = schema_drift([pq.read_schema(s) for s in shards], expected)
    return AssetCheckResult(asset_key=AssetKey(step), check_name=f"{step}_schema", passed=not problems,
                            severity=AssetCheckSeverity.ERROR,
                            metadata={"shards": len(shards), "problems": MetadataValue.json(problems[:50])})


def _funnel_result(step: str, upstream: str, part: str | None, metrics: MetricsStore) -> AssetCheckResult:
    rows = dict((r[0], r[1:]) for r in metrics.query(
        "SELECT step, input_count, kept, dropped FROM latest_step_runs WHERE partition = ? AND step IN (?, ?)",
        [part, step, upstream]))
    problems: list[str] = []
    if step not in rows:
        problems.append(f"no step_runs row for {step}[{part}]")
    else:
        n_in, kept, dropped = rows[step]
        if kept + dropped != n_in:
            problems.append(f"kept {kept} + dropped {dropped} != input {n_in}")
        if upstream in rows and rows[upstream][1] != n_in:
            problems.append(f"input {n_in} != {upstream} kept {rows[upstream][1]}")
        n_dec = metrics.query("SELECT count(*) FROM file_decisions WHERE step = ? AND partition = ?",
                              [step, part])[0][0]
        if n_dec != n_in:
            problems.append(f"{n_dec} decision rows for {n_in} input files")
    return AssetCheckResult(asset_key=AssetKey(step), check_name=f"{step}_funnel", passed=not problems,
                            severity=AssetCheckSeverity.ERROR, metadata={"problems": MetadataValue.json(problems)})


def _step_checks(step: str, schema: pa.Schema | None) -> AssetChecksDefinition:
    """One multi-check per step (one executor step, not three): empty (warn), schema and funnel
    (blocking)."""
    key = AssetKey(step)
    specs = [AssetCheckSpec(f"{step}_not_empty", asset=key, partitions_def=language_partitions,
                            description=f"Warn when {step} keeps no file for the partition.")]
    with_schema = schema is not None
    if with_schema:
        specs.append(AssetCheckSpec(f"{step}_schema", asset=key, blocking=True, partitions_def=language_partitions,
                                    description=f"Blocking: every published shard of {step} matches the schema contract."))
    upstream = _UPSTREAM.get(step)
    if upstream:
        specs.append(AssetCheckSpec(f"{step}_funnel", asset=key, blocking=True, partitions_def=language_partitions,
                                    description=f"Blocking: {step}'s input = {upstream}'s kept, kept + dropped = "
                                    "input, and one decision row per input file."))

    @multi_asset_check(name=f"{step}_ops_checks", specs=specs)
    def _checks(context: AssetCheckExecutionContext, metrics: MetricsStore, storage: CorpusStorage):
        # A backfill run covers a range of partitions: evaluate each, one result per check
        # (fails if any partition fails; metadata names the failing partitions).
        parts = check_partition_keys(context)
        yield combine_check_results({p: _empty_result(step, p, metrics) for p in parts})
        if with_schema:
            yield combine_check_results({p: _schema_result(step, schema, p, storage) for p in parts})
        if upstream:
            yield combine_check_results({p: _funnel_result(step, upstream, p, metrics) for p in parts})

    return _checks


def build_ops_checks() -> list[AssetChecksDefinition]:
    """Empty-partition (warn) for every step, schema (blocking) for steps with code shards, funnel (blocking)."""
    return [_step_checks(step, schema) for step, schema in CODE_STEPS]


OPS_CHECKS: list[AssetChecksDefinition] = build_ops_checks()
