"""Code-related web recall as assets: crawl shards -> N rounds of seeds -> fastText -> recall -> domains.

Partitioning (why):
- ``web_pages`` is partitioned by crawl shard (``DynamicPartitionsDefinition`` ``web_crawl_shards``,
  one partition per file, added by ``web_crawl_sensor``): shards arrive independently and ingest in
  parallel; re-copying one file re-ingests only it.
- The rounds are *asset keys*, not partitions: ``round_1/web_seed_corpus`` ...
  ``round_N/url_patterns``. Round k's seeds depend on round k-1's URL patterns, which depend on its
  domains, which depend on its model, which depends on its seeds: as partitions of one asset set
  that is a dependency cycle Dagster rejects, and hiding the edge would hide the lineage. With one
  key per round the asset graph *is* the paper's loop, and each round's materialization records its
  model, threshold, held-out metrics, recall and domain growth. ``N`` is fixed when the code
  location loads (``OPENCODER_WEB_ROUNDS``, default 3); everything else is runtime config in the
  ``web_recall`` resource (``WebRecallSettings``).
- Round assets read every ingested shard (all ``web_pages`` partitions) and stream them, so memory
  is one batch of pages; storage partitions are the round keys (``<asset>/round_k/``).

Wiring: ``WEB_ASSETS``, ``WEB_JOBS``, ``WEB_SENSORS`` and ``WEB_RESOURCES`` (``{"web_recall": ...}``).
"""

import hashlib
import json
import math
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    ConfigurableResource,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    define_asset_job,
)

from opencoder_assets.assets.common import read_batches, record_step, run_streaming_step
from opencoder_assets.core import web_recall as wr
from opencoder_assets.core.duckdb_sql import sql_str
from opencoder_assets.core.schema import DECISION_SCHEMA
from resources import CorpusStorage, MetricsStore, PipelineSettings
from resources.storage import DEFAULT_DATA_ROOT, PartitionWriter
from sensors.web_crawl_sensor import (
    shard_path,
    web_crawl_sensor,
    web_crawl_shards,
    web_pages_job,
    web_sources,
)

WEB_RECALL_ROUNDS = int(os.environ.get("OPENCODER_WEB_ROUNDS", "3"))
GROUP = "web_recall"

RECALLED_SCHEMA = pa.schema([*wr.PAGE_SCHEMA, pa.field("score", pa.float32())])
MATCHED_SCHEMA = pa.schema([
    pa.field("page_id", pa.string()), pa.field("url", pa.string()), pa.field("domain", pa.string()),
    pa.field("text", pa.large_string()), pa.field("label", pa.string()), pa.field("pattern", pa.string()),
])


class WebRecallSettings(ConfigurableResource):
    """Sources and knobs of the web-recall loop (see docs/web_recall.md).

    - ``crawl_dir``: folder watched by ``web_crawl_sensor`` (Parquet/JSONL with ``url_column`` +
      ``text_column``, ``*.warc[.gz]``, ``*.warc.wet[.gz]``).
    - ``seed_file``: labelled JSONL/Parquet (``text``, ``label``, optional ``url``, ``group``).
    - ``known_code_domains`` / ``known_code_domains_file``: crawl pages of these base domains are
      positive seeds in every round.
    - ``url_patterns_file``: the editable pattern file (``%`` wildcard; ``-`` prefix = not code).
    - negatives: ``negatives_ratio`` x positives, sampled by seeded hash from crawl pages outside
      the known code domains (capped by ``max_negatives``).
    """

    crawl_dir: str = os.path.join(DEFAULT_DATA_ROOT, "web_crawl")
    #: shard-name pattern (fnmatch on the path under ``crawl_dir``) -> source, first match wins,
    #: e.g. ``{"CC-MAIN-*": "common_crawl", "fineweb/*": "fineweb"}``; unmatched shards in a
    #: sub-folder take the folder's name (``<crawl_dir>/<source>/...``), others ``default_source``
    shard_sources: dict[str, str] = {}
    default_source: str = "common_crawl"
    url_column: str = "url"
    text_column: str = "text"
    seed_file: str | None = None
    known_code_domains: list[str] = []
    known_code_domains_file: str | None = None
    url_patterns_file: str | None = os.path.join(DEFAULT_DATA_ROOT, "web_recall", "url_patterns.txt")
    patterns_within_code_domains: bool = True
    negatives_ratio: float = 3.0
    max_negatives: int = 1_000_000
    threshold: float = 0.5
    domain_min_ratio: float = 0.10
    domain_min_pages: int = 1
    domain_granularity: str = "registrable"
    holdout_fraction: float = 0.2
    bpe_vocab_size: int = 16_000
    bpe_min_frequency: int = 2
    max_chars: int = 8_000
    ft_lr: float = 0.2
    ft_epoch: int = 20
    ft_dim: int = 64
    ft_word_ngrams: int = 2
    ft_min_count: int = 2
    ft_bucket: int = 200_000
    seed: int = 42
    shard_min_age_s: float = 30.0
    score_batch_rows: int = 4000

    def bpe_params(self) -> wr.BpeParams:
        return wr.BpeParams(self.bpe_vocab_size, self.bpe_min_frequency, self.max_chars)

    def ft_params(self) -> wr.FastTextParams:
        return wr.FastTextParams(
            lr=self.ft_lr, epoch=self.ft_epoch, dim=self.ft_dim, word_ngrams=self.ft_word_ngrams,
            min_count=self.ft_min_count, bucket=self.ft_bucket, seed=self.seed, thread=1,
        )

    def source_of(self, shard: str) -> str:
        return wr.shard_source(shard, self.shard_sources, self.default_source)

    def known_domains(self) -> list[str]:
        return wr.load_domain_list(self.known_code_domains_file, self.known_code_domains, self.domain_granularity)


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def _round_key(k: int) -> str:
    return f"round_{k}"


def _ingested_shards(context: AssetExecutionContext, storage: CorpusStorage) -> list[str]:
    keys = context.instance.get_dynamic_partitions(web_crawl_shards.name)
    have = sorted(k for k in keys if storage.has("web_pages", k))
    missing = sorted(set(keys) - set(have))
    if missing:
        context.log.warning(f"{len(missing)} crawl shard(s) registered but not ingested yet: {missing[:5]}")
    if not have:
        raise Failure(
            "no crawl shard has been ingested: put shard files in WebRecallSettings.crawl_dir and let "
            "web_crawl_sensor add them (or materialize web_pages partitions) first"
        )
    return have


def _page_files(storage: CorpusStorage, shards: list[str]) -> list[str]:
    return [str(p) for s in shards for p in storage.shards("web_pages", s)]


def _decisions(page_ids: list, domains: list, urls: list, language: str, decisions: list,
               reasons: list, details: list, sizes: list) -> pa.Table:
    return pa.table({
        "file_id": page_ids, "repo": domains, "path": urls, "language": [language] * len(page_ids),
        "decision": decisions, "reason": reasons, "detail": details, "size_bytes": sizes,
    }, schema=DECISION_SCHEMA)


def _md_table(header: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return "_none_"
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _histogram_md(hist: list[tuple[float, float, int]]) -> str:
    total = sum(c for _, _, c in hist) or 1
    return _md_table(["score", "pages", "share"],
                     [[f"{lo:.1f}-{hi:.1f}", c, f"{c / total:.1%}"] for lo, hi, c in hist])


def _record_table(
    context: AssetExecutionContext, step: str, partition: str, writer: PartitionWriter,
    decisions: pa.Table, extra: dict[str, Any],
) -> dict[str, int]:
    path = writer.path / "decisions.parquet"
    pq.write_table(decisions, path)
    return record_step(writer, step=step, partition=partition, run_id=context.run.run_id,
                       decisions_path=path, extra=extra)


# ------------------------------------------------------------------------------------------------
# web_pages (per crawl shard)
# ------------------------------------------------------------------------------------------------


def _page_decisions(batch: pa.Table) -> tuple[pa.Table, pa.Table]:
    urls = batch["url"].to_pylist()
    hosts = batch["host"].to_pylist()
    sizes = batch["text_bytes"].to_pylist()
    texts = batch["text"].to_pylist()
    reasons: list[str | None] = []
    for url, host, text in zip(urls, hosts, texts, strict=True):
        if not url or not host:
            reasons.append("no_url")
        elif not text.strip():
            reasons.append("empty_text")
        else:
            reasons.append(None)
    keep = pa.array([r is None for r in reasons])
    decisions = _decisions(batch["page_id"].to_pylist(), batch["domain"].to_pylist(), urls, "web",
                           ["kept" if r is None else "dropped" for r in reasons], reasons,
                           [None] * len(urls), sizes)
    return batch.filter(keep), decisions


@asset(
    partitions_def=web_crawl_shards,
    group_name=GROUP,
    description="Pages of one crawl shard (FineWeb-style Parquet/JSONL url+text, WARC HTML responses "
    "or WET text) normalized to page_id/url/host/base domain/text. Drops pages without a URL host or "
    "text.",
)
def web_pages(
    context: AssetExecutionContext,
    web_recall: WebRecallSettings,
    storage: CorpusStorage,
    metrics: MetricsStore,
    settings: PipelineSettings,
) -> MaterializeResult:
    key = context.partition_key
    path = shard_path(web_recall.crawl_dir, key)
    source = web_recall.source_of(key)
    if source not in context.instance.get_dynamic_partitions(web_sources.name):
        context.instance.add_dynamic_partitions(web_sources.name, [source])
    batches = wr.iter_page_batches(
        path, shard=key, batch_rows=settings.batch_rows, url_column=web_recall.url_column,
        text_column=web_recall.text_column, granularity=web_recall.domain_granularity, source=source,
    )
    return run_streaming_step(
        context, step="web_pages", partition=key, batches=batches, fn=_page_decisions,
        storage=storage, metrics=metrics, out_schema=wr.PAGE_SCHEMA,
        extra_metadata=lambda t: {"shard_file": MetadataValue.path(str(path)),
                                  "format": MetadataValue.text(wr.page_format(path)),
                                  "source": MetadataValue.text(source)},
    )


# ------------------------------------------------------------------------------------------------
# one round
# ------------------------------------------------------------------------------------------------


def build_round_assets(k: int) -> list[AssetsDefinition]:
    """The five assets of round ``k``; round k>1 depends on round k-1's URL patterns and domains."""
    rk = _round_key(k)
    prev = _round_key(k - 1) if k > 1 else None
    prefix = [rk]
    seed_deps: list[Any] = [AssetKey("web_pages")]
    if prev:
        seed_deps.append(AssetKey([prev, "url_patterns"]))

    @asset(
        name="web_seed_corpus", key_prefix=prefix, group_name=GROUP, deps=seed_deps,
        description=f"Round {k} training pages: labelled seed file + pages of known code domains"
        + (f" + pages matched by {prev}'s URL patterns inside {prev}'s code domains" if prev else "")
        + " (positives) and crawl pages sampled outside them (negatives). `group` drives the held-out split.",
    )
    def web_seed_corpus(
        context: AssetExecutionContext, web_recall: WebRecallSettings, storage: CorpusStorage,
        metrics: MetricsStore, settings: PipelineSettings,
    ) -> MaterializeResult:
        shards = _ingested_shards(context, storage)
        files = _page_files(storage, shards)
        known = web_recall.known_domains()
        parts: list[pa.Table] = []
        if web_recall.seed_file:
            parts.append(wr.load_seed_file(web_recall.seed_file, granularity=web_recall.domain_granularity))
        con = duckdb.connect()
        try:
            con.execute(f"SET memory_limit = {sql_str(settings.duckdb_memory_limit)}")
            con.execute(f"CREATE VIEW pages AS SELECT page_id, url, domain, text FROM read_parquet({wr.sql_list(files)})")
            con.register("known_tbl", pa.table({"domain": pa.array(known, pa.string())}))
            known_pages = con.execute(
                "SELECT * FROM pages WHERE domain IN (SELECT domain FROM known_tbl) ORDER BY page_id"
            ).to_arrow_table()
            parts.append(wr.pages_to_seeds(known_pages, wr.CODE_LABEL, "known_code_domain"))
            if prev:
                matched_files = storage.shards("url_patterns", prev, stem="matched")
                if matched_files:
                    m = pq.read_table(matched_files).cast(MATCHED_SCHEMA)
                    parts.append(pa.table({
                        "page_id": m["page_id"], "url": m["url"], "domain": m["domain"], "text": m["text"],
                        "label": m["label"],
                        "source": pa.array([f"url_pattern:{p}" for p in m["pattern"].to_pylist()], pa.string()),
                        "group": m["domain"],
                    }).cast(wr.SEED_SCHEMA))
            n_pos = sum(int(pc.sum(pc.equal(t["label"], wr.CODE_LABEL)).as_py() or 0)
                        for t in parts)
            if n_pos == 0:
                raise Failure(f"{rk}: no positive seeds: set WebRecallSettings.seed_file and/or "
                              "known_code_domains (pages of those domains must be in the crawl)")
            want = min(web_recall.max_negatives, int(math.ceil(web_recall.negatives_ratio * n_pos)))
            seeded = pa.concat_tables([t.select(["page_id"]) for t in parts])
            con.register("seeded_tbl", seeded)
            pool = con.execute(
                """SELECT page_id, url, domain, text FROM pages
                   WHERE domain NOT IN (SELECT domain FROM known_tbl)
                     AND page_id NOT IN (SELECT page_id FROM seeded_tbl)
                   ORDER BY md5(page_id || ':' || $seed::VARCHAR) LIMIT $n""",
                {"seed": web_recall.seed, "n": want},
            ).to_arrow_table()
        finally:
            con.close()
        seeds = wr.assemble_seeds(parts, pool, negatives_ratio=web_recall.negatives_ratio,
                                  max_negatives=web_recall.max_negatives, seed=web_recall.seed)
        writer = storage.writer("web_seed_corpus", rk)
        try:
            pq.write_table(seeds, writer.shard_path(0))
            by_source = Counter(zip(seeds["label"].to_pylist(),
                                    [s.split(":", 1)[0] for s in seeds["source"].to_pylist()], strict=True))
            labels = seeds["label"].to_pylist()
            decisions = _decisions(seeds["page_id"].to_pylist(), seeds["domain"].to_pylist(),
                                   seeds["url"].to_pylist(), "web", ["kept"] * seeds.num_rows, labels,
                                   seeds["source"].to_pylist(),
                                   [len(t.encode()) for t in seeds["text"].to_pylist()])
            _record_table(context, "web_seed_corpus", rk, writer, decisions,
                          {"by_source": {f"{a}/{b}": n for (a, b), n in by_source.items()}})
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        return MaterializeResult(metadata={
            "round": k,
            "positives": labels.count(wr.CODE_LABEL),
            "negatives": labels.count(wr.OTHER_LABEL),
            "groups": len(set(seeds["group"].to_pylist())),
            "by_source": MetadataValue.md(_md_table(["label", "source", "pages"],
                                                    [[a, b, n] for (a, b), n in sorted(by_source.items())])),
            "known_code_domains": MetadataValue.json(known),
            "data_path": MetadataValue.path(str(writer.path)),
        })

    @asset(
        name="code_web_classifier", key_prefix=prefix, group_name=GROUP, deps=[web_seed_corpus],
        description=f"Round {k} fastText model on BPE-segmented text (BPE trained locally on the seeds). "
        "Precision/recall/F1 on held-out seed *groups* (sites/doc sets, never random rows) vs a keyword "
        "baseline; the saved model is then refit on all seeds.",
    )
    def code_web_classifier(
        context: AssetExecutionContext, web_recall: WebRecallSettings, storage: CorpusStorage,
        metrics: MetricsStore,
    ) -> MaterializeResult:
        seeds = pq.read_table(storage.shards("web_seed_corpus", rk)).cast(wr.SEED_SCHEMA)
        bpe, ft = web_recall.bpe_params(), web_recall.ft_params()
        clf, report = wr.train_and_evaluate(
            seeds, bpe=bpe, ft=ft, threshold=web_recall.threshold,
            holdout_fraction=web_recall.holdout_fraction, seed=web_recall.seed,
        )
        writer = storage.writer("code_web_classifier", rk)
        try:
            clf.save(writer.path)
            summary = {"round": k, "threshold": web_recall.threshold, **report.as_dict(),
                       "params": dict(wr.describe_params(bpe, ft)), "seeds": seeds.num_rows}
            (writer.path / "metrics.json").write_text(json.dumps(summary, indent=2, default=str))
            model_sha = hashlib.sha256((writer.path / "model.bin").read_bytes()).hexdigest()[:16]
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        cm, bm = report.classifier_metrics, report.baseline_metrics
        rows = [[name, m["precision"], m["recall"], m["f1"], m["n"]] for name, m in
                (("fastText", cm), ("keyword baseline", bm)) if m]
        if cm is None:
            context.log.warning(f"{rk}: no held-out evaluation (each label needs >= 2 seed groups)")
        meta: dict[str, Any] = {
            "round": k,
            "threshold": MetadataValue.float(web_recall.threshold),
            "heldout_precision": MetadataValue.float(cm["precision"] if cm else float("nan")),
            "heldout_recall": MetadataValue.float(cm["recall"] if cm else float("nan")),
            "heldout_f1": MetadataValue.float(cm["f1"] if cm else float("nan")),
            "baseline_f1": MetadataValue.float(bm["f1"] if bm else float("nan")),
            "heldout_vs_baseline": MetadataValue.md(_md_table(["model", "P", "R", "F1", "n"], rows)),
            "heldout_groups": MetadataValue.json(report.eval_groups),
            "train_rows": report.n_train,
            "eval_rows": report.n_eval,
            "hyperparameters": MetadataValue.json(dict(wr.describe_params(bpe, ft))),
            "heldout_score_histogram": MetadataValue.md(_histogram_md(wr.score_histogram(report.eval_scores))),
            "model_sha256": model_sha,
            "model_path": MetadataValue.path(str(writer.path / "model.bin")),
        }
        return MaterializeResult(metadata=meta)

    @asset(
        name="recalled_web_pages", key_prefix=prefix, group_name=GROUP,
        deps=[code_web_classifier, AssetKey("web_pages")],
        description=f"Round {k}: every crawl page scored with round {k}'s classifier; pages scoring above "
        "the threshold are kept (decision detail = score); all scores go to `web_page_scores`.",
    )
    def recalled_web_pages(
        context: AssetExecutionContext, web_recall: WebRecallSettings, storage: CorpusStorage,
        metrics: MetricsStore,
    ) -> MaterializeResult:
        clf = wr.CodeWebClassifier.load(storage.current_dir("code_web_classifier", rk))
        shards = _ingested_shards(context, storage)
        threshold = web_recall.threshold
        scores_all: list[np.ndarray] = []
        recalled_domains: Counter = Counter()
        stash: dict[int, pa.Table] = {}

        def fn(batch: pa.Table) -> tuple[pa.Table, pa.Table]:
            scores = clf.score(batch["text"].to_pylist())
            scores_all.append(scores)
            mask = scores > threshold
            doms = batch["domain"].to_pylist()
            recalled_domains.update(d for d, m in zip(doms, mask, strict=True) if m)
            stash[id(batch)] = pa.table({
                "page_id": batch["page_id"], "url": batch["url"], "host": batch["host"], "domain": batch["domain"],
                "shard": batch["shard"], "score": pa.array(scores, pa.float32()), "recalled": pa.array(mask),
                "text_bytes": batch["text_bytes"],
            }, schema=wr.SCORE_SCHEMA)
            kept = batch.append_column("score", pa.array(scores, pa.float32())).filter(pa.array(mask))
            decisions = _decisions(
                batch["page_id"].to_pylist(), doms, batch["url"].to_pylist(), "web",
                ["kept" if m else "dropped" for m in mask], [None if m else "below_threshold" for m in mask],
                [f"{s:.4f}" for s in scores], batch["text_bytes"].to_pylist(),
            )
            return kept, decisions

        def side(batch: pa.Table) -> dict[str, pa.Table]:
            return {"web_page_scores": stash.pop(id(batch))}

        def batches():
            for s in shards:
                yield from read_batches(storage.shards("web_pages", s), web_recall.score_batch_rows, wr.PAGE_SCHEMA)

        def extra(tally) -> dict[str, Any]:
            allsc = np.concatenate(scores_all) if scores_all else np.zeros(0, np.float32)
            return {
                "round": MetadataValue.int(k),
                "threshold": MetadataValue.float(threshold),
                "recall_rate": MetadataValue.float(round(float((allsc > threshold).mean()), 4) if len(allsc) else 0.0),
                "score_histogram": MetadataValue.md(_histogram_md(wr.score_histogram(allsc))),
                "top_recalled_domains": MetadataValue.md(_md_table(
                    ["domain", "recalled pages"], [[d, n] for d, n in recalled_domains.most_common(20)])),
                "shards": MetadataValue.json(shards),
            }

        return run_streaming_step(
            context, step="recalled_web_pages", partition=rk, batches=batches(), fn=fn, storage=storage,
            metrics=metrics, out_schema=RECALLED_SCHEMA, extra_metadata=extra,
            side_outputs={"web_page_scores": wr.SCORE_SCHEMA}, side_fn=side,
        )

    domain_deps: list[Any] = [recalled_web_pages]
    if prev:
        domain_deps.append(AssetKey([prev, "code_domains"]))

    @asset(
        name="code_domains", key_prefix=prefix, group_name=GROUP, deps=domain_deps,
        description=f"Round {k} recalled web domain set: base domains where more than "
        "`domain_min_ratio` (10 %) of crawl pages score above the threshold, with pages, code pages and "
        "ratio; growth versus earlier rounds in the metadata.",
    )
    def code_domains(
        context: AssetExecutionContext, web_recall: WebRecallSettings, storage: CorpusStorage,
        metrics: MetricsStore, settings: PipelineSettings,
    ) -> MaterializeResult:
        score_file = storage.current_dir("recalled_web_pages", rk) / "web_page_scores.parquet"
        files = [score_file] if score_file.exists() else []
        table = wr.aggregate_domains(files, threshold=web_recall.threshold, min_ratio=web_recall.domain_min_ratio,
                                     min_pages=web_recall.domain_min_pages, memory_limit=settings.duckdb_memory_limit)
        doms = table["domain"].to_pylist()
        flags = table["is_code_domain"].to_pylist()
        code_set = sorted(d for d, f in zip(doms, flags, strict=True) if f)
        history: list[dict[str, Any]] = []
        for j in range(1, k):
            try:
                history.append(json.loads((storage.current_dir("code_domains", _round_key(j))
                                           / "summary.json").read_text()))
            except FileNotFoundError:
                context.log.warning(f"{_round_key(j)}/code_domains not materialized; growth table incomplete")
        prev_set = set(history[-1]["code_domains"]) if history else set()
        clf_metrics = json.loads((storage.current_dir("code_web_classifier", rk) / "metrics.json").read_text())
        cm = clf_metrics.get("classifier_metrics") or {}
        summary = {
            "round": k, "code_domains": code_set, "new": sorted(set(code_set) - prev_set),
            "lost": sorted(prev_set - set(code_set)), "domains": len(doms),
            "pages": int(sum(table["pages"].to_pylist())), "recalled_pages": int(sum(table["code_pages"].to_pylist())),
            "threshold": web_recall.threshold, "heldout_f1": cm.get("f1"),
        }
        writer = storage.writer("code_domains", rk)
        try:
            pq.write_table(table, writer.shard_path(0))
            (writer.path / "summary.json").write_text(json.dumps(summary, indent=2))
            ratios = table["ratio"].to_pylist()
            decisions = _decisions(
                doms, doms, [None] * len(doms), "web_domain", ["kept" if f else "dropped" for f in flags],
                [None if f else f"ratio<={web_recall.domain_min_ratio:g}_or_pages<{web_recall.domain_min_pages}"
                 for f in flags],
                [f"{c}/{p}={r:.4f}" for c, p, r in zip(table["code_pages"].to_pylist(), table["pages"].to_pylist(),
                                                          ratios, strict=True)],
                table["pages"].to_pylist(),
            )
            _record_table(context, "code_domains", rk, writer, decisions,
                          {k2: v for k2, v in summary.items() if k2 != "code_domains"})
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        growth = [*history, summary]
        top = [[d, p, c, f"{r:.1%}", "yes" if f else "no"] for d, p, c, r, f in zip(
            doms, table["pages"].to_pylist(), table["code_pages"].to_pylist(), ratios, flags, strict=True)][:25]
        return MaterializeResult(metadata={
            "round": k,
            "code_domain_count": len(code_set),
            "new_domains": MetadataValue.json(summary["new"]),
            "lost_domains": MetadataValue.json(summary["lost"]),
            "top_domains": MetadataValue.md(_md_table(["domain", "pages", "code pages", "ratio", "code domain"], top)),
            "per_round_growth": MetadataValue.md(_md_table(
                ["round", "code domains", "new", "lost", "recalled pages", "pages", "threshold", "held-out F1"],
                [[g["round"], len(g["code_domains"]), len(g["new"]), len(g["lost"]), g["recalled_pages"],
                  g["pages"], g["threshold"], g["heldout_f1"]] for g in growth])),
            "rule": MetadataValue.text(f"code_pages/pages > {web_recall.domain_min_ratio:g} and pages >= "
                                       f"{web_recall.domain_min_pages} (score > {web_recall.threshold:g})"),
            "data_path": MetadataValue.path(str(writer.path)),
        })

    @asset(
        name="url_patterns", key_prefix=prefix, group_name=GROUP, deps=[code_domains, AssetKey("web_pages")],
        description=f"Round {k}: snapshot of the user-edited URL pattern file (`%` = any characters; `-` = "
        "not code) and the crawl pages each matches inside this round's code domains; they join the "
        "next round's seeds. Lists code domains that still have no pattern (to annotate).",
    )
    def url_patterns(
        context: AssetExecutionContext, web_recall: WebRecallSettings, storage: CorpusStorage,
        settings: PipelineSettings,
    ) -> MaterializeResult:
        patterns = wr.load_url_patterns(web_recall.url_patterns_file)
        if not patterns:
            context.log.warning(f"no URL patterns in {web_recall.url_patterns_file!r}: nothing joins the next "
                                "round's seeds; annotate the code domains listed in this asset's metadata")
        code_set = json.loads((storage.current_dir("code_domains", rk) / "summary.json").read_text())["code_domains"]
        files = _page_files(storage, _ingested_shards(context, storage))
        con = duckdb.connect()
        try:
            con.execute(f"SET memory_limit = {sql_str(settings.duckdb_memory_limit)}")
            matched = (wr.match_patterns_sql(
                f"SELECT page_id, url, domain, text FROM read_parquet({wr.sql_list(files)})",
                patterns, con, domains=code_set if web_recall.patterns_within_code_domains else None,
            ) if patterns else MATCHED_SCHEMA.empty_table()).cast(MATCHED_SCHEMA)
        finally:
            con.close()
        per_pattern = Counter(matched["pattern"].to_pylist())
        gran = web_recall.domain_granularity
        covered = {wr.base_domain(p.host_hint, gran) for p in patterns if p.host_hint}
        unannotated = [d for d in code_set if d not in covered]
        writer = storage.writer("url_patterns", rk)
        try:
            pq.write_table(matched, writer.shard_path(0, stem="matched"))
            pq.write_table(pa.table({
                "pattern": [p.pattern for p in patterns], "label": [p.label for p in patterns],
                "line": [p.line for p in patterns], "matched_pages": [per_pattern.get(p.pattern, 0) for p in patterns],
                "domain": [wr.base_domain(p.host_hint, gran) if p.host_hint else None for p in patterns],
            }, schema=pa.schema([("pattern", pa.string()), ("label", pa.string()), ("line", pa.int64()),
                                 ("matched_pages", pa.int64()), ("domain", pa.string())])),
                writer.shard_path(0, stem="patterns"))
            if web_recall.url_patterns_file and Path(web_recall.url_patterns_file).is_file():
                shutil.copyfile(web_recall.url_patterns_file, writer.path / "url_patterns.txt")
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        labels = matched["label"].to_pylist()
        return MaterializeResult(metadata={
            "round": k,
            "patterns_file": MetadataValue.path(str(web_recall.url_patterns_file)),
            "patterns": MetadataValue.md(_md_table(
                ["pattern", "label", "matched pages"],
                [[f"`{p.pattern}`", p.label, per_pattern.get(p.pattern, 0)] for p in patterns])),
            "next_round_positives": labels.count(wr.CODE_LABEL),
            "next_round_negatives": labels.count(wr.OTHER_LABEL),
            "code_domains_without_pattern": MetadataValue.json(unannotated),
            "data_path": MetadataValue.path(str(writer.path)),
        })

    return [web_seed_corpus, code_web_classifier, recalled_web_pages, code_domains, url_patterns]


def build_web_assets(rounds: int = WEB_RECALL_ROUNDS) -> list[AssetsDefinition]:
    """``web_pages`` + ``rounds`` x the five round assets."""
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    out: list[AssetsDefinition] = [web_pages]
    for k in range(1, rounds + 1):
        out += build_round_assets(k)
    return out


WEB_ASSETS = build_web_assets()

web_recall_job = define_asset_job(
    "web_recall_job",
    selection=AssetSelection.groups(GROUP) - AssetSelection.assets("web_pages"),
    description="All recall rounds over every ingested crawl shard (seeds -> fastText -> recall -> "
    "domains -> URL patterns, N times).",
)

WEB_JOBS = [web_pages_job, web_recall_job]
WEB_SENSORS = [web_crawl_sensor]
WEB_RESOURCES = {"web_recall": WebRecallSettings()}
