"""Code-related web recall (RefineCode §2.1.2): fastText on BPE-segmented pages + domain discovery.

Why this shape: the paper recalls code-related pages from Common Crawl with a fastText classifier
trained on BPE-segmented text (bounded vocabulary, works without spaces), groups recalled pages by
base domain, marks domains with > 10 % code pages, lets humans annotate URL patterns inside those
domains (``%`` = SQL-LIKE wildcard) whose pages become seeds for the next round, and repeats the
loop 3 times. Everything here is plain Python/Arrow/DuckDB (no Dagster) so it is testable alone:

- page readers for what Common Crawl users actually hold: FineWeb-style Parquet/JSONL
  (``url`` + ``text``), WARC (HTML responses, text extracted here) and WET (extracted text);
- base-domain extraction with the public-suffix list bundled in ``tldextract`` (never fetched);
- deterministic BPE (``tokenizers``, trained locally on the seeds) and fastText (``thread=1``,
  fixed seed) training, scoring and held-out-by-group evaluation with a keyword baseline;
- domain aggregation in DuckDB with an exact integer form of the ``ratio > 10 %`` rule;
- URL patterns loaded from an editable file and matched with SQL ``LIKE`` semantics;
- ``run_recall_loop``: the whole train -> recall -> discover -> patterns loop in memory.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from opencoder_assets.core import require_extra
from opencoder_assets.core.duckdb_sql import sql_path_list, sql_str

CODE_LABEL = "code"
OTHER_LABEL = "other"
_FT_PREFIX = "__label__"

#: One row per crawled page, the output of ``web_pages`` (and the input of every round).
PAGE_SCHEMA = pa.schema(
    [
        pa.field("page_id", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("host", pa.string()),
        pa.field("domain", pa.string()),
        pa.field("shard", pa.string()),
        pa.field("text", pa.large_string()),
        pa.field("text_bytes", pa.int64()),
        # where the page came from (Common Crawl, FineWeb, ...): WebRecallSettings.shard_sources
        pa.field("source", pa.string()),
        # byte offset of the WARC record in its shard (null for WET/Parquet/JSONL): the HTML is
        # re-read from there for main-text extraction (core/web_extract.py), as CC's index does
        pa.field("record_offset", pa.int64()),
    ]
)

#: Labelled training pages of one round; ``group`` is the unit of the held-out split.
SEED_SCHEMA = pa.schema(
    [
        pa.field("page_id", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("domain", pa.string()),
        pa.field("text", pa.large_string()),
        pa.field("label", pa.string()),
        pa.field("source", pa.string()),
        pa.field("group", pa.string()),
    ]
)

#: Every scored page of a round (recalled or not): the input of domain aggregation.
SCORE_SCHEMA = pa.schema(
    [
        pa.field("page_id", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("host", pa.string()),
        pa.field("domain", pa.string()),
        pa.field("shard", pa.string()),
        pa.field("score", pa.float32()),
        pa.field("recalled", pa.bool_()),
        pa.field("text_bytes", pa.int64()),
    ]
)

#: One row per base domain of the crawl.
DOMAIN_SCHEMA = pa.schema(
    [
        pa.field("domain", pa.string()),
        pa.field("pages", pa.int64()),
        pa.field("code_pages", pa.int64()),
        pa.field("ratio", pa.float64()),
        pa.field("is_code_domain", pa.bool_()),
    ]
)


class PageReadError(ValueError):
    """A page file that cannot be read; the message names the file and the row/record."""


# --------------------------------------------------------------------------------------------
# URLs and base domains
# --------------------------------------------------------------------------------------------

_EXTRACTOR: Any = None


def _extractor() -> Any:
    """tldextract with its bundled PSL snapshot only: no URL list, no cache dir => no network."""
    global _EXTRACTOR
    if _EXTRACTOR is None:
        tldextract = require_extra("tldextract", "web")

        _EXTRACTOR = tldextract.TLDExtract(
            suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True,
            include_psl_private_domains=False,
        )
    return _EXTRACTOR


def page_id_for(url: str) -> str:
    """80-bit id of a URL: the same page in two shards or in a seed file gets the same id."""
    return hashlib.blake2b(url.encode("utf-8", "surrogateescape"), digest_size=10).hexdigest()


def url_host(url: str | None) -> str:
    """Lower-case host of a URL ('' if none); scheme-less ``example.com/x`` is accepted."""
    if not url:
        return ""
    url = url.strip()
    if "://" not in url[:12]:
        url = "//" + url
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.rstrip(".").lower()


_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


@lru_cache(maxsize=1_000_000)
def base_domain(host: str, granularity: str = "registrable") -> str:
    """The domain pages are grouped by.

    ``registrable`` (default): eTLD+1 from the public-suffix list (``docs.python.org`` ->
    ``python.org``, ``a.example.co.uk`` -> ``example.co.uk``); IPs/``localhost`` keep the host.
    Hosts under no known suffix (``x.pgtips.example``) fall back to
    their last two labels. ``host``: the full host name, for crawls where sub-domains are separate sites
    (the paper's own patterns distinguish ``cloud.tencent.com`` and ``ask.csdn.net``).
    """
    if granularity == "host" or not host:
        return host
    if granularity != "registrable":
        raise ValueError(f"unknown domain granularity {granularity!r} (use 'registrable' or 'host')")
    ext = _extractor()(host)
    if hasattr(ext, "top_domain_under_public_suffix"):
        registrable = ext.top_domain_under_public_suffix
    else:  # tldextract < 5.3
        registrable = ext.registered_domain
    if registrable:
        return registrable
    if _IPV4.match(host) or ":" in host or "." not in host:
        return host  # IPs, IPv6, single-label hosts
    # not under a known public suffix (.example, .test, .internal, intranets): last two labels
    return ".".join(host.split(".")[-2:])


# --------------------------------------------------------------------------------------------
# HTML -> text and page readers
# --------------------------------------------------------------------------------------------

_SKIP_TAGS = {"script", "style", "noscript", "template", "svg", "head"}
_BLOCK_TAGS = {
    "p", "div", "br", "li", "ul", "ol", "pre", "tr", "table", "section", "article", "h1", "h2",
    "h3", "h4", "h5", "h6", "dt", "dd", "dl", "blockquote", "hr", "title", "header", "footer",
}
_WS = re.compile(r"[ \t\r\f\v]+")
_NL = re.compile(r"\n\s*\n+")


class _TextExtractor(HTMLParser):
    """Visible text with block boundaries as newlines; stdlib only (no lxml build needed)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.title: list[str] = []
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "title":
            self.in_title = True
        elif tag in _SKIP_TAGS:
            self.skip += 1
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag in _SKIP_TAGS and self.skip:
            self.skip -= 1
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Readable text of an HTML page (title first), whitespace collapsed, paragraphs kept."""
    parser = _TextExtractor()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # malformed markup: fall back to tag stripping
        return normalize_ws(html.unescape(re.sub(r"<[^>]+>", " ", markup)))
    title = normalize_ws("".join(parser.title))
    body = normalize_ws("".join(parser.parts))
    return f"{title}\n{body}" if title and not body.startswith(title) else body


def normalize_ws(text: str) -> str:
    lines = (_WS.sub(" ", line).strip() for line in text.split("\n"))
    return _NL.sub("\n\n", "\n".join(lines)).strip()


def page_format(path: str | Path) -> str:
    """``parquet`` | ``jsonl`` | ``warc`` | ``wet`` from the file name (CC naming: ``*.warc.wet.gz``)."""
    name = Path(path).name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if ".wet" in name:
        return "wet"
    if ".warc" in name or name.endswith((".arc", ".arc.gz")):
        return "warc"
    if name.endswith((".jsonl", ".json", ".ndjson", ".jsonl.gz", ".json.gz", ".ndjson.gz")):
        return "jsonl"
    raise PageReadError(
        f"{path}: unsupported page file (expected .parquet, .jsonl[.gz], .warc[.gz] or .warc.wet[.gz])"
    )


SHARD_SUFFIXES = (".parquet", ".jsonl", ".json", ".ndjson", ".jsonl.gz", ".json.gz", ".ndjson.gz",
                  ".warc", ".warc.gz", ".wet", ".wet.gz")


def is_shard_file(path: str | Path) -> bool:
    name = Path(path).name.lower()
    return not name.startswith(".") and name.endswith(SHARD_SUFFIXES)


def _iter_parquet(path: Path, url_column: str, text_column: str) -> Iterator[tuple[str | None, str | None]]:
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        raise PageReadError(f"{path}: not a readable Parquet file: {exc}") from exc
    names = pf.schema_arrow.names
    missing = [c for c in (url_column, text_column) if c not in names]
    if missing:
        raise PageReadError(f"{path}: missing column(s) {missing}; columns are {names}")
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=2048, columns=[url_column, text_column]):
            urls = batch.column(0).to_pylist()
            texts = batch.column(1).to_pylist()
            for u, t in zip(urls, texts, strict=True):
                row += 1
                if t is not None and not isinstance(t, str):
                    raise PageReadError(f"{path}: row {row}: column {text_column!r} is not text")
                yield u, t
    except PageReadError:
        raise
    except Exception as exc:
        raise PageReadError(f"{path}: row ~{row}: {exc}") from exc


def _iter_jsonl(path: Path, url_column: str, text_column: str) -> Iterator[tuple[str | None, str | None]]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="strict") as fh:
        line_no = 0
        while True:
            try:
                line = fh.readline()
            except (UnicodeDecodeError, OSError, EOFError) as exc:
                raise PageReadError(f"{path}: line {line_no + 1}: {exc}") from exc
            if not line:
                break
            line_no += 1
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PageReadError(f"{path}: line {line_no}: invalid JSON ({exc.msg})") from exc
            if not isinstance(obj, dict):
                raise PageReadError(f"{path}: line {line_no}: expected a JSON object")
            if text_column not in obj:
                raise PageReadError(f"{path}: line {line_no}: no {text_column!r} field (keys: {sorted(obj)})")
            text = obj.get(text_column)
            if text is not None and not isinstance(text, str):
                raise PageReadError(f"{path}: line {line_no}: field {text_column!r} is not a string")
            yield obj.get(url_column), text


_HTML_TYPES = ("text/html", "application/xhtml+xml")


def _decode_response(rec: Any, payload: bytes) -> tuple[str | None, str]:
    """(``html`` | ``text`` | None, decoded payload) of a WARC response/resource record."""
    ctype = (rec.http_content_type or rec.headers.get("Content-Type") or "").lower()
    charset = rec.http_charset or "utf-8"
    try:
        decoded = payload.decode(charset, errors="replace")
    except LookupError:
        decoded = payload.decode("utf-8", errors="replace")
    if any(t in ctype for t in _HTML_TYPES) or (not ctype and "<html" in decoded[:2000].lower()):
        return "html", decoded
    if ctype.startswith("text/plain"):
        return "text", decoded
    return None, decoded  # other media types (images, PDFs, JSON APIs) are not web pages


def _iter_warc(path: Path, wet: bool) -> Iterator[tuple[str | None, str | None, int | None]]:
    """WARC ``response`` records (HTML/plain text) or WET ``conversion`` records, via FastWARC,
    with the record's byte offset in the file (WARC only)."""
    warc = require_extra("fastwarc.warc", "web")
    ArchiveIterator, WarcRecordType = warc.ArchiveIterator, warc.WarcRecordType

    types = WarcRecordType.conversion if wet else (WarcRecordType.response | WarcRecordType.resource)
    n = 0
    with open(path, "rb") as fh:
        try:
            for rec in ArchiveIterator(fh, record_types=types, parse_http=not wet):
                n += 1
                url = rec.headers.get("WARC-Target-URI")
                payload = rec.reader.read()
                if len(payload) < rec.content_length:  # FastWARC stops quietly at a cut-off file
                    raise PageReadError(f"{path}: WARC record #{n} ({url}): truncated, {len(payload)} of "
                                        f"{rec.content_length} bytes")
                if wet:
                    yield url, payload.decode("utf-8", errors="replace"), None
                    continue
                if rec.record_type == WarcRecordType.response and not rec.is_http:
                    continue
                kind, decoded = _decode_response(rec, payload)
                if kind == "html":
                    yield url, html_to_text(decoded), int(rec.stream_pos)
                elif kind == "text":
                    yield url, decoded, int(rec.stream_pos)
        except PageReadError:
            raise
        except Exception as exc:
            raise PageReadError(f"{path}: WARC record #{n + 1}: {exc}") from exc


def read_warc_documents(path: str | Path, offsets: Iterable[int]) -> dict[int, tuple[str | None, str, str]]:
    """{offset: (url, ``html``|``text``, decoded payload)} of the WARC records at ``offsets``.

    Why offsets: web_pages keeps only the classifier's text; the main-text extraction of the
    (few) recalled pages re-reads their HTML from the crawl file, like Common Crawl's index
    (filename, offset). Seeks to each record (gzip-per-record or uncompressed WARC); a file that
    cannot be seeked into (one gzip stream) is scanned once instead. Missing offsets are absent.
    """
    warc = require_extra("fastwarc.warc", "web")
    ArchiveIterator, WarcRecordType = warc.ArchiveIterator, warc.WarcRecordType

    p = Path(path)
    wanted = sorted(set(int(o) for o in offsets))
    out: dict[int, tuple[str | None, str, str]] = {}
    types = WarcRecordType.response | WarcRecordType.resource
    if not wanted:
        return out
    if not p.is_file():
        raise PageReadError(f"{p}: crawl shard no longer exists (needed to re-read recalled pages' HTML)")

    def take(rec: Any) -> None:
        payload = rec.reader.read()
        kind, decoded = _decode_response(rec, payload)
        if kind is not None:
            out[int(rec.stream_pos)] = (rec.headers.get("WARC-Target-URI"), kind, decoded)

    with open(p, "rb") as fh:
        try:
            for off in wanted:
                fh.seek(off)
                rec = next(iter(ArchiveIterator(fh, record_types=types, parse_http=True)), None)
                if rec is None:
                    raise ValueError(f"no record at offset {off}")
                payload = rec.reader.read()
                kind, decoded = _decode_response(rec, payload)
                if kind is not None:
                    out[off] = (rec.headers.get("WARC-Target-URI"), kind, decoded)
            return out
        except Exception:  # noqa: BLE001 - not seekable (single gzip stream): one sequential scan
            out.clear()
    want = set(wanted)
    with open(p, "rb") as fh:
        try:
            for rec in ArchiveIterator(fh, record_types=types, parse_http=True):
                if int(rec.stream_pos) in want:
                    take(rec)
        except Exception as exc:
            raise PageReadError(f"{p}: re-reading recalled WARC records: {exc}") from exc
    return out


def iter_page_records(
    path: str | Path, *, url_column: str = "url", text_column: str = "text"
) -> Iterator[tuple[str | None, str | None, int | None]]:
    """(url, text, WARC record offset or None) of every page of one shard, whatever its format."""
    p = Path(path)
    if not p.is_file():
        raise PageReadError(f"{p}: no such page file")
    fmt = page_format(p)
    if fmt == "parquet":
        return ((u, t, None) for u, t in _iter_parquet(p, url_column, text_column))
    if fmt == "jsonl":
        return ((u, t, None) for u, t in _iter_jsonl(p, url_column, text_column))
    return _iter_warc(p, wet=(fmt == "wet"))


def iter_page_rows(
    path: str | Path, *, url_column: str = "url", text_column: str = "text"
) -> Iterator[tuple[str | None, str | None]]:
    """(url, text) of every page of one shard, whatever its format."""
    return ((u, t) for u, t, _off in iter_page_records(path, url_column=url_column, text_column=text_column))


def shard_source(shard: str, patterns: Mapping[str, str] | None = None, default: str = "crawl") -> str:
    """The source (Common Crawl, FineWeb, SkyPile, ...) of a crawl shard, from its partition key
    (path relative to the crawl folder): the first ``fnmatch`` pattern of ``patterns`` that
    matches wins; else the shard's top folder (``<crawl_dir>/<source>/...``); else ``default``."""
    import fnmatch

    for pattern, source in (patterns or {}).items():
        if fnmatch.fnmatchcase(shard, pattern):
            return source
    if "/" in shard:
        return shard.split("/", 1)[0]
    return default


def iter_page_batches(
    path: str | Path,
    *,
    shard: str,
    batch_rows: int = 2000,
    url_column: str = "url",
    text_column: str = "text",
    granularity: str = "registrable",
    source: str = "",
) -> Iterator[pa.Table]:
    """Pages of a shard as ``PAGE_SCHEMA`` tables; rows without url/text are kept (text '')."""
    cols: dict[str, list] = {n: [] for n in PAGE_SCHEMA.names}

    def flush() -> pa.Table:
        table = pa.table(cols, schema=PAGE_SCHEMA)
        for v in cols.values():
            v.clear()
        return table

    for url, text, offset in iter_page_records(path, url_column=url_column, text_column=text_column):
        url = (url or "").strip()
        text = text or ""
        host = url_host(url)
        cols["page_id"].append(page_id_for(url) if url else page_id_for(f"{shard}#{len(cols['url'])}:{text[:64]}"))
        cols["url"].append(url)
        cols["host"].append(host)
        cols["domain"].append(base_domain(host, granularity))
        cols["shard"].append(shard)
        cols["text"].append(text)
        cols["text_bytes"].append(len(text.encode("utf-8", "surrogatepass")))
        cols["source"].append(source or None)
        cols["record_offset"].append(offset)
        if len(cols["url"]) >= batch_rows:
            yield flush()
    if cols["url"]:
        yield flush()


# --------------------------------------------------------------------------------------------
# Seeds, labels, negatives
# --------------------------------------------------------------------------------------------

_POS = {"code", "1", "true", "yes", "pos", "positive", "code-related", "code_related", "__label__code"}
_NEG = {"other", "0", "false", "no", "neg", "negative", "not_code", "non-code", "noncode", "__label__other"}


def normalize_label(value: Any, where: str) -> str:
    s = str(value).strip().lower()
    if s in _POS:
        return CODE_LABEL
    if s in _NEG:
        return OTHER_LABEL
    raise PageReadError(f"{where}: label {value!r} is neither code ({sorted(_POS)}) nor other ({sorted(_NEG)})")


def load_seed_file(path: str | Path, *, granularity: str = "registrable") -> pa.Table:
    """A labelled seed file (JSONL/Parquet: ``text``, ``label``, optional ``url``, ``group``).

    ``group`` is the unit of the held-out split (e.g. the site or document set a page came from);
    when absent it falls back to the page's base domain, then to the file name.
    """
    p = Path(path)
    if not p.is_file():
        raise PageReadError(f"{p}: seed file not found")
    if page_format(p) == "parquet":
        rows = pq.read_table(p).to_pylist()
    elif page_format(p) == "jsonl":
        opener = gzip.open if p.name.lower().endswith(".gz") else open
        rows = []
        with opener(p, "rt", encoding="utf-8") as fh:
            for i, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise PageReadError(f"{p}: line {i}: invalid JSON ({exc.msg})") from exc
    else:
        raise PageReadError(f"{p}: seed files must be JSONL or Parquet")
    out: dict[str, list] = {n: [] for n in SEED_SCHEMA.names}
    for i, row in enumerate(rows, 1):
        where = f"{p}: row {i}"
        if not isinstance(row.get("text"), str) or not row["text"].strip():
            raise PageReadError(f"{where}: missing or empty 'text'")
        if "label" not in row:
            raise PageReadError(f"{where}: missing 'label'")
        url = row.get("url") or ""
        domain = base_domain(url_host(url), granularity) if url else ""
        out["page_id"].append(page_id_for(url) if url else page_id_for(f"{p.name}#{i}:{row['text'][:200]}"))
        out["url"].append(url)
        out["domain"].append(domain)
        out["text"].append(row["text"])
        out["label"].append(normalize_label(row["label"], where))
        out["source"].append(f"seed_file:{p.name}")
        out["group"].append(str(row.get("group") or row.get("source") or domain or p.name))
    return pa.table(out, schema=SEED_SCHEMA)


def load_domain_list(path: str | Path | None, extra: Iterable[str] = (), granularity: str = "registrable") -> list[str]:
    """Known code domains from a file (one per line, ``#`` comments) plus inline ones, normalized."""
    items = list(extra)
    if path:
        p = Path(path)
        if not p.is_file():
            raise PageReadError(f"{p}: known-code-domains file not found")
        items += [ln.split("#", 1)[0].strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    out = {base_domain(url_host(d), granularity) for d in items if d and d.strip()}
    return sorted(d for d in out if d)


def _hash01(key: str, seed: int) -> float:
    h = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


# --------------------------------------------------------------------------------------------
# BPE + fastText
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FastTextParams:
    """fastText supervised hyperparameters (defaults tuned for a few thousand to millions of pages).

    ``thread=1`` and a fixed ``seed`` make training bit-for-bit reproducible; ``bucket`` is smaller
    than fastText's 2M default so a round's model stays ~tens of MB.
    """

    lr: float = 0.2
    epoch: int = 20
    dim: int = 64
    word_ngrams: int = 2
    min_count: int = 2
    bucket: int = 200_000
    loss: str = "softmax"
    seed: int = 42
    thread: int = 1


@dataclass(frozen=True)
class BpeParams:
    """Local BPE: byte-level (no unknown tokens, handles CJK), lower-cased, NFKC."""

    vocab_size: int = 16_000
    min_frequency: int = 2
    max_chars: int = 8_000


_BLANK_RUNS = re.compile(r"\n[ \t\r\f\v]*(?:\n[ \t\r\f\v]*)+")
_SPACE_RUNS = re.compile(r"[ \t\r\f\v]{2,}")


def prepare_text(text: str, max_chars: int) -> str:
    """What the classifier sees: blank-line runs and space runs collapsed, then truncated.

    Why: how many empty lines a page has says more about the HTML-to-text extractor of its site
    than about its topic; left in, the model learns extractor artifacts per site.
    """
    return _SPACE_RUNS.sub(" ", _BLANK_RUNS.sub("\n", text[: max_chars * 2]))[:max_chars]


def _bpe_corpus(text: str, max_chars: int) -> str:
    return prepare_text(text, max_chars)


def train_bpe(texts: Sequence[str], params: BpeParams = BpeParams()) -> Any:
    """Train a byte-level BPE on the seed texts; ordering is fixed so the vocab is deterministic."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=params.vocab_size,
        min_frequency=params.min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        special_tokens=[],
    )
    tok.train_from_iterator((_bpe_corpus(t, params.max_chars) for t in texts), trainer=trainer, length=len(texts))
    return tok


def segment(tokenizer: Any, texts: Sequence[str], max_chars: int) -> list[str]:
    """BPE tokens joined by spaces: one fastText line per page (ByteLevel maps '\\n' to 'Ċ')."""
    if not texts:
        return []
    prepared = [prepare_text(t, max_chars) for t in texts]
    encs = tokenizer.encode_batch(prepared, add_special_tokens=False)
    return [" ".join(e.tokens) for e in encs]


def train_fasttext(segmented: Sequence[str], labels: Sequence[str], params: FastTextParams) -> Any:
    """Supervised fastText on pre-segmented lines; rows are shuffled with the seed first."""
    import fasttext

    if not segmented:
        raise ValueError("no training pages")
    if len(set(labels)) < 2:
        raise ValueError(f"need both labels to train, got only {sorted(set(labels))}")
    order = sorted(range(len(segmented)), key=lambda i: _hash01(str(i), params.seed))
    with tempfile.TemporaryDirectory(prefix="ft-train-") as tmp:
        train_path = Path(tmp) / "train.txt"
        with open(train_path, "w", encoding="utf-8") as fh:
            for i in order:
                fh.write(f"{_FT_PREFIX}{labels[i]} {segmented[i]}\n")
        lr = params.lr
        for _attempt in range(4):
            try:
                return fasttext.train_supervised(
                    input=str(train_path), lr=lr, epoch=params.epoch, dim=params.dim,
                    wordNgrams=params.word_ngrams, minCount=params.min_count, bucket=params.bucket,
                    loss=params.loss, seed=params.seed, thread=params.thread, verbose=0,
                )
            except RuntimeError as exc:  # fastText diverges ("Encountered NaN") when lr is too high
                if "NaN" not in str(exc):
                    raise
                lr /= 2
        raise RuntimeError(f"fastText training diverged even at lr={lr * 2:g}; lower lr or epoch")


def code_probabilities(model: Any, segmented: Sequence[str]) -> np.ndarray:
    """P(code) for each segmented page (fastText softmax over the two labels)."""
    if not segmented:
        return np.zeros(0, dtype=np.float32)
    labels, probs = model.predict(list(segmented), k=2)
    out = np.empty(len(segmented), dtype=np.float32)
    code = _FT_PREFIX + CODE_LABEL
    for i, (labs, ps) in enumerate(zip(labels, probs, strict=True)):
        p = 0.0
        for lab, pr in zip(labs, ps, strict=True):
            if lab == code:
                p = float(pr)
        out[i] = min(1.0, max(0.0, p))
    return out


@dataclass
class CodeWebClassifier:
    """A BPE tokenizer + fastText model pair; saved as ``tokenizer.json`` + ``model.bin``."""

    tokenizer: Any
    model: Any
    max_chars: int = BpeParams.max_chars

    def score(self, texts: Sequence[str]) -> np.ndarray:
        return code_probabilities(self.model, segment(self.tokenizer, texts, self.max_chars))

    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(d / "tokenizer.json"))
        self.model.save_model(str(d / "model.bin"))
        (d / "classifier.json").write_text(json.dumps({"max_chars": self.max_chars}))

    @classmethod
    def load(cls, directory: str | Path) -> CodeWebClassifier:
        import fasttext
        from tokenizers import Tokenizer

        d = Path(directory)
        for name in ("tokenizer.json", "model.bin"):
            if not (d / name).is_file():
                raise FileNotFoundError(f"{d / name}: classifier file missing; materialize the classifier first")
        meta = json.loads((d / "classifier.json").read_text()) if (d / "classifier.json").exists() else {}
        return cls(
            tokenizer=Tokenizer.from_file(str(d / "tokenizer.json")),
            model=fasttext.load_model(str(d / "model.bin")),
            max_chars=int(meta.get("max_chars", BpeParams.max_chars)),
        )


def fit_classifier(texts: Sequence[str], labels: Sequence[str], bpe: BpeParams, ft: FastTextParams) -> CodeWebClassifier:
    tokenizer = train_bpe(texts, bpe)
    model = train_fasttext(segment(tokenizer, texts, bpe.max_chars), labels, ft)
    return CodeWebClassifier(tokenizer, model, bpe.max_chars)


# --------------------------------------------------------------------------------------------
# Evaluation: held-out groups, metrics, keyword baseline
# --------------------------------------------------------------------------------------------


def split_by_group(
    groups: Sequence[str], labels: Sequence[str], holdout_fraction: float = 0.2, seed: int = 42
) -> np.ndarray:
    """Boolean ``is_eval`` mask holding out whole groups (sites/doc sets), never random rows.

    Per label, groups are taken in a seeded hash order until ``holdout_fraction`` of that label's
    rows is held out; at least one group per label always stays in training, so a label with a
    single group is not evaluated (its rows all train).
    """
    groups_arr = np.asarray(groups, dtype=object)
    labels_arr = np.asarray(labels, dtype=object)
    is_eval = np.zeros(len(groups_arr), dtype=bool)
    for label in sorted(set(labels_arr.tolist())):
        mask = labels_arr == label
        sizes: dict[str, int] = {}
        for g in groups_arr[mask]:
            sizes[g] = sizes.get(g, 0) + 1
        if len(sizes) < 2:
            continue
        order = sorted(sizes, key=lambda g: _hash01(f"{label}\x00{g}", seed))
        target = holdout_fraction * int(mask.sum())
        taken, held = 0, []
        for g in order[:-1]:
            if taken >= target:
                break
            held.append(g)
            taken += sizes[g]
        is_eval |= mask & np.isin(groups_arr, held)
    return is_eval


def binary_metrics(y_true: Sequence[bool], y_pred: Sequence[bool]) -> dict[str, float]:
    t = np.asarray(y_true, dtype=bool)
    p = np.asarray(y_pred, dtype=bool)
    tp = int((t & p).sum())
    fp = int((~t & p).sum())
    fn = int((t & ~p).sum())
    tn = int((~t & ~p).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    acc = (tp + tn) / len(t) if len(t) else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "accuracy": round(acc, 4), "tp": tp, "fp": fp, "fn": fn, "tn": tn, "n": int(len(t))}


#: Strong code cues for the trivial baseline (what a grep-based recall would use).
CODE_KEYWORDS = (
    "def ", "class ", "import ", "return ", "function", "#include", "select ", "var ", "const ",
    "printf", "public static", "=>", "();", "{", "}", "==", "!=", "&&", "||", "self.", "null",
)


def keyword_baseline_scores(texts: Sequence[str], keywords: Sequence[str] = CODE_KEYWORDS) -> np.ndarray:
    """Number of distinct code keywords a page contains (case-insensitive)."""
    return np.array([sum(1 for k in keywords if k in t.lower()) for t in texts], dtype=np.float32)


def keyword_baseline_predict(texts: Sequence[str], min_hits: int = 3) -> np.ndarray:
    """Trivial baseline: a page is code-related if it contains at least ``min_hits`` keywords."""
    return keyword_baseline_scores(texts) >= min_hits


def score_histogram(scores: np.ndarray | Sequence[float], bins: int = 10) -> list[tuple[float, float, int]]:
    """(low, high, count) per equal-width score bin over [0, 1]."""
    counts, edges = np.histogram(np.asarray(scores, dtype=np.float64), bins=bins, range=(0.0, 1.0))
    return [(round(float(edges[i]), 2), round(float(edges[i + 1]), 2), int(c)) for i, c in enumerate(counts)]


# --------------------------------------------------------------------------------------------
# Domain aggregation
# --------------------------------------------------------------------------------------------

_RATIO_SCALE = 1_000_000_000


def _ratio_units(min_ratio: float) -> int:
    if not 0.0 <= min_ratio < 1.0:
        raise ValueError(f"min_ratio must be in [0, 1), got {min_ratio}")
    return int(round(min_ratio * _RATIO_SCALE))


def sql_list(items: Sequence[str | Path]) -> str:
    """A DuckDB list literal of quoted strings (views cannot take prepared parameters)."""
    return sql_path_list(items)


def _domain_sql(source_sql: str) -> str:
    # code_pages / pages > min_ratio, evaluated exactly in integers (10 of 100 is *not* > 10 %)
    return f"""
        SELECT domain, count(*)::BIGINT AS pages,
               count(*) FILTER (WHERE score > $threshold)::BIGINT AS code_pages,
               (count(*) FILTER (WHERE score > $threshold))::DOUBLE / count(*) AS ratio,
               (count(*) FILTER (WHERE score > $threshold))::HUGEINT * {_RATIO_SCALE} > $units::HUGEINT * count(*)
                   AND count(*) >= $min_pages AS is_code_domain
        FROM {source_sql}
        WHERE domain IS NOT NULL AND domain <> ''
        GROUP BY domain
        ORDER BY is_code_domain DESC, code_pages DESC, pages DESC, domain
    """


def aggregate_domains(
    scores: pa.Table | Sequence[str | Path],
    *,
    threshold: float = 0.5,
    min_ratio: float = 0.10,
    min_pages: int = 1,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> pa.Table:
    """Per base domain: pages, code pages (score > threshold), ratio, and the > ``min_ratio`` flag.

    ``scores`` is an Arrow table or Parquet files with ``domain`` and ``score`` columns; DuckDB does
    the group-by out of core, so a crawl's worth of score files never has to fit in memory.
    """
    con = duckdb.connect()
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            con.execute(f"SET memory_limit = {sql_str(memory_limit)}")
        params = {"threshold": float(threshold), "units": _ratio_units(min_ratio), "min_pages": int(min_pages)}
        if isinstance(scores, pa.Table):
            con.register("scores_tbl", scores.select(["domain", "score"]))
            source = "scores_tbl"
        else:
            paths = [str(Path(p).resolve()) for p in scores]
            if not paths:
                return DOMAIN_SCHEMA.empty_table()
            con.execute(f"CREATE TEMP VIEW scores_tbl AS SELECT domain, score FROM read_parquet({sql_list(paths)})")
            source = "scores_tbl"
        return con.execute(_domain_sql(source), params).to_arrow_table().cast(DOMAIN_SCHEMA)
    finally:
        con.close()


# --------------------------------------------------------------------------------------------
# URL patterns
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UrlPattern:
    """One annotated pattern: ``%`` matches any run of characters (SQL LIKE); ``-`` = negative."""

    pattern: str
    label: str
    line: int = 0

    @property
    def like(self) -> str:
        """The pattern for DuckDB ``ILIKE ... ESCAPE '\\'`` (only ``%`` is a wildcard)."""
        return self.pattern.replace("\\", "\\\\").replace("_", "\\_")

    @property
    def regex(self) -> re.Pattern[str]:
        return re.compile("^" + ".*".join(re.escape(p) for p in self.pattern.split("%")) + "$", re.I | re.S)

    @property
    def host_hint(self) -> str:
        """Host named by the pattern (``%www.cnblogs.com%`` -> ``www.cnblogs.com``), if any."""
        core = self.pattern.strip("%")
        core = core.split("://", 1)[-1]
        return url_host(core.split("%", 1)[0].split("/", 1)[0])


def parse_url_patterns(text: str, where: str = "<patterns>") -> list[UrlPattern]:
    """One pattern per line; ``#`` comments; leading ``-`` marks a not-code pattern, ``+`` optional.

    A bare pattern without any ``%`` is wrapped as ``%pattern%`` (substring match), as in the paper.
    """
    out: list[UrlPattern] = []
    seen: set[tuple[str, str]] = set()
    for i, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith(("%#",)) else raw.strip()
        if not line:
            continue
        label = CODE_LABEL
        if line[0] in "+-":
            label = OTHER_LABEL if line[0] == "-" else CODE_LABEL
            line = line[1:].strip()
        if not line or any(c.isspace() for c in line):
            raise PageReadError(f"{where}: line {i}: a pattern is one token without spaces, got {raw!r}")
        if line.strip("%") == "":
            raise PageReadError(f"{where}: line {i}: pattern {raw!r} matches everything")
        if "%" not in line:
            line = f"%{line}%"
        if (line, label) not in seen:
            seen.add((line, label))
            out.append(UrlPattern(line, label, i))
    return out


def load_url_patterns(path: str | Path | None) -> list[UrlPattern]:
    """Patterns from the editable file; a missing path means no patterns (nothing joins the seeds)."""
    if not path:
        return []
    p = Path(path)
    if not p.is_file():
        return []
    return parse_url_patterns(p.read_text(encoding="utf-8"), str(p))


def match_url(url: str, patterns: Sequence[UrlPattern]) -> UrlPattern | None:
    """First matching pattern; negative patterns win over positive ones (an explicit 'no')."""
    hits = [p for p in patterns if p.regex.match(url)]
    for p in hits:
        if p.label == OTHER_LABEL:
            return p
    return hits[0] if hits else None


def match_patterns_sql(
    pages_source_sql: str,
    patterns: Sequence[UrlPattern],
    con: duckdb.DuckDBPyConnection,
    domains: Sequence[str] | None = None,
) -> pa.Table:
    """DuckDB join of pages (a relation with page_id, url, domain, text) to patterns.

    Returns page_id, url, domain, text, label, pattern; one row per page (negative pattern wins,
    then the first pattern in file order). ``domains`` restricts matching to those base domains.
    """
    pat = pa.table({
        "pattern": [p.pattern for p in patterns],
        "like_pattern": [p.like for p in patterns],
        "label": [p.label for p in patterns],
        "prio": [(0 if p.label == OTHER_LABEL else 1) * 1_000_000 + i for i, p in enumerate(patterns)],
    })
    con.register("url_patterns_tbl", pat)
    dom_filter = ""
    if domains is not None:
        con.register("allowed_domains_tbl", pa.table({"domain": list(domains)}))
        dom_filter = "AND p.domain IN (SELECT domain FROM allowed_domains_tbl)"
    return con.execute(
        f"""
        SELECT p.page_id, p.url, p.domain, p.text, u.label, u.pattern
        FROM ({pages_source_sql}) p JOIN url_patterns_tbl u ON p.url ILIKE u.like_pattern ESCAPE '\\'
        WHERE true {dom_filter}
        QUALIFY row_number() OVER (PARTITION BY p.page_id ORDER BY u.prio) = 1
        ORDER BY p.page_id
        """
    ).to_arrow_table()


# --------------------------------------------------------------------------------------------
# Seed assembly and the round loop
# --------------------------------------------------------------------------------------------


def assemble_seeds(
    parts: Sequence[pa.Table],
    negatives_pool: pa.Table | None,
    *,
    negatives_ratio: float = 3.0,
    max_negatives: int | None = None,
    seed: int = 42,
) -> pa.Table:
    """Union of labelled parts (first occurrence of a page wins; positives before negatives),
    plus negatives sampled from the crawl pool (deterministic hash order, excluding seeded pages).
    """
    tables = [t.select(SEED_SCHEMA.names).cast(SEED_SCHEMA) for t in parts if t is not None and t.num_rows]
    base = pa.concat_tables(tables) if tables else SEED_SCHEMA.empty_table()
    rows = base.to_pylist()
    rows.sort(key=lambda r: 0 if r["label"] == CODE_LABEL else 1)
    seen: set[str] = set()
    out: list[dict] = []
    for r in rows:
        if r["page_id"] in seen or not (r["text"] or "").strip():
            continue
        seen.add(r["page_id"])
        out.append(r)
    n_pos = sum(1 for r in out if r["label"] == CODE_LABEL)
    n_neg_have = len(out) - n_pos
    if negatives_pool is not None and negatives_pool.num_rows:
        want = max(0, int(math.ceil(negatives_ratio * n_pos)) - n_neg_have)
        if max_negatives is not None:
            want = min(want, max_negatives)
        pool = [r for r in negatives_pool.to_pylist() if r["page_id"] not in seen and (r["text"] or "").strip()]
        pool.sort(key=lambda r: _hash01(r["page_id"], seed))
        for r in pool[:want]:
            out.append({
                "page_id": r["page_id"], "url": r["url"], "domain": r["domain"], "text": r["text"],
                "label": OTHER_LABEL, "source": "crawl_negative", "group": r["domain"] or r["page_id"],
            })
    out.sort(key=lambda r: r["page_id"])
    return pa.Table.from_pylist(out, schema=SEED_SCHEMA)


def pages_to_seeds(pages: pa.Table, label: str, source: str) -> pa.Table:
    """Crawl pages (PAGE_SCHEMA-like) as seed rows grouped by their base domain."""
    n = pages.num_rows
    return pa.table({
        "page_id": pages["page_id"], "url": pages["url"], "domain": pages["domain"], "text": pages["text"],
        "label": pa.array([label] * n, pa.string()), "source": pa.array([source] * n, pa.string()),
        "group": pages["domain"],
    }).cast(SEED_SCHEMA)


@dataclass
class TrainReport:
    """What ``train_and_evaluate`` measured on the held-out groups."""

    eval_groups: dict[str, list[str]]
    n_train: int
    n_eval: int
    classifier_metrics: dict[str, float] | None
    baseline_metrics: dict[str, float] | None
    threshold: float
    eval_scores: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("eval_scores")
        return d


def train_and_evaluate(
    seeds: pa.Table,
    *,
    bpe: BpeParams = BpeParams(),
    ft: FastTextParams = FastTextParams(),
    threshold: float = 0.5,
    holdout_fraction: float = 0.2,
    seed: int = 42,
    retrain_on_all: bool = True,
) -> tuple[CodeWebClassifier, TrainReport]:
    """Held-out-by-group evaluation (BPE and fastText fit on the training groups only), then the
    deployed model is refit on every seed (``retrain_on_all``) with the same hyperparameters."""
    texts = seeds["text"].to_pylist()
    labels = seeds["label"].to_pylist()
    groups = [f"{lab}:{g}" for lab, g in zip(labels, seeds["group"].to_pylist(), strict=True)]
    is_eval = split_by_group(groups, labels, holdout_fraction, seed)
    eval_groups: dict[str, list[str]] = {}
    for g, e in zip(groups, is_eval, strict=True):
        if e:
            lab, name = g.split(":", 1)
            if name not in eval_groups.setdefault(lab, []):
                eval_groups[lab].append(name)
    train_idx = np.flatnonzero(~is_eval)
    eval_idx = np.flatnonzero(is_eval)
    clf_metrics = base_metrics = None
    eval_scores: list[float] = []
    eval_labels = {labels[i] for i in eval_idx}
    if len(eval_idx) and eval_labels == {CODE_LABEL, OTHER_LABEL}:
        clf = fit_classifier([texts[i] for i in train_idx], [labels[i] for i in train_idx], bpe, ft)
        ev_texts = [texts[i] for i in eval_idx]
        y = [labels[i] == CODE_LABEL for i in eval_idx]
        scores = clf.score(ev_texts)
        eval_scores = [float(s) for s in scores]
        clf_metrics = binary_metrics(y, scores > threshold)
        base_metrics = binary_metrics(y, keyword_baseline_predict(ev_texts))
        if not retrain_on_all:
            return clf, TrainReport(eval_groups, len(train_idx), len(eval_idx), clf_metrics, base_metrics,
                                    threshold, eval_scores)
    final = fit_classifier(texts, labels, bpe, ft)
    return final, TrainReport(eval_groups, len(train_idx), len(eval_idx), clf_metrics, base_metrics,
                              threshold, eval_scores)


@dataclass
class RoundResult:
    """One train -> recall -> discover -> patterns iteration of ``run_recall_loop``."""

    round: int
    positives: int
    negatives: int
    report: TrainReport
    recalled: int
    pages: int
    code_domains: list[str]
    new_domains: list[str]
    pattern_positives: int
    pattern_negatives: int


def run_recall_loop(
    pages: pa.Table,
    *,
    base_seeds: pa.Table,
    known_code_domains: Sequence[str] = (),
    patterns: Sequence[UrlPattern] = (),
    rounds: int = 3,
    threshold: float = 0.5,
    min_ratio: float = 0.10,
    min_pages: int = 1,
    negatives_ratio: float = 3.0,
    bpe: BpeParams = BpeParams(),
    ft: FastTextParams = FastTextParams(),
    holdout_fraction: float = 0.2,
    seed: int = 42,
    patterns_within_code_domains: bool = True,
) -> tuple[list[RoundResult], CodeWebClassifier, pa.Table]:
    """The paper's loop in memory (the Dagster assets run the same steps, one asset per step).

    Round k trains on base seeds + known-code-domain pages + pages matched by URL patterns inside
    round k-1's code domains (+ crawl negatives), scores every page, aggregates base domains.
    Returns the per-round results, the last classifier and the last round's scores.
    """
    known = set(known_code_domains)
    results: list[RoundResult] = []
    pattern_seeds = SEED_SCHEMA.empty_table()
    prev_domains: set[str] = set()
    clf: CodeWebClassifier | None = None
    scores_tbl = SCORE_SCHEMA.empty_table()
    for k in range(1, rounds + 1):
        mask = np.isin(np.asarray(pages["domain"].to_pylist(), dtype=object), list(known)) if known else None
        known_pages = pages.filter(pa.array(mask)) if mask is not None else pages.slice(0, 0)
        pool = pages.filter(pa.array(~mask)) if mask is not None else pages
        seeds = assemble_seeds(
            [base_seeds, pages_to_seeds(known_pages, CODE_LABEL, "known_code_domain"), pattern_seeds],
            pool, negatives_ratio=negatives_ratio, seed=seed,
        )
        n_pos = sum(1 for lab in seeds["label"].to_pylist() if lab == CODE_LABEL)
        clf, report = train_and_evaluate(seeds, bpe=bpe, ft=ft, threshold=threshold,
                                         holdout_fraction=holdout_fraction, seed=seed)
        s = clf.score(pages["text"].to_pylist())
        scores_tbl = pa.table({
            "page_id": pages["page_id"], "url": pages["url"], "host": pages["host"], "domain": pages["domain"],
            "shard": pages["shard"], "score": pa.array(s, pa.float32()), "recalled": pa.array(s > threshold),
            "text_bytes": pages["text_bytes"],
        }, schema=SCORE_SCHEMA)
        domains = aggregate_domains(scores_tbl, threshold=threshold, min_ratio=min_ratio, min_pages=min_pages)
        code_domains = sorted(d for d, c in zip(domains["domain"].to_pylist(),
                                                domains["is_code_domain"].to_pylist(), strict=True) if c)
        con = duckdb.connect()
        try:
            con.register("pages_tbl", pages)
            matched = match_patterns_sql(
                "SELECT page_id, url, domain, text FROM pages_tbl", patterns, con,
                domains=code_domains if patterns_within_code_domains else None,
            ) if patterns else None
        finally:
            con.close()
        if matched is not None and matched.num_rows:
            pattern_seeds = pa.table({
                "page_id": matched["page_id"], "url": matched["url"], "domain": matched["domain"],
                "text": matched["text"], "label": matched["label"],
                "source": pa.array([f"url_pattern:{p}" for p in matched["pattern"].to_pylist()]),
                "group": matched["domain"],
            }).cast(SEED_SCHEMA)
        else:
            pattern_seeds = SEED_SCHEMA.empty_table()
        pat_labels = pattern_seeds["label"].to_pylist()
        results.append(RoundResult(
            round=k, positives=n_pos, negatives=seeds.num_rows - n_pos, report=report,
            recalled=int((s > threshold).sum()), pages=pages.num_rows, code_domains=code_domains,
            new_domains=sorted(set(code_domains) - prev_domains),
            pattern_positives=pat_labels.count(CODE_LABEL), pattern_negatives=pat_labels.count(OTHER_LABEL),
        ))
        prev_domains = set(code_domains)
    assert clf is not None
    return results, clf, scores_tbl


def env_threads() -> int:
    """CPU cores this process may use (cgroup/affinity aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def describe_params(bpe: BpeParams, ft: FastTextParams) -> Mapping[str, Any]:
    return {"bpe": asdict(bpe), "fasttext": asdict(ft)}
