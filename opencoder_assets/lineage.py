"""File-level lineage from the metrics store: where did this file go and why; which inputs made this output.

Why here and not in the asset graph: Dagster's lineage is per asset/partition; the recipe's
questions are per *file*. Every step records one decision row per input file (``file_decisions``)
and the ids are stable across steps, so both questions are joins on ``file_id``:

- ``where``: the file's row of every step, in pipeline order, with ``duplicate_of:<id>`` resolved
  to the survivor's repo/path, its fuzzy cluster, its transform edits, and its final status;
- ``inputs``: for a file of ``refinecode_code``, its raw input plus every file it absorbed in exact
  or fuzzy dedup -- transitively (a fuzzy duplicate may itself have absorbed exact copies) -- and
  its transform edits.

The SQL is in module constants, documented in docs/lineage.md. ``lineage_main(argv)`` is the
``opencoder lineage`` command (also ``python -m opencoder_assets.lineage``); it opens the store
read-only (no lock file, no DDL: docs/security.md) and reports a missing or foreign database in one line.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from opencoder_assets.core.duckdb_sql import sql_str
from opencoder_assets.core.filtering import FilterThresholds, ThresholdConfigError
from opencoder_assets.core.readonly_duckdb import MetricsStoreError
from opencoder_assets.core.steps import STEP_NAMES
from resources import MetricsStore
from resources.storage import PublicationError

#: Steps with per-file decisions, in pipeline order.
STEP_ORDER = list(STEP_NAMES)
FINAL_STEP = STEP_ORDER[-1]
_DUP_RE = re.compile(r"duplicate_of:([0-9a-f]+)")

#: Ids of a repo/path (a repo name may itself contain "/": every split is tried).
SQL_IDS_FOR_PATH = """
SELECT DISTINCT file_id, repo, path FROM file_decisions WHERE repo = ? AND path = ?
"""

#: Every decision of one file, in pipeline order, with the survivor's repo/path for duplicates.
SQL_WHERE = """
WITH steps(step, ord) AS (SELECT * FROM (VALUES {order}) t(step, ord)),
d AS (
  SELECT d.*, s.ord, regexp_extract(d.detail, 'duplicate_of:([0-9a-f]+)', 1) AS dup_id
  FROM file_decisions d JOIN steps s USING (step)
  WHERE d.file_id = ?
)
SELECT d.ord, d.step, d.partition, d.decision, d.reason, d.detail, d.run_id,
       nullif(d.dup_id, '') AS duplicate_of,
       (SELECT any_value(o.repo || '/' || o.path) FROM file_decisions o
         WHERE o.file_id = nullif(d.dup_id, '') AND o.step = 'raw_code') AS duplicate_of_path
FROM d ORDER BY d.ord
"""

#: Everything absorbed into a file by dedup, transitively (exact and fuzzy), with the step and detail.
SQL_ABSORBED = """
WITH RECURSIVE dups AS (
  SELECT file_id AS absorbed, regexp_extract(detail, 'duplicate_of:([0-9a-f]+)', 1) AS into_id, step, detail
  FROM file_decisions
  WHERE step IN ('exact_deduped_code', 'fuzzy_deduped_code') AND decision = 'dropped'
    AND detail LIKE 'duplicate_of:%'
),
tree(absorbed, into_id, step, detail, depth) AS (
  SELECT absorbed, into_id, step, detail, 1 FROM dups WHERE into_id = ?
  UNION ALL
  SELECT d.absorbed, d.into_id, d.step, d.detail, t.depth + 1 FROM dups d JOIN tree t ON d.into_id = t.absorbed
)
SELECT t.absorbed, r.repo, r.path, t.step, t.into_id, t.detail, t.depth
FROM tree t LEFT JOIN (SELECT DISTINCT file_id, repo, path FROM file_decisions WHERE step = 'raw_code') r
  ON r.file_id = t.absorbed
ORDER BY t.depth, t.step, r.repo, r.path
"""


@dataclass
class StepRecord:
    """One step's decision about a file."""

    step: str
    partition: str
    decision: str
    reason: str | None
    detail: str | None
    run_id: str
    duplicate_of: str | None = None
    duplicate_of_path: str | None = None
    #: for a filtered_code drop: each fired rule with the file's signal value and the threshold.
    rules: list[dict[str, Any]] | None = None


@dataclass
class FileLineage:
    """Answer to "where did this file go and why"."""

    file_id: str
    repo: str | None
    path: str | None
    steps: list[StepRecord] = field(default_factory=list)
    fuzzy_cluster: dict[str, Any] | None = None
    transform_edits: dict[str, Any] | None = None
    final: str = ""


@dataclass
class OutputInputs:
    """Answer to "which inputs produced this output file"."""

    file_id: str
    repo: str | None
    path: str | None
    in_output: bool
    raw_input: dict[str, Any] | None
    absorbed: list[dict[str, Any]] = field(default_factory=list)
    transform_edits: dict[str, Any] | None = None


def _has_table(store: MetricsStore, name: str) -> bool:
    return bool(store.query("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name])[0][0])


def resolve_file_ids(store: MetricsStore, target: str | None = None, file_id: str | None = None) -> list[str]:
    """File ids for ``--file-id`` or a ``repo/path`` (trying every "/" as the repo/path boundary)."""
    if file_id:
        known = store.query("SELECT count(*) FROM file_decisions WHERE file_id = ?", [file_id])[0][0]
        return [file_id] if known else []
    if not target:
        raise ValueError("give repo/path or a file id")
    ids: list[str] = []
    for i, ch in enumerate(target):
        if ch == "/":
            for fid, _, _ in store.query(SQL_IDS_FOR_PATH, [target[:i], target[i + 1:]]):
                if fid not in ids:
                    ids.append(fid)
    return ids


def _where_sql() -> str:
    return SQL_WHERE.format(order=", ".join(f"({sql_str(s)}, {i})" for i, s in enumerate(STEP_ORDER)))


def _edits(store: MetricsStore, file_id: str) -> dict[str, Any] | None:
    if not _has_table(store, "transform_edits"):
        return None
    with store.connect() as con:
        cur = con.execute("SELECT * EXCLUDE (step) FROM transform_edits WHERE file_id = ?", [file_id])
        row = cur.fetchone()
        if row is None:
            return None
        cols = [c[0] for c in cur.description]
    return dict(zip(cols, row, strict=True))


_CONFIG_RE = re.compile(r"config=(\S+)")
_HITS_RE = re.compile(r"hits=(\S+)")


def _run_thresholds_path(store: MetricsStore, step: StepRecord) -> str | None:
    """The ``thresholds_path`` the filtered_code run used (its params in the manifest), or None."""
    rows = store.query("SELECT extra FROM step_runs WHERE step = ? AND partition = ? AND run_id = ?",
                       [step.step, step.partition, step.run_id])
    if not rows:
        return None
    params = json.loads(rows[0][0] or "{}").get("params") or {}
    return params.get("thresholds_path")


def explain_filter_drop(store: MetricsStore, file_id: str, step: StepRecord,
                        thresholds_path: str | None = None) -> list[dict[str, Any]]:
    """Each rule that dropped the file: ``{signal, value, threshold, config, thresholds}``.

    The config comes from the decision detail (``config=python hits=a,b``), the signal values
    from the ``quality_signals`` view, the thresholds from the file the run used (recorded in
    its manifest; ``thresholds_path`` overrides, else the packaged file).
    """
    detail = step.detail or ""
    config = _CONFIG_RE.search(detail)
    hits = _HITS_RE.search(detail)
    if not hits:
        return []
    values: dict[str, Any] = {}
    if _has_table(store, "quality_signals"):
        rows = store.query("SELECT map_keys(signals), map_values(signals) FROM quality_signals "
                           "WHERE file_id = ? AND partition = ? LIMIT 1", [file_id, step.partition])
        if rows:
            values = dict(zip(rows[0][0], rows[0][1], strict=True))
    source = thresholds_path or _run_thresholds_path(store, step)
    try:
        th = FilterThresholds.load(source)
        rules = th.rules(config.group(1)) if config else {}
        source = th.source
    except ThresholdConfigError as exc:
        rules, source = {}, f"unavailable: {exc}"
    out = []
    for name in hits.group(1).split(","):
        rule = rules.get(name)
        out.append({"signal": name, "value": values.get(name), "threshold": rule.describe() if rule else None,
                    "config": config.group(1) if config else None, "thresholds": source})
    return out


def where(store: MetricsStore, file_id: str, thresholds_path: str | None = None) -> FileLineage:
    """Every step's decision for one file, pipeline order, duplicates resolved, final status."""
    rows = store.query(_where_sql(), [file_id])
    raw = store.query("SELECT any_value(repo), any_value(path) FROM file_decisions WHERE file_id = ?", [file_id])[0]
    out = FileLineage(file_id=file_id, repo=raw[0], path=raw[1])
    for _, step, part, decision, reason, detail, run_id, dup, dup_path in rows:
        out.steps.append(StepRecord(step, part, decision, reason, detail, run_id, dup, dup_path))
    if _has_table(store, "dedup_clusters"):
        with store.connect() as con:
            cur = con.execute("SELECT cluster_id, is_survivor, survivor_id, cluster_size, est_similarity "
                              "FROM dedup_clusters WHERE file_id = ?", [file_id])
            row = cur.fetchone()
            if row is not None:
                out.fuzzy_cluster = dict(zip([c[0] for c in cur.description], row, strict=True))
    out.transform_edits = _edits(store, file_id)
    for s in out.steps:
        if s.step == "filtered_code" and s.decision == "dropped":
            s.rules = explain_filter_drop(store, file_id, s, thresholds_path)
    dropped = next((s for s in out.steps if s.decision == "dropped"), None)
    if dropped is not None:
        via = f" (duplicate of {dropped.duplicate_of_path or dropped.duplicate_of})" if dropped.duplicate_of else ""
        out.final = f"dropped at {dropped.step}: {dropped.reason}{via}"
    elif out.steps and out.steps[-1].step == FINAL_STEP:
        out.final = "in the RefineCode output (refinecode_code)"
    elif out.steps:
        out.final = f"kept so far; last recorded step {out.steps[-1].step} (later steps not materialized)"
    else:
        out.final = "no decision recorded"
    return out


def inputs_of(store: MetricsStore, file_id: str) -> OutputInputs:
    """The raw input of an output file plus every file it absorbed in dedup (transitively)."""
    raw = store.query(
        "SELECT repo, path, partition, size_bytes, detail FROM file_decisions WHERE file_id = ? AND step = 'raw_code'",
        [file_id],
    )
    final = store.query("SELECT decision FROM file_decisions WHERE file_id = ? AND step = ?", [file_id, FINAL_STEP])
    res = OutputInputs(
        file_id=file_id, repo=raw[0][0] if raw else None, path=raw[0][1] if raw else None,
        in_output=bool(final) and final[0][0] == "kept",
        raw_input=dict(zip(("repo", "path", "partition", "size_bytes", "read_error"), raw[0], strict=True)) if raw else None,
    )
    for absorbed, repo, path, step, into_id, detail, depth in store.query(SQL_ABSORBED, [file_id]):
        res.absorbed.append({"file_id": absorbed, "repo": repo, "path": path, "step": step, "into": into_id,
                             "detail": detail, "depth": depth})
    res.transform_edits = _edits(store, file_id)
    return res


# ------------------------------------------------------------------------------- printing
def format_where(lin: FileLineage) -> str:
    lines = [f"{lin.repo}/{lin.path}  (file_id={lin.file_id})"]
    for s in lin.steps:
        extra = f" -> {s.duplicate_of_path}" if s.duplicate_of_path else ""
        lines.append(f"  {s.step:<20} [{s.partition}] {s.decision:<8} {s.reason or '':<26} {s.detail or ''}{extra}")
        for r in s.rules or []:
            value = "not computed" if r["value"] is None else f"{r['value']:.6g}"
            why = f"drops when {r['threshold']}" if r["threshold"] else "no threshold rule"
            lines.append(f"      {r['signal']} = {value}  ({why}; [{r['config']}] in {r['thresholds']})")
    if lin.fuzzy_cluster:
        c = lin.fuzzy_cluster
        lines.append(f"  fuzzy cluster {c['cluster_id']} size={c['cluster_size']} survivor={c['survivor_id']} "
                     f"est_j={c['est_similarity']:.3f}")
    if lin.transform_edits:
        nz = {k: v for k, v in lin.transform_edits.items() if k not in ("file_id", "partition", "run_id", "step") and v}
        lines.append(f"  transform edits: {nz or 'none'}")
    lines.append(f"  => {lin.final}")
    return "\n".join(lines)


def format_inputs(res: OutputInputs) -> str:
    status = "in refinecode_code" if res.in_output else "NOT in refinecode_code (see `lineage where`)"
    lines = [f"{res.repo}/{res.path}  (file_id={res.file_id}) - {status}"]
    if res.raw_input:
        r = res.raw_input
        lines.append(f"  raw input: {r['repo']}/{r['path']} [{r['partition']}] {r['size_bytes']} bytes")
    lines.append(f"  absorbed duplicates: {len(res.absorbed)}")
    for a in res.absorbed:
        lines.append(f"    {'  ' * (a['depth'] - 1)}{a['step']:<20} {a['repo']}/{a['path']}  ({a['detail']})")
    if res.transform_edits:
        nz = {k: v for k, v in res.transform_edits.items() if k not in ("file_id", "partition", "run_id", "step") and v}
        lines.append(f"  transform edits: {nz or 'none'}")
    return "\n".join(lines)


LINEAGE_EPILOG = """examples:
  opencoder lineage where cpy/Lib/heapq.py          # every step's decision for a repo/path
  opencoder lineage where --file-id 3f2a9c0d1e      # the same by file id
  opencoder lineage inputs cpy/Lib/heapq.py --json  # which inputs (and absorbed duplicates) made an output file
  opencoder lineage --db /archive/metrics.duckdb where org/repo/src/x.py
"""


def _question_args(parser: argparse.ArgumentParser, question: str) -> None:
    parser.add_argument("target", nargs="?", metavar="REPO/PATH", help="the file as repo/path")
    parser.add_argument("--file-id", help="the file's id instead of repo/path")
    # SUPPRESS: a value given before the question (``lineage --json where``) is not reset here.
    parser.add_argument("--db", default=argparse.SUPPRESS,
                        help="metrics DuckDB (default: OPENCODER_METRICS_DB or data/metrics.duckdb)")
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    if question == "where":
        parser.add_argument("--thresholds", default=argparse.SUPPRESS, metavar="TOML",
                            help="threshold file to explain filter drops with (default: the one the run used)")


def add_lineage_arguments(parser: argparse.ArgumentParser) -> None:
    """``where``/``inputs`` sub-commands on ``parser`` (``opencoder lineage`` and ``python -m
    opencoder_assets.lineage`` share them); ``--db``/``--json`` are accepted anywhere."""
    parser.add_argument("--db", default=None, help="metrics DuckDB (default: OPENCODER_METRICS_DB or data/)")
    parser.add_argument("--json", action="store_true", default=False, help="machine-readable output")
    parser.set_defaults(thresholds=None)
    questions = parser.add_subparsers(dest="question", required=True, metavar="{where,inputs}")
    for name, text in (("where", "where did this file go and why (every step's decision)"),
                       ("inputs", "which inputs produced this output file (raw input + absorbed duplicates)")):
        sub = questions.add_parser(name, help=text, description=text, epilog=LINEAGE_EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
        _question_args(sub, name)


def run_lineage(args: argparse.Namespace) -> int:
    """Answer ``args.question``: 0 found, 1 no such file / no decision, 2 usage or store error (one line)."""
    if not args.target and not args.file_id:
        print(f"opencoder lineage {args.question}: error: give REPO/PATH or --file-id", file=sys.stderr)
        return 2
    # Read-only: works on a copied/archived store in a read-only directory; never creates files.
    store = MetricsStore(db_path=args.db, read_only=True) if args.db else MetricsStore(read_only=True)
    try:
        ids = resolve_file_ids(store, args.target, args.file_id)
        if not ids:
            print(f"no file recorded for {args.file_id or args.target}{_near(store, args.target)}", file=sys.stderr)
            return 1
        results = [where(store, fid, args.thresholds) if args.question == "where" else inputs_of(store, fid)
                   for fid in ids]
    except (MetricsStoreError, PublicationError) as exc:
        print(f"opencoder lineage: error: {exc}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:  # e.g. a DuckDB file that is not a metrics store (no file_decisions)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"opencoder lineage: error: metrics store {Path(store.db_path).resolve()}: {first}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([asdict(r) for r in results], default=str, indent=2))
    else:
        fmt = format_where if args.question == "where" else format_inputs
        print("\n\n".join(fmt(r) for r in results))
    if args.question == "where" and all(not r.steps for r in results):
        return 1
    return 0


def _near(store: MetricsStore, target: str | None) -> str:
    """``; recorded files named x.py: a/x.py, ...`` for a repo/path that is not recorded."""
    if not target:
        return ""
    name = target.rsplit("/", 1)[-1]
    rows = store.query("SELECT DISTINCT repo || '/' || path FROM file_decisions WHERE step = 'raw_code' "
                       "AND (path = ? OR ends_with(path, '/' || ?)) ORDER BY 1 LIMIT 5", [name, name])
    return f"; recorded files named {name}: {', '.join(r[0] for r in rows)}" if rows else ""


def lineage_main(argv: list[str] | None = None) -> int:
    """``opencoder lineage [--db PATH] [--json] {where,inputs} (REPO/PATH | --file-id ID) [--db PATH] [--json]``."""
    parser = argparse.ArgumentParser(prog="opencoder lineage", description=__doc__, epilog=LINEAGE_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_lineage_arguments(parser)
    return run_lineage(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(lineage_main())
