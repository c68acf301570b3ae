"""Command line: prepare the default corpus, run the pipeline, ask where a file went and why.

``opencoder demo``      gather the default corpus and materialize every asset for its partitions
``opencoder run``       materialize the code assets for chosen partitions (in process)
``opencoder why``       every step's decision for a repo/path or file id, from the metrics store
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

from opencoder_assets.core.ingest import discover_repos, iter_repo_files, load_manifest
from opencoder_assets.core.languages import detect_language


def discover_partitions(folders: list[str], manifest: str | None) -> list[str]:
    """Partitions that have at least one file in the given folders (cheap directory walk)."""
    from opencoder_assets.core.ingest import IngestStats

    counts: Counter = Counter()
    stats = IngestStats()
    for folder in folders:
        if not Path(folder).is_dir():
            continue
        repos, _ = discover_repos(folder, load_manifest(manifest))
        for repo in repos:
            for rel, _full in iter_repo_files(repo, stats):
                counts[detect_language(rel).partition] += 1
    return [p for p, _ in counts.most_common()]


def _run(partitions: list[str], selection: str | None = None) -> int:
    from dagster import DagsterInstance, materialize

    from opencoder_assets.definitions import code_checks, defs, pipeline_assets_for

    instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    assets = [a for a in pipeline_assets_for(selection) if a.partitions_def is not None]
    index_assets = [a for a in pipeline_assets_for(selection) if a.partitions_def is None]
    resources = defs.resources
    failed = 0
    if index_assets:
        t0 = time.perf_counter()
        result = materialize(index_assets, instance=instance, resources=resources, raise_on_error=False)
        print(f"[{'ok' if result.success else 'FAILED'}] source_index {time.perf_counter() - t0:6.1f}s")
        if not result.success:
            return 1
    for partition in partitions:
        t0 = time.perf_counter()
        checks = [c for c in code_checks if all(k.asset_key in {a.key for a in assets} for k in c.check_keys)]
        result = materialize([*assets, *checks], instance=instance, partition_key=partition, resources=resources,
                             raise_on_error=False)
        status = "ok" if result.success else "FAILED"
        failed += not result.success
        funnel = []
        for ev in result.get_asset_materialization_events():
            md = ev.materialization.metadata
            if "kept_files" in md:
                funnel.append(f"{ev.asset_key.to_user_string()}={md['kept_files'].value}")
        print(f"[{status}] {partition:<12} {time.perf_counter() - t0:6.1f}s  " + " -> ".join(funnel))
    return 1 if failed else 0


def _why(args: argparse.Namespace) -> int:
    from resources import MetricsStore

    store = MetricsStore(db_path=args.db) if args.db else MetricsStore()
    if args.file_id:
        where, params = "file_id = ?", [args.file_id]
    else:
        repo, _, path = args.target.partition("/")
        where, params = "repo = ? AND path = ?", [repo, path]
    rows = store.query(
        f"""SELECT d.step, d.partition, d.decision, coalesce(d.reason, ''), coalesce(d.detail, ''),
                   d.file_id, r.recorded_at
            FROM file_decisions d LEFT JOIN latest_step_runs r USING (step, partition)
            WHERE {where} ORDER BY r.recorded_at NULLS LAST, d.step""",
        params,
    )
    if not rows:
        print("no decision recorded for that file", file=sys.stderr)
        return 1
    for step, partition, decision, reason, detail, file_id, _ in rows:
        print(f"{step:<22} [{partition}] {decision:<8} {reason:<28} {detail}  (file_id={file_id})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opencoder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    demo = sub.add_parser("demo", help="gather the default corpus and run the pipeline on it")
    demo.add_argument("--partitions", default=None, help="comma-separated; default: all with data")
    run = sub.add_parser("run", help="materialize the code assets for partitions")
    run.add_argument("--partitions", required=True)
    run.add_argument("--select", default=None, help="comma-separated asset names (default: all code assets)")
    why = sub.add_parser("why", help="where did this file go and why")
    why.add_argument("target", nargs="?", help="repo/path")
    why.add_argument("--file-id")
    why.add_argument("--db", default=None)
    lin = sub.add_parser("lineage", help="file-level lineage: where | inputs (docs/lineage.md)", add_help=False)
    lin.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.cmd == "lineage":
        from opencoder_assets.lineage import lineage_main

        return lineage_main(args.rest)

    if args.cmd == "demo":
        from opencoder_assets.default_data import prepare_default_corpus
        from resources import CodeSources

        prepare_default_corpus()
        sources = CodeSources()
        parts = args.partitions.split(",") if args.partitions else discover_partitions(sources.folders, sources.manifest)
        print(f"partitions with data: {', '.join(parts)}")
        return _run(parts)
    if args.cmd == "run":
        return _run(args.partitions.split(","), args.select)
    if args.cmd == "why":
        if not args.target and not args.file_id:
            parser.error("give repo/path or --file-id")
        return _why(args)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
