"""Command line: prepare the default corpus, run the pipeline, ask where a file went and why.

``opencoder demo``      gather the default corpus and materialize every asset for its partitions
``opencoder run``       materialize the code assets for chosen partitions (in process)
``opencoder why``       every step's decision for a repo/path or file id (= ``opencoder lineage where``)
"""

from __future__ import annotations

import argparse
import os
import time


def _indexed_partitions(storage) -> list[str]:
    """Partitions that have files in the published source_index, largest first."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    column = pq.read_table(storage.shards("source_index", None), columns=["partition"])["partition"]
    counts = pc.value_counts(column).to_pylist()
    return [c["values"] for c in sorted(counts, key=lambda c: (-c["counts"], c["values"]))]


def _quiet(verbose: bool) -> dict:
    """Concise console: progress lines of the steps on stdout, Dagster's event log only with
    ``--verbose`` (every event is still in the run's event log, shown in the UI)."""
    import logging
    import sys
    import warnings

    if not verbose:
        warnings.filterwarnings("ignore", module="dagster")
        warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    progress = logging.getLogger("opencoder.progress")
    if not progress.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("    %(message)s"))
        progress.addHandler(handler)
        progress.setLevel(logging.INFO)
        progress.propagate = False
    return {} if verbose else {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _summary(partitions: list[str]) -> None:
    """The funnel of every partition of the run, and what to try next."""
    from opencoder_assets.assets.code import funnel_rows
    from opencoder_assets.definitions import defs

    storage = defs.resources["storage"]
    print("\nfunnel (files kept per step):")
    steps: list[str] = []
    table: dict[str, dict[str, int]] = {}
    for p in partitions:
        for r in funnel_rows(storage, p):
            if r["step"] not in steps:
                steps.append(r["step"])
            table.setdefault(p, {})[r["step"]] = r["files_kept"]
    print("  " + "partition".ljust(12) + "".join(s.replace("_code", "")[:10].rjust(11) for s in steps))
    for p in partitions:
        print("  " + p.ljust(12) + "".join(str(table.get(p, {}).get(s, "")).rjust(11) for s in steps))
    example = None
    try:
        rows = defs.resources["metrics"].query(
            "SELECT repo || '/' || path FROM file_decisions WHERE decision = 'dropped' AND step = 'filtered_code' "
            "AND list_contains(?, partition) ORDER BY file_id LIMIT 1", [partitions])
        example = rows[0][0] if rows else None
    except Exception:  # noqa: BLE001 - the summary must never fail the run
        example = None
    print("\nnext:")
    print("  DAGSTER_HOME=$PWD/.dagster_home .venv/bin/dagster dev -w workspace.yaml   # the UI, with these runs")
    if example:
        print(f"  .venv/bin/opencoder why {example}   # why a file was dropped")
    print('  .venv/bin/opencoder sql "SELECT * FROM drop_reasons ORDER BY files DESC"')


def _run(partitions: list[str] | None, selection: str | None = None, verbose: bool = False) -> int:
    """Run ``source_index_job``, then ``refinecode_job`` (with its blocking checks) for every
    partition (``None``: all partitions the index has). These are the real jobs, so the runs show
    under the jobs in the UI (with ``DAGSTER_HOME`` set)."""
    from dagster import AssetKey, DagsterInstance

    from opencoder_assets.definitions import defs

    run_config = _quiet(verbose)
    instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    resources = defs.resources
    wanted = set(selection.split(",")) if selection else None
    failed = 0
    if wanted is None or "source_index" in wanted:
        t0 = time.perf_counter()
        result = defs.resolve_job_def("source_index_job").execute_in_process(instance=instance, raise_on_error=False,
                                                                              run_config=run_config)
        print(f"[{'ok' if result.success else 'FAILED'}] source_index {time.perf_counter() - t0:6.1f}s")
        if not result.success:
            return 1
    if partitions is None:
        partitions = _indexed_partitions(resources["storage"])
        print(f"partitions with data: {', '.join(partitions)}")
    job = defs.resolve_job_def("refinecode_job")
    keys = [AssetKey(k) for k in sorted(wanted - {"source_index"})] if wanted else None
    for partition in partitions:
        t0 = time.perf_counter()
        print(f"{partition}:")
        result = job.execute_in_process(instance=instance, partition_key=partition, raise_on_error=False,
                                        asset_selection=keys, run_config=run_config)
        status = "ok" if result.success else "FAILED"
        failed += not result.success
        funnel = []
        for ev in result.get_asset_materialization_events():
            md = ev.materialization.metadata
            if "kept_files" in md:
                funnel.append(f"{ev.asset_key.to_user_string()}={md['kept_files'].value}")
        print(f"[{status}] {partition:<12} {time.perf_counter() - t0:6.1f}s  " +
              (f"{funnel[0].split('=')[1]} files in -> {funnel[-1].split('=')[1]} kept" if funnel else ""))
        if not result.success:
            for ev in result.all_events:
                if ev.event_type_value == "STEP_FAILURE":
                    err = ev.event_specific_data.error
                    while err.cause is not None and "executing op" in err.message:
                        err = err.cause
                    print(f"    {ev.step_key} failed: {err.message.strip().splitlines()[0][:400]}")
    _summary(partitions)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    import warnings

    if "--verbose" not in (argv if argv is not None else __import__("sys").argv):
        warnings.filterwarnings("ignore", message=".*is currently in beta.*")
        warnings.filterwarnings("ignore", category=UserWarning, module="dagster")
    parser = argparse.ArgumentParser(prog="opencoder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    demo = sub.add_parser("demo", help="gather the default corpus and run the pipeline on it")
    demo.add_argument("--partitions", default=None, help="comma-separated; default: all with data")
    demo.add_argument("--verbose", action="store_true", help="also print Dagster's event log")
    demo.add_argument("--web", action="store_true", help="then run web recall and the code-web corpus on the "
                      "embedded default crawl, and the refinecode_mix (opencoder_assets/default_crawl.py)")
    run = sub.add_parser("run", help="materialize the code assets for partitions")
    run.add_argument("--partitions", required=True)
    run.add_argument("--select", default=None, help="comma-separated asset names (default: all code assets)")
    run.add_argument("--verbose", action="store_true", help="also print Dagster's event log")
    why = sub.add_parser("why", help="where did this file go and why")
    why.add_argument("target", nargs="?", help="repo/path")
    why.add_argument("--file-id")
    why.add_argument("--db", default=None)
    exp = sub.add_parser("export", help="write the final corpus as parquet, jsonl or dolma (id, text, metadata)",
                         description="Export refinecode_code for datatrove / dolma / NeMo Curator. Example: "
                         "opencoder export --format dolma --out exported/")
    exp.add_argument("--format", choices=["parquet", "jsonl", "dolma"], default="parquet")
    exp.add_argument("--out", required=True, help="output directory")
    exp.add_argument("--partitions", default=None, help="comma-separated; default: every published partition")
    sql = sub.add_parser("sql", help="run SQL on the metrics views (file_decisions, step_runs, drop_reasons, ...)")
    sql.add_argument("query")
    sql.add_argument("--db", default=None, help="metrics DuckDB file (default: OPENCODER_METRICS_DB or data/metrics.duckdb)")
    lin = sub.add_parser("lineage", help="file-level lineage: where | inputs (docs/lineage.md)", add_help=False)
    lin.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.cmd == "lineage":
        from opencoder_assets.lineage import lineage_main

        return lineage_main(args.rest)

    if args.cmd == "export":
        from pathlib import Path

        from opencoder_assets.core.export import export_partition
        from opencoder_assets.core.steps import FINAL_STEP
        from opencoder_assets.definitions import defs

        storage = defs.resources["storage"]
        base = Path(storage.root).resolve() / FINAL_STEP
        parts = args.partitions.split(",") if args.partitions else sorted(
            p.name for p in base.glob("*") if storage.has(FINAL_STEP, p.name))
        if not parts:
            print(f"nothing to export: {FINAL_STEP} has no published partition under {base}")
            return 1
        for part in parts:
            n = export_partition(storage.shards(FINAL_STEP, part), part, Path(args.out), args.format)
            print(f"{part}: {n['documents']} documents in {n['files']} file(s)")
        return 0
    if args.cmd == "sql":
        from resources import MetricsStore

        store = MetricsStore(db_path=args.db) if args.db else MetricsStore()
        with store.connect() as con:
            cur = con.execute(args.query)
            names = [d[0] for d in cur.description or []]
            rows = cur.fetchall()
        print("\t".join(names))
        for row in rows:
            print("\t".join("" if v is None else str(v) for v in row))
        return 0
    if args.cmd == "demo":
        from opencoder_assets.default_data import prepare_default_corpus

        prepare_default_corpus()
        rc = _run(args.partitions.split(",") if args.partitions else None, verbose=args.verbose)
        if args.web:
            from opencoder_assets.default_crawl import run_web_demo

            rc = max(rc, run_web_demo(verbose=args.verbose))
        return rc
    if args.cmd == "run":
        return _run(args.partitions.split(","), args.select, verbose=args.verbose)
    if args.cmd == "why":  # shorthand for `opencoder lineage where`
        from opencoder_assets.lineage import lineage_main

        argv = ["where", *([args.target] if args.target else []), *(["--file-id", args.file_id] if args.file_id else []),
                *(["--db", args.db] if args.db else [])]
        return lineage_main(argv)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
