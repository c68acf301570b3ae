"""The code-web corpus (RefineCode §2.1.2, after recall): the step registry ``WEB_STEPS``.

The last recall round's pages of one source (Common Crawl, FineWeb, ...) go through

    web_extracted_pages  main text of each page (HTML re-read from the crawl shard, Resiliparse)
    web_exact_deduped    SHA-256 of the main text, the kernel's ``exact_dedup_global``
    web_fuzzy_deduped    5-gram MinHash + LSH, the kernel's ``fuzzy_dedup_global``
    code_web_corpus      the natural-language rules of the ``text`` doc type (``[en]``/``[zh]``
                         tables of filter_thresholds.toml on the text signals), real token counts

Why the kernel (core/kernel.py): these are the same plan/run/account/publish mechanics as the code
steps (one decision per input row, kept rows == kept decisions, engine-independent output); only
the step functions differ. Rows use ``CODE_SCHEMA`` (``file_id`` = the page occurrence, ``source``
= crawl source, ``repo`` = base domain, ``path`` = URL, ``language`` = ``web``, ``doc_type`` =
``text``), so the dedup stages, the metrics views and the lineage CLI work on pages unchanged.

Pure: no Dagster here (assets/code_web.py wires it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.dataset as pads

from opencoder_assets.core.filtering import FilterThresholds, apply_filters
from opencoder_assets.core.fuzzy_dedup import _CLUSTER_SCHEMA
from opencoder_assets.core.kernel import StepOutput, StepSpec, Unit, decisions_for
from opencoder_assets.core.langid import AUTO
from opencoder_assets.core.schema import CODE_SCHEMA, stable_file_id
from opencoder_assets.core.steps import SIGNAL_SCHEMA, _resolve_tokenizer, signals_for_batch
from opencoder_assets.core.tokens import count_tokens
from opencoder_assets.core.web_extract import extract_main_text
from opencoder_assets.core.web_recall import PageReadError, page_format, read_warc_documents

_M = "opencoder_assets.core.code_web"
WEB_LANGUAGE = "web"

#: Input rows of the extraction step: a recalled page with its raw document in ``content``
#: (HTML re-read from the WARC, or the text of WET/Parquet/JSONL pages) and ``raw_kind``.
WEB_RAW_SCHEMA = pa.schema([*CODE_SCHEMA, pa.field("raw_kind", pa.string()), pa.field("score", pa.float32())])


# ------------------------------------------------------------------------ web_extracted_pages
@dataclass(frozen=True)
class RecalledShard:
    """One extraction unit: the recalled pages of one crawl shard (payload of a kernel Unit)."""

    shard: str
    crawl_file: str
    source: str
    recalled_files: tuple[str, ...]


@dataclass(frozen=True)
class ExtractParams:
    """``min_chars``: a page whose main text has fewer non-space characters is dropped
    (``no_main_text``)."""

    min_chars: int = 1


def page_file_id(source: str, shard: str, page_id: str, occurrence: int) -> str:
    """One id per page *occurrence* (the same URL may be crawled twice, in one shard or two)."""
    return stable_file_id(f"web:{source}", shard, f"{page_id}#{occurrence}")


def recalled_source(unit: Unit, params: ExtractParams, batch_rows: int) -> Iterator[pa.Table]:
    """The recalled pages of one crawl shard with their raw documents (``WEB_RAW_SCHEMA``).

    WARC pages: the HTML is re-read at the record offset ``web_pages`` stored (a record gone
    from the file gives ``raw_kind='missing'``); WET/Parquet/JSONL pages carry their text."""
    item: RecalledShard = unit.payload
    ds = pads.dataset(list(item.recalled_files), format="parquet")
    cols = ["page_id", "url", "domain", "shard", "text", "source", "record_offset", "score"]
    rows = ds.to_table(columns=cols, filter=(pads.field("shard") == item.shard)).to_pydict()
    n = len(rows["page_id"])
    docs: dict[int, tuple[str | None, str, str]] = {}
    fmt = page_format(item.crawl_file)
    if fmt == "warc":
        offsets = [o for o in rows["record_offset"] if o is not None]
        docs = read_warc_documents(item.crawl_file, offsets)
    seen: dict[str, int] = {}
    out: dict[str, list] = {name: [] for name in WEB_RAW_SCHEMA.names}
    for i in range(n):
        pid, url = rows["page_id"][i], rows["url"][i]
        occ = seen.get(pid, 0)
        seen[pid] = occ + 1
        off = rows["record_offset"][i]
        if fmt == "warc" and off is not None:
            doc = docs.get(int(off))
            if doc is not None and doc[0] != url:
                raise PageReadError(f"{item.crawl_file}: record at offset {off} is {doc[0]}, web_pages recorded "
                                    f"{url}: the shard changed after ingestion; re-materialize web_pages[{item.shard}]")
            kind, raw = (doc[1], doc[2]) if doc is not None else ("missing", "")
        else:
            kind, raw = "text", rows["text"][i] or ""
        out["file_id"].append(page_file_id(item.source, item.shard, pid, occ))
        out["source"].append(rows["source"][i] or item.source)
        out["repo"].append(rows["domain"][i])
        out["path"].append(url)
        out["language"].append(WEB_LANGUAGE)
        out["doc_type"].append("text")
        out["ext"].append("html" if kind == "html" else "txt")
        out["size_bytes"].append(len(raw.encode("utf-8", "surrogatepass")))
        out["sha256"].append(None)
        out["stars"].append(None)
        out["commit_time"].append(None)
        out["content"].append(raw)
        out["raw_kind"].append(kind)
        out["score"].append(rows["score"][i])
        if len(out["file_id"]) >= batch_rows:
            yield pa.table(out, schema=WEB_RAW_SCHEMA)
            out = {name: [] for name in WEB_RAW_SCHEMA.names}
    if out["file_id"]:
        yield pa.table(out, schema=WEB_RAW_SCHEMA)


def extract_pages(batch: pa.Table, params: ExtractParams) -> StepOutput:
    """Main text per page (core/web_extract.py); the kept row's content is the main text, its
    sha256 the text's. Drops: ``html_missing`` (record gone), ``no_main_text``."""
    d = batch.select(["content", "raw_kind", "score"]).to_pydict()
    keep: list[bool] = []
    reasons: list[str | None] = []
    details: list[str | None] = []
    texts: list[str] = []
    for raw, kind, score in zip(d["content"], d["raw_kind"], d["score"], strict=True):
        if kind == "missing":
            keep.append(False)
            reasons.append("html_missing")
            details.append("WARC record not found at its offset")
            continue
        ex = extract_main_text(raw, kind)
        n_chars = sum(1 for c in ex.text if not c.isspace())
        ok = n_chars >= params.min_chars
        keep.append(ok)
        reasons.append(None if ok else "no_main_text")
        details.append(f"{ex.method} chars={len(raw)}->{len(ex.text)} score={score:.4f}")
        if ok:
            texts.append(ex.text)
    mask = pa.array(keep, pa.bool_())
    kept = batch.filter(mask).select(CODE_SCHEMA.names)
    content = pa.array(texts, pa.large_string())
    kept = kept.set_column(kept.schema.get_field_index("content"), "content", content)
    kept = kept.set_column(kept.schema.get_field_index("size_bytes"), "size_bytes",
                           pa.array([len(t.encode("utf-8", "surrogatepass")) for t in texts], pa.int64()))
    kept = kept.set_column(kept.schema.get_field_index("sha256"), "sha256",
                           pa.array([hashlib.sha256(t.encode("utf-8", "surrogatepass")).hexdigest() for t in texts],
                                    pa.string()))
    return StepOutput(kept, decisions_for(batch, keep, reasons, details),
                      counters={"extracted_chars": float(sum(len(t) for t in texts))})


# ------------------------------------------------------------------------------ code_web_corpus
@dataclass(frozen=True)
class NLFilterParams:
    """The natural-language rules on each page's main text.

    ``thresholds_path``: an edited copy of filter_thresholds.toml (its ``[en]``/``[zh]`` tables
    apply); ``lang``: ``auto`` identifies each page's language (``zh`` -> the zh table);
    ``tokenizer``: tokenizer.json for the token counts (empty: the run's tokenizer)."""

    thresholds_path: str | None = None
    random_mode: Literal["seeded", "strict", "lenient"] = "seeded"
    seed: int = 0
    lang: str = AUTO
    tokenizer: str = ""

    def __post_init__(self) -> None:
        _resolve_tokenizer(self)


@lru_cache(maxsize=8)
def _thresholds(path: str | None) -> FilterThresholds | None:
    return FilterThresholds.load(path) if path else None


def nl_filter(batch: pa.Table, params: NLFilterParams) -> StepOutput:
    """Text signals per page (side table ``web_quality_signals``), then the ``text`` doc type's
    rules: dropped as ``filter:<first rule>``, every fired rule in the detail; real token counts
    of input and kept pages (``input_tokens``/``kept_tokens``)."""
    signals = signals_for_batch(batch, params.lang)
    d = batch.select(["file_id", "language", "doc_type"]).to_pydict()
    sig_rows = signals["signals"].to_pylist()
    langs = signals["lang"].to_pylist()
    keep: list[bool] = []
    reasons: list[str | None] = []
    details: list[str] = []
    counters: dict[str, float] = {}
    for i in range(batch.num_rows):
        lang = langs[i] or "en"
        dec = apply_filters(dict(sig_rows[i]), program_lang=d["language"][i], doc_type=d["doc_type"][i], lang=lang,
                            file_id=d["file_id"][i], seed=params.seed, random_mode=params.random_mode,
                            thresholds=_thresholds(params.thresholds_path))
        keep.append(dec.keep)
        reasons.append(None if dec.keep else f"filter:{dec.hits[0]}")
        details.append(f"config={dec.config} lang={lang}" + ("" if dec.keep else " hits=" + ",".join(dec.hits)))
        for rule in dec.hits:
            counters[f"rules_fired.{rule}"] = counters.get(f"rules_fired.{rule}", 0) + 1
    tokens = count_tokens(batch["content"].to_pylist(), params.tokenizer)
    counters["input_tokens"] = float(sum(tokens))
    counters["kept_tokens"] = float(sum(t for t, k in zip(tokens, keep, strict=True) if k))
    kept = batch.filter(pa.array(keep, pa.bool_()))
    return StepOutput(kept, decisions_for(batch, keep, reasons, details), {"web_quality_signals": signals}, counters)


# ----------------------------------------------------------------------------------- registry
WEB_STEPS: list[StepSpec] = [
    StepSpec("web_extracted_pages", None, "Main text of the last recall round's pages of one source: HTML re-read "
             "from the crawl shard at the record offset web_pages stored and extracted with Resiliparse's "
             "main-content mode (code blocks kept; WET/FineWeb text only tidied). Drops pages whose record is "
             "gone (`html_missing`) or that have no main text (`no_main_text`).", CODE_SCHEMA,
             map_fn=f"{_M}:extract_pages", source_fn=f"{_M}:recalled_source", params=f"{_M}:ExtractParams",
             kinds=("parquet", "warc")),
    StepSpec("web_exact_deduped", "web_extracted_pages", "SHA-256 dedup of the pages' main text within the source "
             "(the code pipeline's exact_dedup_global; the smallest file_id survives); each removed page records "
             "`duplicate_of:<file_id>`.", CODE_SCHEMA, in_schema=CODE_SCHEMA,
             global_fn="opencoder_assets.core.steps:exact_dedup_global",
             params="opencoder_assets.core.steps:ExactDedupParams", kinds=("parquet", "duckdb")),
    StepSpec("web_fuzzy_deduped", "web_exact_deduped", "5-gram MinHash + LSH near-duplicate removal of pages "
             "(the code pipeline's fuzzy_dedup_global, paper defaults); clusters are the `dedup_clusters` table.",
             CODE_SCHEMA, in_schema=CODE_SCHEMA, global_fn="opencoder_assets.core.steps:fuzzy_dedup_global",
             params="opencoder_assets.core.fuzzy_dedup:FuzzyDedupParams",
             sides=(("dedup_clusters", _CLUSTER_SCHEMA),),
             kinds=("parquet", "duckdb")),
    StepSpec("code_web_corpus", "web_fuzzy_deduped", "The code-web corpus of one source: pages passing the "
             "natural-language rules (the `text` doc type's [en]/[zh] threshold tables on the text signals, "
             "per-page language ID); every fired rule recorded; real token counts.", CODE_SCHEMA,
             in_schema=CODE_SCHEMA, map_fn=f"{_M}:nl_filter", params=f"{_M}:NLFilterParams",
             sides=(("web_quality_signals", SIGNAL_SCHEMA),)),
]
STEP_BY_NAME: dict[str, StepSpec] = {s.name: s for s in WEB_STEPS}
WEB_STEP_NAMES: list[str] = [s.name for s in WEB_STEPS]
WEB_FINAL_STEP = WEB_STEP_NAMES[-1]


def plan_recalled_units(recalled_files: Sequence[Path], source: str, crawl_dir: str | Path) -> list[Unit]:
    """One unit per crawl shard that has recalled pages of ``source``; keys are positional over the
    sorted shard names, so every engine plans the same units."""
    files = [str(p) for p in recalled_files]
    if not files:
        return []
    ds = pads.dataset(files, format="parquet")
    shards = sorted(set(ds.to_table(columns=["shard"], filter=pads.field("source") == source)["shard"].to_pylist()))
    return [Unit(f"{i:05d}-00000", str(Path(crawl_dir) / s), (),
                 payload=RecalledShard(s, str(Path(crawl_dir) / s), source, tuple(files)))
            for i, s in enumerate(shards)]


def count_recalled(recalled_files: Sequence[Path], source: str) -> int:
    """Recalled pages of ``source``: what the extraction step must account for."""
    if not recalled_files:
        return 0
    ds = pads.dataset([str(p) for p in recalled_files], format="parquet")
    return ds.count_rows(filter=pads.field("source") == source)
