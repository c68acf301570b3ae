"""The corpus report: the story of the data in tables, charts and a few excerpts (pure, no Dagster).

Why a separate layer: every number in the report comes from the metrics store's views
(``step_runs``, ``file_decisions``, ``drop_reasons``, ``quality_signals``, ``dedup_clusters``,
``transform_edits``) through a ``query(sql, params)`` callable, or from values the caller read from
published versions (funnel rows, file contents). This module turns them into
:class:`ReportSection` objects (typed tables + PNG charts + excerpts) and renders those once as a
self-contained HTML page; the Dagster asset (``assets/report.py``) renders the same objects as
materialization metadata, so the UI and the HTML file always tell the same story.

Charts use matplotlib's Agg canvas directly (no pyplot global state, safe in worker threads).
"""

from __future__ import annotations

import base64
import datetime as dt
import difflib
import html
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.dataset as ds

from opencoder_assets.core.filtering import FilterThresholds, Rule
from opencoder_assets.core.languages import PARTITION_LANGUAGES

#: ``query(sql, params) -> rows`` (MetricsStore.query).
Query = Callable[[str, "list[Any] | None"], list[tuple]]
#: ``texts(partition, file_ids) -> ({file_id: text before}, {file_id: text after})``.
TextReader = Callable[[str, Sequence[str]], tuple[dict[str, str], dict[str, str]]]

#: Section anchors and headings, in report order (tests and docs refer to these titles).
SECTION_TITLES: dict[str, str] = {
    "headlines": "Headlines",
    "funnel": "Funnel across steps and languages",
    "languages": "Files in vs kept per language",
    "drop_reasons": "Top drop reasons per step",
    "signals": "Quality-signal distributions",
    "dedup": "Largest dedup clusters",
    "transformations": "Sample of transformations",
    "other_assets": "Web, annealing and SFT assets",
}
DPI = 90
#: A chart larger than this is re-rendered smaller (Dagster stores metadata in its event log).
MAX_PNG_BYTES = 150_000
_PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C",
            "#CCB974", "#64B5CD"]
#: Colours of "dropped at step i" (no green: green means kept).
_DROP_COLORS = ["#8C8C8C", "#C44E52", "#DD8452", "#CCB974", "#8172B3", "#937860", "#DA8BC3", "#64B5CD", "#4C72B0"]


# ----------------------------------------------------------------------------------- model
@dataclass
class ReportTable:
    """A typed table: ``columns`` are (name, type) with type in string/int/float/bool."""

    key: str
    title: str
    columns: list[tuple[str, str]]
    rows: list[dict[str, Any]]


@dataclass
class ReportChart:
    key: str
    title: str
    png: bytes

    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class Excerpt:
    """Before/after lines of one transformed file (PII in ``before`` is masked)."""

    partition: str
    file: str
    edits: str
    before: str
    after: str


@dataclass
class ReportSection:
    anchor: str
    title: str
    intro: str = ""
    bullets: list[str] = field(default_factory=list)
    tables: list[ReportTable] = field(default_factory=list)
    charts: list[ReportChart] = field(default_factory=list)
    excerpts: list[Excerpt] = field(default_factory=list)


@dataclass
class CorpusReport:
    sections: list[ReportSection]
    generated_at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))

    def section(self, anchor: str) -> ReportSection:
        return next(s for s in self.sections if s.anchor == anchor)

    def tables(self) -> list[ReportTable]:
        return [t for s in self.sections for t in s.tables]

    def charts(self) -> list[ReportChart]:
        return [c for s in self.sections for c in s.charts]

    def html(self) -> str:
        return render_html(self)


# ---------------------------------------------------------------------------------- helpers
def _mb(n: float) -> float:
    return round(n / 1e6, 3)


def _pct(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def render_png(fig, dpi: int = DPI, rect: tuple[float, float, float, float] = (0, 0, 1, 1)) -> bytes:
    """PNG bytes of a figure, re-rendered at a lower dpi while over :data:`MAX_PNG_BYTES`."""
    fig.tight_layout(rect=rect)
    while True:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        data = buf.getvalue()
        if len(data) <= MAX_PNG_BYTES or dpi <= 40:
            return data
        dpi = int(dpi * 0.8)


def _short_step(step: str) -> str:
    return step.removesuffix("_code")


def _color(i: int) -> str:
    return _PALETTE[i % len(_PALETTE)]


def _lang_color(lang: str) -> str:
    """One colour per language in every chart (by its place in the partition list)."""
    i = PARTITION_LANGUAGES.index(lang) if lang in PARTITION_LANGUAGES else len(PARTITION_LANGUAGES)
    return _PALETTE[i % len(_PALETTE)]


# ------------------------------------------------------------------------------------ funnel
def funnel_section(funnel: Mapping[str, list[dict[str, Any]]], step_names: Sequence[str]) -> ReportSection:
    """``funnel[language]`` = rows of ``assets.code.funnel_rows`` (files/MB/tokens per step; tokens are
    real counts from ``transformed_code`` on, None before it)."""
    langs = sorted(funnel)
    rows: list[dict[str, Any]] = []
    totals: dict[str, dict[str, float]] = {}
    for lang in langs:
        for r in funnel[lang]:
            t = totals.setdefault(r["step"], {"files_in": 0, "files_kept": 0, "MB_in": 0.0, "MB_kept": 0.0,
                                              "tokens_kept": None, "languages": 0})
            for k in ("files_in", "files_kept", "MB_in", "MB_kept"):
                t[k] += r[k]
            if r.get("tokens_kept") is not None:
                t["tokens_kept"] = (t["tokens_kept"] or 0) + r["tokens_kept"]
            t["languages"] += 1
    steps = [s for s in step_names if s in totals]
    for step in steps:
        t = totals[step]
        rows.append({"language": "all", "step": step, "files_in": int(t["files_in"]), "files_kept": int(t["files_kept"]),
                     "kept_pct": _pct(t["files_kept"], t["files_in"]), "MB_in": round(t["MB_in"], 3),
                     "MB_kept": round(t["MB_kept"], 3),
                     "tokens_kept": None if t["tokens_kept"] is None else int(t["tokens_kept"])})
    for lang in langs:
        for r in funnel[lang]:
            rows.append({"language": lang, "step": r["step"], "files_in": r["files_in"], "files_kept": r["files_kept"],
                         "kept_pct": _pct(r["files_kept"], r["files_in"]), "MB_in": r["MB_in"], "MB_kept": r["MB_kept"],
                         "tokens_kept": r.get("tokens_kept")})
    table = ReportTable("funnel", "Funnel per step (all languages, then each language)", [
        ("language", "string"), ("step", "string"), ("files_in", "int"), ("files_kept", "int"), ("kept_pct", "float"),
        ("MB_in", "float"), ("MB_kept", "float"), ("tokens_kept", "int")], rows)
    section = ReportSection("funnel", SECTION_TITLES["funnel"],
                            "What each step keeps, in files, MB and tokens, summed over every language partition "
                            "that has published data. Tokens are real counts of the run's tokenizer "
                            "(core/tokens.py), counted once per file where the content becomes final "
                            "(transformed_code) and summed over each later step's kept files; steps before it "
                            "hold pre-transformation content and show none.",
                            tables=[table])
    if steps:
        section.charts.append(ReportChart("funnel_chart", "Funnel: kept per step, stacked by language",
                                          _funnel_chart(funnel, steps, langs)))
    return section


def _funnel_chart(funnel: Mapping[str, list[dict[str, Any]]], steps: list[str], langs: list[str]) -> bytes:
    fig = _figure(12, 3.8)
    metrics = (("files_kept", "files kept"), ("MB_kept", "MB kept"), ("tokens_kept", "tokens kept (from transform on)"))
    for j, (key, label) in enumerate(metrics):
        ax = fig.add_subplot(1, 3, j + 1)
        bottom = [0.0] * len(steps)
        for lang in langs:
            by_step = {r["step"]: float(r.get(key) or 0) for r in funnel[lang]}
            vals = [by_step.get(s, 0.0) for s in steps]
            ax.bar(range(len(steps)), vals, bottom=bottom, color=_lang_color(lang), label=lang, width=0.75)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        ax.set_xticks(range(len(steps)), [_short_step(s) for s in steps], rotation=40, ha="right", fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
        if j == 0:
            handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles[::-1], labels[::-1], loc="center right", fontsize=8, title="language", title_fontsize=8)
    return render_png(fig, rect=(0, 0, 0.9, 1))


# --------------------------------------------------------------------------------- languages
def languages_section(funnel: Mapping[str, list[dict[str, Any]]], step_names: Sequence[str]) -> ReportSection:
    """Per language: files in (first step), files kept (last published step), and where the
    rest went (dropped per step)."""
    rows = []
    fates: dict[str, dict[str, int]] = {}
    for lang in sorted(funnel):
        fr = [r for r in funnel[lang] if r["step"] in step_names]
        if not fr:
            continue
        first, last = fr[0], fr[-1]
        dropped = {r["step"]: r["files_in"] - r["files_kept"] for r in fr}
        fates[lang] = {**dropped, "kept": last["files_kept"]}
        worst = max(dropped.items(), key=lambda kv: kv[1]) if dropped else ("", 0)
        rows.append({"language": lang, "files_in": first["files_in"], "files_kept": last["files_kept"],
                     "kept_pct": _pct(last["files_kept"], first["files_in"]), "MB_in": first["MB_in"],
                     "MB_kept": last["MB_kept"], "tokens_kept": last.get("tokens_kept"),
                     "last_step": last["step"], "largest_loss": f"{worst[0]} (-{worst[1]})" if worst[1] else ""})
    table = ReportTable("languages", "Files in vs kept per language", [
        ("language", "string"), ("files_in", "int"), ("files_kept", "int"), ("kept_pct", "float"), ("MB_in", "float"),
        ("MB_kept", "float"), ("tokens_kept", "int"), ("last_step", "string"), ("largest_loss", "string")], rows)
    section = ReportSection("languages", SECTION_TITLES["languages"],
                            "Each bar is a language's input files; the green part is what the final corpus keeps, "
                            "the other parts show the step that dropped the rest.", tables=[table])
    if fates:
        section.charts.append(ReportChart("languages_chart", "Where each language's files went",
                                          _languages_chart(fates, [s for s in step_names])))
    return section


def _languages_chart(fates: dict[str, dict[str, int]], steps: list[str]) -> bytes:
    langs = sorted(fates, key=lambda lang: sum(fates[lang].values()))
    parts = ["kept", *[s for s in steps if any(fates[lang].get(s, 0) for lang in langs)]]
    fig = _figure(11, 0.45 * len(langs) + 1.6)
    ax = fig.add_subplot(1, 1, 1)
    left = [0] * len(langs)
    for part in parts:
        vals = [fates[lang].get(part, 0) for lang in langs]
        color = "#55A868" if part == "kept" else _DROP_COLORS[steps.index(part) % len(_DROP_COLORS)]
        ax.barh(langs, vals, left=left, color=color, label=part if part == "kept" else f"dropped: {_short_step(part)}")
        for y, (lft, v) in enumerate(zip(left, vals, strict=True)):
            total = sum(fates[langs[y]].values())
            if total and v / total > 0.07:
                ax.text(lft + v / 2, y, str(v), ha="center", va="center", fontsize=7, color="white")
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.set_xlabel("files")
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    ax.grid(axis="x", alpha=0.3)
    return render_png(fig)


# ------------------------------------------------------------------------------ drop reasons
def drop_reasons_section(query: Query, step_names: Sequence[str], top: int = 6) -> ReportSection:
    """The ``top`` reasons of each step with their share of the step's input (all languages)
    and the languages they hit."""
    step_in = {s: int(n) for s, n in query("SELECT step, sum(input_count) FROM step_runs GROUP BY step", None)}
    lang_in = {(s, p): int(n) for s, p, n in query("SELECT step, partition, input_count FROM step_runs", None)}
    rows_raw = query("SELECT step, reason, partition, files, bytes FROM drop_reasons WHERE list_contains(?, step)",
                     [list(step_names)])
    agg: dict[tuple[str, str], dict[str, Any]] = {}
    for step, reason, part, files, nbytes in rows_raw:
        a = agg.setdefault((step, reason or "(none)"), {"files": 0, "bytes": 0, "langs": []})
        a["files"] += int(files)
        a["bytes"] += int(nbytes or 0)
        a["langs"].append((int(files), part))
    rows = []
    for step in step_names:
        items = sorted(((r, a) for (s, r), a in agg.items() if s == step), key=lambda kv: (-kv[1]["files"], kv[0]))
        for reason, a in items[:top]:
            langs = ", ".join(f"{p} {f} ({_pct(f, lang_in.get((step, p), 0)):.0f}%)"
                              for f, p in sorted(a["langs"], key=lambda x: (-x[0], x[1]))[:4])
            rows.append({"step": step, "reason": reason, "files": a["files"],
                         "share_pct": _pct(a["files"], step_in.get(step, 0)), "MB": _mb(a["bytes"]),
                         "languages": langs})
    table = ReportTable("drop_reasons", "Top drop reasons per step", [
        ("step", "string"), ("reason", "string"), ("files", "int"), ("share_pct", "float"), ("MB", "float"),
        ("languages", "string")], rows)
    section = ReportSection("drop_reasons", SECTION_TITLES["drop_reasons"],
                            f"Up to {top} reasons per step. share_pct: files dropped for the reason / files the step "
                            "read (all languages); languages: files and share of that language's input. For the "
                            "filter the reason is the first rule that fired (all rules: next section).",
                            tables=[table])
    if rows:
        section.charts.append(ReportChart("drop_reasons_chart", "Most frequent drop reasons", _reasons_chart(rows,
                                                                                                             step_names)))
    return section


def _reasons_chart(rows: list[dict[str, Any]], step_names: Sequence[str]) -> bytes:
    best = sorted(rows, key=lambda r: (-r["files"], r["step"], r["reason"]))[:14][::-1]
    fig = _figure(11, 0.32 * len(best) + 1.4)
    ax = fig.add_subplot(1, 1, 1)
    colors = {s: _color(i) for i, s in enumerate(step_names)}
    labels = [f"{_short_step(r['step'])}: {r['reason'].removeprefix('filter:')}" for r in best]
    ax.barh(range(len(best)), [r["files"] for r in best], color=[colors[r["step"]] for r in best])
    ax.set_yticks(range(len(best)), labels, fontsize=8)
    for y, r in enumerate(best):
        top_lang = r["languages"].split(", ")[0] if r["languages"] else ""
        ax.text(r["files"], y, f" {r['files']}: {r['share_pct']:.0f}% of the step's input; {top_lang}", va="center",
                fontsize=7)
    ax.set_xlabel("files dropped")
    ax.set_xlim(0, max(r["files"] for r in best) * 1.55)
    ax.grid(axis="x", alpha=0.3)
    return render_png(fig)


def has_view(query: Query, name: str) -> bool:
    """Side-table views exist only once some step published that table (e.g. not after ingest only)."""
    return bool(query("SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [name])[0][0])


# ------------------------------------------------------------------------------------ signals
_CONFIG = r"regexp_extract(d.detail, 'config=(\S+)', 1)"


def rule_text(rule: Rule) -> str:
    parts = [f"{k} {getattr(rule, k)}" for k in ("lt", "le", "gt", "ge", "eq") if getattr(rule, k) is not None]
    if rule.random_drop is not None:
        parts.append(f"p={rule.random_drop}")
    return ", ".join(parts)


def _over_sql(rule: Rule) -> str:
    """The SQL form of :meth:`Rule.over` on column ``v`` (numbers come from the parsed TOML)."""
    terms = [f"v {op} {float(getattr(rule, k))!r}" for k, op in (("lt", "<"), ("gt", ">"), ("le", "<="), ("ge", ">="))
             if getattr(rule, k) is not None]
    if rule.eq is not None:
        terms.append(f"v = {float(rule.eq)!r}")
    return "(" + " OR ".join(terms) + ")" if terms else "false"


def signals_section(query: Query, thresholds: FilterThresholds, filter_step: str = "filtered_code",
                    top: int = 6, sample_rows: int = 20_000) -> ReportSection:
    """The signals of the rules that fire most (any position in the file's hit list): quantiles,
    % null, % over the threshold, and histograms with the threshold drawn."""
    fired = [] if not has_view(query, "quality_signals") else query(
        f"""SELECT config, rule, count(*) AS files FROM (
                SELECT {_CONFIG} AS config,
                       unnest(string_split(regexp_extract(d.detail, 'hits=(\\S+)', 1), ',')) AS rule
                FROM file_decisions d WHERE d.step = ? AND d.decision = 'dropped' AND d.detail LIKE '%hits=%')
            WHERE rule LIKE 'qsc_%' GROUP BY ALL ORDER BY files DESC, config, rule""", [filter_step])
    config_files = dict(query(f"SELECT {_CONFIG}, count(*) FROM file_decisions d WHERE d.step = ? GROUP BY 1",
                              [filter_step]))
    chosen: list[tuple[str, Rule, int]] = []
    for config, rule_name, files in fired:
        rules = thresholds.configs.get(config, {})
        if rule_name in rules and len(chosen) < top:
            chosen.append((config, rules[rule_name], int(files)))
    rows, hists = [], []
    for config, rule, files in chosen:
        base = f"""SELECT s.signals[?] AS v FROM quality_signals s JOIN file_decisions d
                   ON d.file_id = s.file_id AND d.partition = s.partition AND d.step = ?
                   WHERE {_CONFIG} = ?"""
        params = [rule.signal, filter_step, config]
        n, n_val, qs, over = query(
            f"SELECT count(*), count(v), quantile_cont(v, [0.01, 0.5, 0.99]), count(*) FILTER ({_over_sql(rule)}) "
            f"FROM ({base})", params)[0]
        values = [float(r[0]) for r in query(
            f"SELECT v FROM (SELECT v FROM ({base}) WHERE v IS NOT NULL AND isfinite(v)) "
            f"USING SAMPLE reservoir({int(sample_rows)} ROWS) REPEATABLE (7)", params)]
        p1, p50, p99 = (qs or [None, None, None])
        rows.append({"config": config, "signal": rule.signal, "rule": rule_text(rule), "files": int(n),
                     "files_fired": files, "null_pct": _pct(n - n_val, n), "p1": _round(p1), "p50": _round(p50),
                     "p99": _round(p99), "over_threshold_pct": _pct(over, n)})
        hists.append((config, rule, values, _pct(over, n)))
    table = ReportTable("quality_signals", "Signals of the most frequently firing rules", [
        ("config", "string"), ("signal", "string"), ("rule", "string"), ("files", "int"), ("files_fired", "int"),
        ("null_pct", "float"), ("p1", "float"), ("p50", "float"), ("p99", "float"), ("over_threshold_pct", "float")],
        rows)
    total = sum(config_files.values())
    section = ReportSection(
        "signals", SECTION_TITLES["signals"],
        f"{total} files reached the filter. For the {len(rows)} rules that fire most (counting every rule in a "
        f"file's hit list): the signal's distribution over the files of that threshold config, the share with no "
        f"value (null_pct: signal not computed or failed; a null never fires), and the share over the threshold "
        f"(before any random_drop). Thresholds: {thresholds.source}.", tables=[table])
    if hists:
        section.charts.append(ReportChart("signal_histograms", "Signal histograms with thresholds",
                                          _signal_chart(hists)))
    return section


def _round(x: float | None) -> float | None:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return None
    return float(f"{x:.4g}")


def _signal_chart(hists: list[tuple[str, Rule, list[float], float]]) -> bytes:
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    cols = 3
    nrows = math.ceil(len(hists) / cols)
    fig = _figure(12, 2.7 * nrows + 0.3)
    for i, (config, rule, values, over_pct) in enumerate(hists):
        ax = fig.add_subplot(nrows, cols, i + 1)
        cuts = [float(getattr(rule, k)) for k in ("lt", "gt", "le", "ge", "eq") if getattr(rule, k) is not None]
        if values:
            arr = np.asarray(values)
            lo, hi = float(arr.min()), float(arr.max())
            lo, hi = min([lo, *cuts]), max([hi, *cuts])
            p50 = float(np.median(arr))
            log = lo >= 0 and hi > 0 and hi / max(p50, 1.0) > 100
            if log:
                edges = np.concatenate([[0.0], np.geomspace(max(min(arr[arr > 0].min(initial=hi), 1.0), 1e-6),
                                                            hi * 1.01, 40)])
                ax.set_xscale("symlog", linthresh=max(min(arr[arr > 0].min(initial=1.0), 1.0), 1e-6))
            else:
                edges = np.linspace(lo, hi if hi > lo else lo + 1, 41)
            ax.hist(arr, bins=edges, color="#4C72B0", alpha=0.85)
        else:
            ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
        for k, c in enumerate(cuts):
            ax.axvline(c, color="#C44E52", linestyle="--", linewidth=1.6,
                       label=f"drop if {rule_text(rule)}: {over_pct:.0f}% of files" if k == 0 else None)
        ax.set_title(f"{rule.signal.removeprefix('qsc_')} [{config}]", fontsize=8.5)
        if cuts:
            ax.legend(fontsize=7, loc="best", framealpha=0.85)
        ax.tick_params(labelsize=7)
        ax.set_ylabel("files", fontsize=7)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return render_png(fig)


# -------------------------------------------------------------------------------------- dedup
def dedup_section(query: Query, top: int = 6, fuzzy_step: str = "fuzzy_deduped_code",
                  exact_step: str = "exact_deduped_code") -> ReportSection:
    """The largest fuzzy clusters with their members' repo/path and similarity, and the largest
    exact-duplicate groups."""
    clusters = has_view(query, "dedup_clusters")
    members = [] if not clusters else query(
        """WITH top AS (SELECT partition, cluster_id, max(cluster_size) AS size FROM dedup_clusters WHERE step = ?
                        GROUP BY ALL ORDER BY size DESC, partition, cluster_id LIMIT ?)
           SELECT c.partition, c.cluster_id, t.size, c.is_survivor, d.repo, d.path, c.est_similarity,
                  c.verified_similarity
           FROM dedup_clusters c JOIN top t USING (partition, cluster_id)
           LEFT JOIN file_decisions d ON d.file_id = c.file_id AND d.partition = c.partition AND d.step = c.step
           WHERE c.step = ?
           ORDER BY t.size DESC, c.partition, c.cluster_id, c.is_survivor DESC, d.repo, d.path""",
        [fuzzy_step, top, fuzzy_step])
    rank: dict[tuple[str, str], int] = {}
    rows = []
    for part, cid, size, survivor, repo, path, est, ver in members:
        r = rank.setdefault((part, cid), len(rank) + 1)
        rows.append({"cluster": r, "language": part, "size": int(size), "role": "kept" if survivor else "dropped",
                     "repo": repo, "path": path, "est_similarity": _round(est), "verified_similarity": _round(ver)})
    fuzzy = ReportTable("dedup_clusters", "Largest fuzzy-dedup clusters (members)", [
        ("cluster", "int"), ("language", "string"), ("size", "int"), ("role", "string"), ("repo", "string"),
        ("path", "string"), ("est_similarity", "float"), ("verified_similarity", "float")], rows)
    groups = query(
        """WITH g AS (SELECT partition, substr(detail, 14) AS survivor, count(*) AS dropped,
                             list(repo || '/' || path ORDER BY repo, path) AS copies
                      FROM file_decisions WHERE step = ? AND reason = 'exact_duplicate' GROUP BY ALL
                      ORDER BY dropped DESC, partition, survivor LIMIT ?)
           SELECT g.partition, g.dropped + 1, k.repo || '/' || k.path, g.copies FROM g
           LEFT JOIN file_decisions k ON k.file_id = g.survivor AND k.partition = g.partition AND k.step = ?
           ORDER BY g.dropped DESC, g.partition, g.survivor""", [exact_step, top, exact_step])
    exact = ReportTable("exact_duplicate_groups", "Largest exact-duplicate groups (identical SHA-256)", [
        ("language", "string"), ("copies", "int"), ("kept", "string"), ("dropped_examples", "string")],
        [{"language": p, "copies": int(n), "kept": kept, "dropped_examples": ", ".join(copies[:3])
          + (f" (+{len(copies) - 3} more)" if len(copies) > 3 else "")} for p, n, kept, copies in groups])
    sizes = [] if not clusters else query(
        "SELECT partition, cluster_size, count(DISTINCT cluster_id) FROM dedup_clusters WHERE step = ? "
        "GROUP BY ALL ORDER BY 1, 2", [fuzzy_step])
    n_clusters = sum(int(r[2]) for r in sizes)
    section = ReportSection(
        "dedup", SECTION_TITLES["dedup"],
        f"{n_clusters} near-duplicate clusters (MinHash + LSH) over all languages. In each cluster one file is "
        "kept (recipe keep policy: most stars, then newest commit); est_similarity is the MinHash estimate "
        "of the Jaccard similarity to the kept file, verified_similarity the exact 5-gram Jaccard where it was "
        "verified.", tables=[fuzzy, exact])
    if sizes:
        section.charts.append(ReportChart("dedup_chart", "Fuzzy clusters by size", _cluster_chart(sizes)))
    return section


def _cluster_chart(sizes: list[tuple]) -> bytes:
    from matplotlib.ticker import MaxNLocator

    langs = sorted({r[0] for r in sizes})
    xs = sorted({int(r[1]) for r in sizes})
    fig = _figure(min(9.0, 3.5 + 0.5 * len(xs)), 2.6)
    ax = fig.add_subplot(1, 1, 1)
    bottom = [0] * len(xs)
    for lang in langs:
        counts = {int(s): int(n) for p, s, n in sizes if p == lang}
        vals = [counts.get(x, 0) for x in xs]
        ax.bar([str(x) for x in xs], vals, bottom=bottom, color=_lang_color(lang), label=lang, width=0.5)
        bottom = [a + b for a, b in zip(bottom, vals, strict=True)]
    ax.set_xlim(-0.8, len(xs) - 0.2)
    ax.set_xlabel("files per cluster")
    ax.set_ylabel("clusters")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7)
    return render_png(fig)


# ---------------------------------------------------------------------------- transformations
_PII = ("email", "ip_address", "password", "key")


def transformations_section(query: Query, texts: TextReader, samples: int = 4,
                            step: str = "transformed_code") -> ReportSection:
    """Edit totals per language and before/after excerpts of a few files with PII or
    copyright edits (half PII, half copyright when both exist)."""
    edits_published = has_view(query, "transform_edits")
    totals = [] if not edits_published else query(
        f"""SELECT partition, count(*) AS files, count(*) FILTER (copyright_removed_chars > 0),
                   sum(copyright_removed_chars), count(*) FILTER (copyright_only_file),
                   {", ".join(f"sum({c})" for c in _PII)}
            FROM transform_edits WHERE step = ? GROUP BY partition ORDER BY partition""", [step])
    table = ReportTable("transform_edits", "Edits per language", [
        ("language", "string"), ("files", "int"), ("copyright_headers_removed", "int"), ("copyright_chars_removed", "int"),
        ("copyright_only_files", "int"), *[(c, "int") for c in _PII]],
        [{"language": r[0], "files": int(r[1]), "copyright_headers_removed": int(r[2]),
          "copyright_chars_removed": int(r[3] or 0), "copyright_only_files": int(r[4]),
          **{c: int(v or 0) for c, v in zip(_PII, r[5:], strict=True)}} for r in totals])
    edited = [] if not edits_published else query(
        f"""SELECT e.partition, e.file_id, d.repo || '/' || d.path, e.copyright_removed_chars,
                   {" + ".join(f"e.{c}" for c in _PII)} AS pii, {", ".join(f"e.{c}" for c in _PII)}
            FROM transform_edits e LEFT JOIN file_decisions d
              ON d.file_id = e.file_id AND d.partition = e.partition AND d.step = e.step
            WHERE e.step = ? AND (e.copyright_removed_chars > 0 OR {" + ".join(f"e.{c}" for c in _PII)} > 0)
              AND NOT e.copyright_only_file
            ORDER BY e.partition, e.file_id""", [step])
    pii = sorted((r for r in edited if r[4]), key=lambda r: (-r[4], r[0], r[1]))
    cr = _round_robin([r for r in edited if r[3] and not r[4]])
    picked = pii[: max(samples - min(len(cr), samples // 2), samples // 2)]
    picked += cr[: samples - len(picked)]
    excerpts = []
    by_part: dict[str, list[tuple]] = {}
    for r in picked:
        by_part.setdefault(r[0], []).append(r)
    for part, rs in sorted(by_part.items()):
        before, after = texts(part, [r[1] for r in rs])
        for r in rs:
            if r[1] not in before or r[1] not in after:
                continue
            edits = [f"copyright header: {r[3]} chars removed"] if r[3] else []
            edits += [f"{c}: {n}" for c, n in zip(_PII, r[5:], strict=True) if n]
            b, a = excerpt_pair(before[r[1]], after[r[1]])
            excerpts.append(Excerpt(part, r[2] or r[1], "; ".join(edits), b, a))
    return ReportSection(
        "transformations", SECTION_TITLES["transformations"],
        "Copyright/license headers removed and PII replaced by placeholders. The excerpts show the changed lines "
        "with two lines of context, before (fuzzy_deduped_code) and after (transformed_code); in the 'before' "
        "text the replaced PII is masked, so this report does not republish what the step removed.",
        tables=[table], excerpts=excerpts)


def _round_robin(rows: list[tuple]) -> list[tuple]:
    """Interleave rows by partition so the sample covers several languages."""
    groups: dict[str, list[tuple]] = {}
    for r in rows:
        groups.setdefault(r[0], []).append(r)
    out: list[tuple] = []
    while any(groups.values()):
        for k in sorted(groups):
            if groups[k]:
                out.append(groups[k].pop(0))
    return out


def _mask(text: str) -> str:
    """Keep the first and last character of a secret, bullet the rest."""
    if len(text) <= 2:
        return "•" * len(text)
    return text[0] + "•" * (len(text) - 2) + text[-1]


def excerpt_pair(before: str, after: str, context: int = 2, max_lines: int = 14,
                 max_chars: int = 150) -> tuple[str, str]:
    """The first changed hunks of ``before`` -> ``after`` with ``context`` lines around them;
    characters of ``before`` that were replaced inside a line are masked."""
    b_lines, a_lines = before.splitlines(), after.splitlines()
    ops = [op for op in difflib.SequenceMatcher(None, b_lines, a_lines, autojunk=False).get_opcodes()
           if op[0] != "equal"]
    if not ops:
        return "", ""
    b_out, a_out = [], []
    b_end = a_end = -1
    for tag, i1, i2, j1, j2 in ops:
        if len(b_out) >= max_lines:
            break
        masked = list(b_lines[i1:i2])
        if tag == "replace":
            for k in range(min(i2 - i1, j2 - j1)):
                masked[k] = _mask_changes(b_lines[i1 + k], a_lines[j1 + k])
        bs, be = max(i1 - context, b_end + 1), min(i2 + context, len(b_lines))
        as_, ae = max(j1 - context, a_end + 1), min(j2 + context, len(a_lines))
        if b_out and bs > b_end + 1:
            b_out.append("…")
            a_out.append("…")
        b_out += [*b_lines[bs:i1], *masked, *b_lines[i2:be]]
        a_out += a_lines[as_:ae]
        b_end, a_end = be - 1, ae - 1
    clip = [ln if len(ln) <= max_chars else ln[:max_chars] + "…" for ln in b_out[:max_lines]]
    clip_a = [ln if len(ln) <= max_chars else ln[:max_chars] + "…" for ln in a_out[:max_lines]]
    return "\n".join(clip), "\n".join(clip_a)


def _mask_changes(b: str, a: str) -> str:
    out = []
    for tag, i1, i2, _j1, _j2 in difflib.SequenceMatcher(None, b, a, autojunk=False).get_opcodes():
        out.append(b[i1:i2] if tag == "equal" else _mask(b[i1:i2]))
    return "".join(out)


def read_texts(shards: Sequence[Path], file_ids: Sequence[str]) -> dict[str, str]:
    """``{file_id: content}`` of the given ids from published Parquet shards (only two columns
    of the matching rows are read)."""
    if not shards or not file_ids:
        return {}
    table = ds.dataset([str(p) for p in shards], format="parquet").to_table(
        columns=["file_id", "content"], filter=pc.field("file_id").isin(list(file_ids)))
    return dict(zip(table["file_id"].to_pylist(), table["content"].to_pylist(), strict=True))


# ------------------------------------------------------------------------------ other assets
def other_assets_section(query: Query, code_steps: Sequence[str]) -> ReportSection:
    """Every published step outside the code pipeline (web recall, annealing, SFT)."""
    rows = [{"asset": s, "partition": p, "files_in": int(n), "files_kept": int(k), "kept_pct": _pct(k, n),
             "MB_in": _mb(bi), "MB_kept": _mb(bk), "recorded_at": str(t)[:19]}
            for s, p, n, k, bi, bk, t in query(
                "SELECT step, partition, input_count, kept, input_bytes, kept_bytes, recorded_at FROM step_runs "
                "WHERE NOT list_contains(?, step) ORDER BY step, partition", [list(code_steps)])]
    table = ReportTable("other_assets", "Published non-code steps", [
        ("asset", "string"), ("partition", "string"), ("files_in", "int"), ("files_kept", "int"), ("kept_pct", "float"),
        ("MB_in", "float"), ("MB_kept", "float"), ("recorded_at", "string")], rows)
    intro = ("Steps of the web-recall, annealing and SFT pipelines that have published a version (rows or "
             "samples in and kept)." if rows else
             "None of the web-recall, annealing or SFT assets has published data yet; materialize them and "
             "re-materialize this report.")
    return ReportSection("other_assets", SECTION_TITLES["other_assets"], intro, tables=[table])


# --------------------------------------------------------------------------------- headlines
def headlines_section(funnel: Mapping[str, list[dict[str, Any]]], query: Query,
                      filter_step: str = "filtered_code") -> ReportSection:
    """The facts that used to take SQL: overall yield, and per language the step that drops most
    and its leading reason."""
    bullets = []
    first_in = sum(rows[0]["files_in"] for rows in funnel.values() if rows)
    mb_in = sum(rows[0]["MB_in"] for rows in funnel.values() if rows)
    kept = sum(rows[-1]["files_kept"] for rows in funnel.values() if rows)
    mb_kept = sum(rows[-1]["MB_kept"] for rows in funnel.values() if rows)
    tokens = sum(rows[-1].get("tokens_kept") or 0 for rows in funnel.values() if rows)
    if first_in:
        bullets.append(f"{len(funnel)} language partition{'s' if len(funnel) != 1 else ''}: {first_in:,} files ({mb_in:,.1f} MB) in, {kept:,} files "
                       f"({mb_kept:,.1f} MB, {tokens:,} tokens) kept = {_pct(kept, first_in)}% of files, "
                       f"{_pct(mb_kept, mb_in)}% of bytes.")
    reasons: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for step, part, reason, files in query("SELECT step, partition, reason, files FROM drop_reasons", None):
        reasons.setdefault((step, part), []).append((int(files), reason or "(none)"))
    for lang in sorted(funnel, key=lambda k: -(funnel[k][0]["files_in"] if funnel[k] else 0)):
        rows = funnel[lang]
        if not rows:
            continue
        worst = max(rows, key=lambda r: (r["files_in"] - r["files_kept"], r["step"]))
        lost = worst["files_in"] - worst["files_kept"]
        text = (f"{lang}: {rows[-1]['files_kept']:,} of {rows[0]['files_in']:,} files kept "
                f"({_pct(rows[-1]['files_kept'], rows[0]['files_in'])}%).")
        if lost:
            text += (f" {worst['step']} drops the most: {_pct(lost, worst['files_in'])}% of the "
                     f"{worst['files_in']:,} files it reads")
            top = sorted(reasons.get((worst["step"], lang), []), key=lambda x: (-x[0], x[1]))
            if top:
                n, reason = top[0]
                alone = " (first rule to fire)" if worst["step"] == filter_step else ""
                text += f"; `{reason.removeprefix('filter:')}`{alone} accounts for {_pct(n, worst['files_in'])}%"
            text += "."
        bullets.append(text)
    return ReportSection("headlines", SECTION_TITLES["headlines"], bullets=bullets)


# ----------------------------------------------------------------------------------- assemble
def build_report(*, funnel: Mapping[str, list[dict[str, Any]]], query: Query, texts: TextReader,
                 thresholds: FilterThresholds, step_names: Sequence[str], top_signals: int = 6,
                 top_clusters: int = 6, samples: int = 4) -> CorpusReport:
    """Every section, in :data:`SECTION_TITLES` order."""
    funnel = {k: v for k, v in funnel.items() if v}
    return CorpusReport([
        headlines_section(funnel, query),
        funnel_section(funnel, step_names),
        languages_section(funnel, step_names),
        drop_reasons_section(query, step_names),
        signals_section(query, thresholds, top=top_signals),
        dedup_section(query, top=top_clusters),
        transformations_section(query, texts, samples=samples),
        other_assets_section(query, step_names),
    ])


# --------------------------------------------------------------------------------------- html
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2328;background:#fafbfc}
main{max-width:1180px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{margin:0 0 4px;font-size:26px} h2{margin-top:40px;border-bottom:2px solid #d0d7de;padding-bottom:4px}
h3{font-size:15px;margin:22px 0 6px} .meta{color:#57606a;margin:0 0 16px}
nav{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:8px 14px;margin-bottom:8px}
nav a{margin-right:14px;white-space:nowrap}
table{border-collapse:collapse;margin:8px 0 4px;font-size:12.5px;width:100%}
th,td{border:1px solid #d0d7de;padding:3px 7px;vertical-align:top}
th{background:#f6f8fa;text-align:left} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#fbfcfd} img{max-width:100%;height:auto;border:1px solid #eaeef2;margin:6px 0}
.intro{color:#3a434c;max-width:960px} .x{display:grid;grid-template-columns:1fr 1fr;gap:12px;margin:6px 0 18px}
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:8px;overflow-x:auto;font-size:12px;margin:2px 0;
white-space:pre-wrap;word-break:break-all} .lbl{font-weight:600;font-size:12px;color:#57606a} .empty{color:#8c959f}
"""


def _cell(value: Any, kind: str) -> str:
    if value is None:
        return '<td class="num empty">–</td>' if kind in ("int", "float") else '<td class="empty">–</td>'
    if kind == "int":
        return f'<td class="num">{int(value):,}</td>'
    if kind == "float":
        return f'<td class="num">{value:,.4g}</td>' if abs(value) < 1e6 else f'<td class="num">{value:,.0f}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def table_html(t: ReportTable) -> str:
    head = "".join(f"<th>{html.escape(n)}</th>" for n, _ in t.columns)
    if not t.rows:
        body = f'<tr><td colspan="{len(t.columns)}" class="empty">no rows</td></tr>'
    else:
        body = "".join("<tr>" + "".join(_cell(r.get(n), k) for n, k in t.columns) + "</tr>" for r in t.rows)
    return (f'<h3>{html.escape(t.title)}</h3><table data-key="{html.escape(t.key)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


def _md_inline(text: str) -> str:
    """Escape, then render `code` spans (the only inline markup the report uses)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def render_html(report: CorpusReport) -> str:
    """One self-contained page: inline CSS, base64 PNGs, HTML tables; no external resource."""
    nav = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in report.sections)
    parts = ['<!doctype html><html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>Corpus report</title><style>{_CSS}</style></head><body><main>",
             "<h1>Corpus report</h1>",
             f'<p class="meta">Generated {html.escape(report.generated_at)} from the published versions and the '
             f"metrics store.</p><nav>{nav}</nav>"]
    for s in report.sections:
        parts.append(f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>')
        if s.intro:
            parts.append(f'<p class="intro">{_md_inline(s.intro)}</p>')
        if s.bullets:
            parts.append("<ul>" + "".join(f"<li>{_md_inline(b)}</li>" for b in s.bullets) + "</ul>")
        for c in s.charts:
            parts.append(f'<img alt="{html.escape(c.title)}" title="{html.escape(c.title)}" src="{c.data_uri()}">')
        for t in s.tables:
            parts.append(table_html(t))
        if s.anchor == "transformations" and not s.excerpts:
            parts.append('<p class="empty">No file had a copyright or PII edit.</p>')
        for e in s.excerpts:
            parts.append(f"<h3>{html.escape(e.partition)}: {html.escape(e.file)}</h3><p class=\"meta\">"
                         f"{html.escape(e.edits)}</p><div class=\"x\"><div><div class=\"lbl\">before</div>"
                         f"<pre>{html.escape(e.before)}</pre></div><div><div class=\"lbl\">after</div>"
                         f"<pre>{html.escape(e.after)}</pre></div></div>")
        parts.append("</section>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def table_markdown(t: ReportTable, max_rows: int = 40) -> str:
    """A Markdown version of a table (for the excerpt and headline metadata)."""
    lines = ["| " + " | ".join(n for n, _ in t.columns) + " |", "|" + "|".join("---" for _ in t.columns) + "|"]
    for r in t.rows[:max_rows]:
        lines.append("| " + " | ".join("" if r.get(n) is None else str(r.get(n)).replace("|", "\\|")
                                       for n, _ in t.columns) + " |")
    return "\n".join(lines)


def excerpts_markdown(excerpts: Sequence[Excerpt]) -> str:
    if not excerpts:
        return "_No file had a copyright or PII edit._"
    out = []
    for e in excerpts:
        fence = "~~~~" if "~~~" in e.before + e.after else "~~~"
        out.append(f"**{e.partition}: `{e.file}`** ({e.edits})\n\nbefore:\n{fence}\n{e.before}\n{fence}\n\n"
                   f"after:\n{fence}\n{e.after}\n{fence}\n")
    return "\n".join(out)
