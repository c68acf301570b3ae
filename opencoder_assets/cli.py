"""opencoder: run the RefineCode pipeline on your code and ask where each file went and why.

  demo       gather the default corpus (stdlib sources) and run the pipeline on it
  run        run the pipeline on the default corpus or on your folders / tables
  validate   check folders, tables, column map, thresholds, partitions and step config, run nothing
  why        where did this file go and why (= lineage where)
  lineage    file-level lineage: where | inputs
  export     write the final corpus as parquet, jsonl or dolma
  sql        SQL on the metrics views (file_decisions, step_runs, drop_reasons, ...)

Data goes under $OPENCODER_DATA (default ./data); `opencoder COMMAND --help` has examples.
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


def _partitions_with_data(storage, sources) -> list[str]:
    """Partitions of the source index, then those only the table sources have, largest first."""
    from opencoder_assets.core.ingest import TableMapping, table_partitions

    parts = _indexed_partitions(storage)
    counts = table_partitions(list(sources.tables), TableMapping.from_mapping(sources.column_map))
    return parts + [p for p, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if p not in parts]


def _definitions(sources=None):
    """The project's Definitions, or the code pipeline bound to other ``CodeSources``."""
    from opencoder_assets.definitions import defs

    if sources is None:
        return defs
    from dagster import Definitions

    from opencoder_assets.definitions import code_assets, code_checks, refinecode_job, source_index_job

    return Definitions(assets=code_assets, asset_checks=code_checks, jobs=[source_index_job, refinecode_job],
                       resources={**defs.resources, "sources": sources})


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


def _summary(partitions: list[str], defs) -> None:
    """The funnel of every partition of the run, and what to try next."""
    from opencoder_assets.assets.code import funnel_rows

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


def _run(partitions: list[str] | None, selection: list[str] | None = None, verbose: bool = False, *,
         sources=None, step_config: dict | None = None) -> int:
    """Run ``source_index_job``, then ``refinecode_job`` (with its blocking checks) for every
    partition (``None``: all partitions the index and the tables have). These are the real jobs, so
    the runs show under the jobs in the UI (with ``DAGSTER_HOME`` set). ``sources``: a
    ``CodeSources`` replacing the default one; ``step_config``: Dagster run config (``ops: ...``)."""
    from dagster import AssetKey, DagsterInstance

    defs = _definitions(sources)
    run_config = _quiet(verbose)
    instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    resources = defs.resources
    wanted = set(selection) if selection else None
    failed = 0
    if wanted is None or "source_index" in wanted:
        t0 = time.perf_counter()
        result = defs.resolve_job_def("source_index_job").execute_in_process(instance=instance, raise_on_error=False,
                                                                              run_config=run_config)
        print(f"[{'ok' if result.success else 'FAILED'}] source_index {time.perf_counter() - t0:6.1f}s")
        if not result.success:
            return 1
    if partitions is None:
        partitions = _partitions_with_data(resources["storage"], resources["sources"])
        print(f"partitions with data: {', '.join(partitions) or 'none'}")
    job = defs.resolve_job_def("refinecode_job")
    keys = [AssetKey(k) for k in sorted(wanted - {"source_index"})] if wanted else None
    for partition in partitions:
        t0 = time.perf_counter()
        print(f"{partition}:")
        result = job.execute_in_process(instance=instance, partition_key=partition, raise_on_error=False,
                                        asset_selection=keys, run_config={**run_config, **(step_config or {})})
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
    report = _report_path(defs, instance, run_config) if wanted is None and not failed else None
    _summary(partitions, defs)
    if report:
        print(f"  open {report}   # the corpus report: funnel, languages, drop reasons, signals, clusters")
    return 1 if failed else 0


def _report_path(defs, instance, run_config: dict) -> str | None:
    """Materialize ``corpus_report`` after a full run; the path of its HTML file."""
    from dagster import materialize

    from opencoder_assets.assets.report import REPORT_ASSETS

    t0 = time.perf_counter()
    result = materialize(REPORT_ASSETS, instance=instance, resources=defs.resources, raise_on_error=False,
                         run_config=run_config)
    path = None
    for ev in result.get_asset_materialization_events():
        value = ev.materialization.metadata.get("report_path")
        path = str(getattr(value, "value", value)) if value is not None else path
    print(f"[{'ok' if result.success else 'FAILED'}] corpus_report {time.perf_counter() - t0:6.1f}s")
    return path



# ----------------------------------------------------------------------------------- parsing
def _epilog(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" if line else "" for line in lines)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples as written; wide enough for the option help."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=110)


def _names(values: list[str] | None) -> list[str] | None:
    """``--partitions python,c`` and ``--partitions python c`` alike."""
    if values is None:
        return None
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def _add_source_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--folders", nargs="+", metavar="DIR",
                        help="folders whose sub-directories are repositories (default: the demo corpus)")
    parser.add_argument("--manifest", metavar="FILE", help="JSON/JSONL with per-repo name, stars, commit_time")
    parser.add_argument("--tables", nargs="+", metavar="FILE",
                        help="Parquet/JSONL tables in The Stack v2 layout (content, path, repo_name, ...)")
    parser.add_argument("--column-map", metavar="JSON",
                        help='rename table columns, e.g. \'{"content": "text", "file_id": "id"}\' (or a .json file)')
    parser.add_argument("--partitions", nargs="+", metavar="NAME",
                        help="language partitions, comma- or space-separated (default: all with data)")


def build_parser() -> argparse.ArgumentParser:
    """The ``opencoder`` command line (every sub-command has examples in its ``--help``)."""
    from opencoder_assets.lineage import LINEAGE_EPILOG, add_lineage_arguments

    parser = argparse.ArgumentParser(prog="opencoder", description=__doc__, formatter_class=_Formatter,
                                     epilog=_epilog("opencoder demo --partitions python",
                                                    "opencoder run --folders ~/src --partitions python,go",
                                                    "opencoder why cpy/Lib/heapq.py"))
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def add(name: str, text: str, *examples: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, epilog=_epilog(*examples), formatter_class=_Formatter)

    demo = add("demo", "gather the default corpus (stdlib sources) and run the pipeline on it",
               "opencoder demo", "opencoder demo --partitions python,c --verbose")
    demo.add_argument("--partitions", nargs="+", metavar="NAME", help="comma- or space-separated (default: all with data)")
    demo.add_argument("--verbose", action="store_true", help="also print Dagster's event log")
    demo.add_argument("--web", action="store_true", help="then run web recall and the code-web corpus on the "
                      "embedded default crawl, and the refinecode_mix (opencoder_assets/default_crawl.py)")

    run = add("run", "run the pipeline (source_index, then every code step per partition) on your data",
              "opencoder run --partitions python",
              "opencoder run --folders ~/src/repos --partitions python go",
              "opencoder run --tables stack_v2_python.parquet --partitions python",
              "opencoder run --tables pages.jsonl --column-map '{\"content\": \"text\", \"file_id\": \"id\"}'",
              "opencoder run --folders repos/ --config run_config.yaml   # e.g. filtered_code thresholds",
              "",
              "run_config.yaml (Dagster run config; relative paths are relative to the YAML file):",
              "  ops:",
              "    filtered_code:",
              "      config: {thresholds_path: my_thresholds.toml, random_mode: strict}")
    _add_source_args(run)
    run.add_argument("--config", metavar="YAML", help="Dagster run config for the steps (ops: <step>: config: ...)")
    run.add_argument("--select", nargs="+", metavar="ASSET", help="only these assets (comma- or space-separated)")
    run.add_argument("--verbose", action="store_true", help="also print Dagster's event log")

    val = add("validate", "check the configuration of a run without running anything (exit 2 on a problem)",
              "opencoder validate                                   # the default sources",
              "opencoder validate --folders ~/src/repos --partitions python",
              "opencoder validate --tables data.parquet --column-map '{\"content\": \"text\"}'",
              "opencoder validate --thresholds my_thresholds.toml --config run_config.yaml")
    _add_source_args(val)
    val.add_argument("--thresholds", metavar="TOML", help="a filter threshold file (filtered_code thresholds_path)")
    val.add_argument("--config", metavar="YAML", help="Dagster run config for the steps (as for run)")
    val.add_argument("--select", nargs="+", metavar="ASSET", help="asset names (as for run)")

    why = add("why", "where did this file go and why: every step's decision, filter rules with values",
              "opencoder why cpy/Lib/heapq.py", "opencoder why --file-id 3f2a9c0d1e4b5a6f7d8e --json",
              "opencoder why org/repo/x.py --db /archive/metrics.duckdb --thresholds my_thresholds.toml")
    why.add_argument("target", nargs="?", metavar="REPO/PATH", help="the file as repo/path")
    why.add_argument("--file-id", help="the file's id instead of repo/path")
    why.add_argument("--db", default=None, help="metrics DuckDB (default: OPENCODER_METRICS_DB or data/metrics.duckdb)")
    why.add_argument("--json", action="store_true", help="machine-readable output")
    why.add_argument("--thresholds", metavar="TOML", help="explain filter drops with this threshold file "
                     "(default: the one the run used)")

    lin = sub.add_parser("lineage", help="file-level lineage: where | inputs (docs/lineage.md)",
                         description="File-level lineage from the metrics store (docs/lineage.md).",
                         epilog=LINEAGE_EPILOG, formatter_class=_Formatter)
    add_lineage_arguments(lin)

    exp = add("export", "write the final corpus (refinecode_code) as parquet, jsonl or dolma (id, text, metadata)",
              "opencoder export --out exported/", "opencoder export --format dolma --out exported/ --partitions python")
    exp.add_argument("--format", choices=["parquet", "jsonl", "dolma"], default="parquet")
    exp.add_argument("--out", required=True, help="output directory")
    exp.add_argument("--partitions", nargs="+", metavar="NAME", help="default: every published partition")

    sql = add("sql", "run SQL on the metrics views (file_decisions, step_runs, drop_reasons, quality_signals, ...)",
              'opencoder sql "SELECT * FROM drop_reasons ORDER BY files DESC"',
              "opencoder sql \"SELECT reason, count(*) FROM file_decisions WHERE step = 'filtered_code' GROUP BY 1\"")
    sql.add_argument("query")
    sql.add_argument("--db", default=None, help="metrics DuckDB file (default: OPENCODER_METRICS_DB or data/metrics.duckdb)")
    return parser


# ---------------------------------------------------------------------------- configuration
def _column_map(value: str | None) -> tuple[dict | None, list[str]]:
    """``--column-map`` as JSON text or a JSON file."""
    import json
    from pathlib import Path

    if value is None:
        return None, []
    text, where = value, "--column-map"
    if not value.lstrip().startswith("{") and Path(value).is_file():
        text, where = Path(value).read_text(encoding="utf-8"), value
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [f"{where}: not JSON ({exc}); write it like '{{\"content\": \"text\"}}'"]
    if not isinstance(mapping, dict):
        return None, [f"{where}: must be a JSON object like '{{\"content\": \"text\"}}'"]
    return mapping, []


def _step_config(path: str | None) -> tuple[dict | None, list[str]]:
    """``--config`` YAML as Dagster run config; relative ``*_path`` values are made relative to the file."""
    from pathlib import Path

    import yaml

    if path is None:
        return None, []
    p = Path(path)
    if not p.is_file():
        return None, [f"{p}: run config file does not exist"]
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        return None, [f"{p}: invalid YAML: {' '.join(str(exc).split())}"]
    if not isinstance(doc, dict):
        return None, [f"{p}: must be a mapping with an 'ops' key"]
    if "resources" in doc:
        return None, [f"{p}: resources: give the sources with --folders/--tables/--manifest/--column-map instead"]
    for block in (doc.get("ops") or {}).values() if isinstance(doc.get("ops"), dict) else ():
        config = block.get("config") if isinstance(block, dict) else None
        for key, value in (config or {}).items() if isinstance(config, dict) else ():
            if key.endswith("_path") and isinstance(value, str) and not Path(value).is_absolute():
                config[key] = str((p.parent / value).resolve())
    return doc, []


def _configure(args: argparse.Namespace) -> tuple[object | None, dict | None, list[str]]:
    """(CodeSources or None for the default, step run config, problems) from the command line,
    validated before anything heavy runs."""
    from opencoder_assets.core.validate import validate
    from resources import CodeSources

    column_map, problems = _column_map(getattr(args, "column_map", None))
    step_config, config_problems = _step_config(getattr(args, "config", None))
    problems += config_problems
    custom = any(getattr(args, k, None) is not None for k in ("folders", "tables", "manifest", "column_map"))
    sources = CodeSources(folders=args.folders or [], tables=args.tables or [], manifest=args.manifest,
                          column_map=column_map or {}) if custom else None
    effective = sources or CodeSources()
    if not problems:
        problems = validate(folders=list(effective.folders), manifest=effective.manifest, tables=list(effective.tables),
                            column_map=dict(effective.column_map), thresholds=getattr(args, "thresholds", None),
                            partitions=_names(args.partitions), selection=_names(getattr(args, "select", None)),
                            run_config=step_config, run_config_source=getattr(args, "config", None) or "run config")
    return sources, step_config, problems


def _report(cmd: str, problems: list[str]) -> int:
    import sys

    for problem in problems:
        print(f"opencoder {cmd}: error: {problem}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    import sys
    import warnings

    if "--verbose" not in (argv if argv is not None else sys.argv):
        warnings.filterwarnings("ignore", message=".*is currently in beta.*")
        warnings.filterwarnings("ignore", category=UserWarning, module="dagster")
    args = build_parser().parse_args(argv)
    if args.cmd == "lineage":
        from opencoder_assets.lineage import run_lineage

        return run_lineage(args)
    if args.cmd == "why":  # shorthand for `opencoder lineage where`
        from opencoder_assets.lineage import run_lineage

        args.question = "where"
        return run_lineage(args)
    if args.cmd == "validate":
        sources, _, problems = _configure(args)
        if problems:
            return _report("validate", problems)
        used = sources or __import__("resources").CodeSources()
        print(f"ok: {len(used.folders)} folder(s), {len(used.tables)} table(s)"
              + (f", partitions {', '.join(_names(args.partitions) or [])}" if args.partitions else "")
              + (f", thresholds {args.thresholds}" if args.thresholds else "")
              + (f", run config {args.config}" if args.config else ""))
        return 0
    if args.cmd == "run":
        sources, step_config, problems = _configure(args)
        if problems:
            return _report("run", problems)
        return _run(_names(args.partitions), _names(args.select), verbose=args.verbose, sources=sources,
                    step_config=step_config)
    if args.cmd == "demo":
        from opencoder_assets.core.validate import check_partitions
        from opencoder_assets.default_data import prepare_default_corpus

        problems = check_partitions(_names(args.partitions) or [])
        if problems:
            return _report("demo", problems)
        prepare_default_corpus()
        args.folders = args.tables = args.manifest = args.column_map = None
        _, _, problems = _configure(args)
        if problems:
            return _report("demo", problems)
        rc = _run(_names(args.partitions), verbose=args.verbose)
        if args.web:
            from opencoder_assets.default_crawl import run_web_demo

            rc = max(rc, run_web_demo(verbose=args.verbose))
        return rc
    if args.cmd == "export":
        from pathlib import Path

        from opencoder_assets.core.export import export_partition
        from opencoder_assets.core.steps import FINAL_STEP
        from opencoder_assets.definitions import defs

        storage = defs.resources["storage"]
        base = Path(storage.root).resolve() / FINAL_STEP
        parts = _names(args.partitions) or sorted(p.name for p in base.glob("*") if storage.has(FINAL_STEP, p.name))
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
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
