"""The embedded default crawl for ``opencoder demo --web``: real pages from this machine, no network.

Why gathered: like the default code corpus (default_data.py), the pages belong to their authors;
we package what is installed into crawl shards a web-recall run reads, in two sources:

- ``common_crawl/CC-DEMO-00000.warc.gz``: a WARC of HTTP responses (written with FastWARC, one
  gzip member per record, as Common Crawl's): *code pages* = pydoc's HTML of stdlib modules and
  the Valgrind HTML manual (and npm's docs when npm is installed); *not-code pages* = prose
  wrapped in a site template with navigation (Project Gutenberg books, fortune cookies and GNOME
  desktop help from tests/data/web_recall when the checkout has them, else the license texts in
  /usr/share/common-licenses). One code page is also served from a mirror host (an *exact*
  duplicate) and with a changed banner (a *near* duplicate), so the dedup steps have work.
- ``fineweb/000_00000.parquet``: FineWeb-style ``url`` + ``text`` rows: READMEs of installed
  Python distributions (code) and their license texts (not code).

Plus a seed file (Python language-reference topics from ``pydoc_data`` as code, books and
licenses as other) and the URL pattern file. Hosts are made-up ``*.example`` names; URLs are
stable, so re-running gives the same crawl.
"""

from __future__ import annotations

import email
import gzip
import hashlib
import html
import importlib
import json
import os
import re
import sys
import sysconfig
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from resources.storage import DEFAULT_DATA_ROOT

ROOT = Path(__file__).resolve().parents[1]
VENDORED = ROOT / "tests" / "data" / "web_recall" / "not_code_pages.json.gz"
#: WARC-Date of every record (a fixed date: the same machine gives the same bytes).
WARC_DATE = "2024-01-01T00:00:00Z"
#: the code domains the demo's round 1 starts from
KNOWN_CODE_DOMAINS = ("pydoc.example",)

_SKIP_MODULES = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "ensurepip", "__phello__",
                 "__hello__", "pydoc_data", "lib2to3", "test"}


@dataclass
class DefaultCrawl:
    """Where the crawl was written and what the demo's WebRecallSettings need."""

    crawl_dir: Path
    seed_file: Path
    url_patterns_file: Path
    known_code_domains: list[str]
    #: url -> label ("code"/"other") of every crawl page, and the planted duplicates
    labels: dict[str, str] = field(default_factory=dict)
    exact_duplicate: tuple[str, str] | None = None
    near_duplicate: tuple[str, str] | None = None


# ------------------------------------------------------------------------------ page sources
def pydoc_pages(limit: int = 120) -> list[tuple[str, str]]:
    """(module name, pydoc HTML page) of importable public stdlib modules."""
    import pydoc

    doc = pydoc.HTMLDoc()
    out = []
    for name in sorted(n for n in sys.stdlib_module_names if not n.startswith("_") and n not in _SKIP_MODULES):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = importlib.import_module(name)
                out.append((name, doc.page(f"Python: module {name}", doc.docmodule(module))))
        except Exception:  # noqa: BLE001 - platform-specific modules (winreg, msvcrt, ...)
            continue
        if len(out) >= limit:
            break
    return out


def html_files(root: str | Path, limit: int) -> list[tuple[str, str]]:
    """(relative path, HTML) of documentation pages under ``root`` (sorted, > 2 kB)."""
    base = Path(root)
    if not base.is_dir():
        return []
    paths = sorted(p for p in base.rglob("*.html") if p.is_file() and p.stat().st_size > 2000)[:limit]
    return [(p.relative_to(base).as_posix(), p.read_text(encoding="utf-8", errors="replace")) for p in paths]


def prose_pages(limit_per_set: int = 60) -> dict[str, list[str]]:
    """Not-code texts: the vendored books/fortunes/desktop help, else the system's license texts."""
    if VENDORED.is_file():
        corpus = json.loads(gzip.decompress(VENDORED.read_bytes()))
        return {name: [p["text"] for p in corpus[name][:limit_per_set]] for name in ("gutenberg", "fortunes", "gnome-help")}
    lic = sorted(Path("/usr/share/common-licenses").glob("*"))
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in lic if p.is_file()]
    return {"licenses": [t[i:i + 3000] for t in texts for i in range(0, len(t), 3000)][:limit_per_set]}


def distribution_texts(limit: int = 80) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(READMEs, license texts) of installed Python distributions, as (name, text)."""
    site = Path(sysconfig.get_paths()["purelib"])
    readmes: dict[str, tuple[str, str]] = {}
    licenses: dict[str, tuple[str, str]] = {}
    for dist in sorted(site.glob("*.dist-info")):
        meta = dist / "METADATA"
        if meta.is_file():
            body = email.message_from_string(meta.read_text(encoding="utf-8", errors="replace")).get_payload()
            if isinstance(body, str) and len(body) > 800:
                readmes.setdefault(hashlib.md5(body.encode()).hexdigest(), (dist.name.split("-")[0], body))
        for f in sorted(dist.rglob("*")):
            if f.is_file() and re.search(r"^(LICEN[CS]E|COPYING)", f.name, re.I):
                text = f.read_text(encoding="utf-8", errors="replace")
                if len(text) > 400:
                    licenses.setdefault(hashlib.md5(text.encode()).hexdigest(), (dist.name.split("-")[0], text))
    return list(readmes.values())[:limit], list(licenses.values())[:limit]


def site_page(title: str, text: str, site: str) -> str:
    """Prose in a small site template (title, navigation, footer) so extraction has work to do."""
    paras = "".join(f"<p>{html.escape(p)}</p>" for p in re.split(r"\n\s*\n", text) if p.strip())
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>body{{font-family:serif}}</style><script>var analytics = 1;</script></head><body>"
            f"<nav><ul><li><a href='/'>{site}</a></li><li><a href='/about'>About</a></li>"
            f"<li><a href='/archive'>Archive</a></li></ul></nav><main><article><h1>{html.escape(title)}</h1>{paras}"
            f"</article></main><footer>&copy; {site} - <a href='/privacy'>Privacy</a></footer></body></html>")


# ------------------------------------------------------------------------------------ writers
def write_warc(path: Path, pages: list[tuple[str, str]], content_type: str = "text/html; charset=utf-8") -> None:
    """A WARC of HTTP ``response`` records written with FastWARC, one gzip member per record
    (seekable by offset, as Common Crawl's files); record ids derive from the URL."""
    from fastwarc.stream_io import GzipWriter
    from fastwarc.warc import WarcRecord, WarcRecordType

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    writer = GzipWriter(str(tmp))
    try:
        for i, (url, body) in enumerate(pages):
            payload = body.encode("utf-8")
            rec = WarcRecord()
            rec.init_headers(record_type=WarcRecordType.response,
                             record_urn=uuid.uuid5(uuid.NAMESPACE_URL, f"{i}:{url}").urn[4:].encode())
            rec.headers["WARC-Date"] = WARC_DATE
            rec.headers["WARC-Target-URI"] = url
            rec.headers["Content-Type"] = "application/http; msgtype=response"
            rec.set_bytes_content(f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: "
                                  f"{len(payload)}\r\n\r\n".encode() + payload)
            rec.write(writer, checksum_data=True)
            writer.finish()  # close the gzip member: one member per record
    finally:
        writer.close()
    os.replace(tmp, path)


def write_parquet_pages(path: Path, rows: list[tuple[str, str]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"url": [u for u, _ in rows], "text": [t for _, t in rows]}), path)


# ------------------------------------------------------------------------------------- builder
def build_default_crawl(dest: str | Path | None = None, *, code_pages: int = 80, prose_per_set: int = 50,
                        force: bool = False) -> DefaultCrawl:
    """Write the default crawl under ``dest`` (default ``data/default_crawl``); idempotent
    unless ``force`` (a ``crawl.json`` records what was written)."""
    dest = Path(dest or os.path.join(DEFAULT_DATA_ROOT, "default_crawl"))
    info_path = dest / "crawl.json"
    if info_path.is_file() and not force:
        info = json.loads(info_path.read_text())
        return DefaultCrawl(Path(info["crawl_dir"]), Path(info["seed_file"]), Path(info["url_patterns_file"]),
                            info["known_code_domains"], info["labels"],
                            tuple(info["exact_duplicate"]) if info["exact_duplicate"] else None,
                            tuple(info["near_duplicate"]) if info["near_duplicate"] else None)
    crawl = dest / "web_crawl"
    labels: dict[str, str] = {}
    warc: list[tuple[str, str]] = []
    pydoc = pydoc_pages(code_pages)
    for name, page in pydoc:
        url = f"https://docs.pydoc.example/library/{name}.html"
        warc.append((url, page))
        labels[url] = "code"
    for rel, page in html_files("/usr/share/doc/valgrind/html", code_pages // 2):
        url = f"https://www.valgrind.example/docs/manual/{rel}"
        warc.append((url, page))
        labels[url] = "code"
    for rel, page in html_files("/usr/lib/node_modules/npm/docs/output", code_pages // 2):
        url = f"https://docs.npmjs.example/{rel}"
        warc.append((url, page))
        labels[url] = "code"
    # planted duplicates of a known-code-domain page: a mirror (exact) and a re-rendered copy (near)
    exact = near = None
    if pydoc:
        name, page = max(pydoc, key=lambda np: len(np[1]))  # the richest page: surely recalled
        src = f"https://docs.pydoc.example/library/{name}.html"
        exact = (src, f"https://mirror.pydoc.example/library/{name}.html")
        near = (src, f"https://docs.pydoc.example/3.12/library/{name}.html")
        warc.append((exact[1], page))
        warc.append((near[1], page.replace("<body", "<body><p>This page is for an older release.</p><!--x-->", 1)))
        labels[exact[1]] = labels[near[1]] = "code"
    hosts = {"gutenberg": "books.example", "fortunes": "quotes.example", "gnome-help": "help.desktop.example",
             "licenses": "licenses.example"}
    for set_name, texts in prose_pages(prose_per_set).items():
        host = hosts.get(set_name, f"{set_name}.example")
        for i, text in enumerate(texts):
            url = f"https://www.{host}/{set_name}/{i}.html"
            warc.append((url, site_page(f"{set_name} {i}", text, host)))
            labels[url] = "other"
    write_warc(crawl / "common_crawl" / "CC-DEMO-00000.warc.gz", warc)
    readmes, licenses = distribution_texts()
    rows = []
    for name, text in readmes:
        url = f"https://pypi.example/project/{name}/"
        rows.append((url, text))
        labels[url] = "code"
    for name, text in licenses:
        url = f"https://opensource-licenses.example/{name}/LICENSE"
        rows.append((url, text))
        labels[url] = "other"
    write_parquet_pages(crawl / "fineweb" / "000_00000.parquet", rows)
    # seeds: language-reference topics (code) vs books/licenses (other), held out by group
    from pydoc_data.topics import topics

    seed_file = dest / "seeds.jsonl"
    with open(seed_file, "w", encoding="utf-8") as fh:
        for i, (_name, text) in enumerate(sorted(topics.items())):
            if len(text) > 300 and i % 2 == 0:
                fh.write(json.dumps({"text": text, "label": "code", "group": f"python-reference-{i % 3}"}) + "\n")
        for i, text in enumerate(prose_pages(120).get("gutenberg", [])[prose_per_set:]):
            fh.write(json.dumps({"text": text, "label": "other", "group": f"gutenberg-{i % 3}"}) + "\n")
        lic = sorted(Path("/usr/share/common-licenses").glob("*"))
        for i, p in enumerate(lic):
            if p.is_file():
                fh.write(json.dumps({"text": p.read_text(encoding="utf-8", errors="replace")[:6000], "label": "other",
                                     "group": f"licenses-{i % 2}"}) + "\n")
    patterns = dest / "url_patterns.txt"
    patterns.write_text("# positive: documentation paths; negative: site chrome\n%/library/%\n%/docs/manual/%\n"
                        "-%/about%\n")
    out = DefaultCrawl(crawl, seed_file, patterns, list(KNOWN_CODE_DOMAINS), labels, exact, near)
    info_path.write_text(json.dumps({"crawl_dir": str(crawl), "seed_file": str(seed_file),
                                     "url_patterns_file": str(patterns), "known_code_domains": out.known_code_domains,
                                     "labels": labels, "exact_duplicate": exact, "near_duplicate": near}, indent=1))
    old = 1_700_000_000  # a fixed, old mtime: the crawl sensor's min-age wait never applies
    for f in crawl.rglob("*"):
        os.utime(f, (old, old))
    return out


def web_recall_config(crawl: DefaultCrawl) -> dict:
    """The ``web_recall`` resource config the demo runs with (small, fast fastText settings)."""
    return {"crawl_dir": str(crawl.crawl_dir), "seed_file": str(crawl.seed_file),
            "url_patterns_file": str(crawl.url_patterns_file), "known_code_domains": crawl.known_code_domains,
            "shard_min_age_s": 0.0, "bpe_vocab_size": 4000, "max_chars": 3000, "ft_epoch": 30,
            "negatives_ratio": 1.5, "holdout_fraction": 0.3}


def run_web_demo(verbose: bool = False, dest: str | Path | None = None) -> int:
    """``opencoder demo --web``: build the default crawl, then web_pages per shard -> the recall
    rounds -> the code-web corpus per source -> refinecode_mix (with the code corpus the demo
    just built), printing one line per step and the composition table. Returns 0 on success."""
    import time

    from dagster import DagsterInstance, materialize

    from opencoder_assets.assets.code_web import (
        CODE_WEB_ASSETS,
        MIX_STEP,
        composition_markdown,
        mix_composition,
    )
    from opencoder_assets.assets.web_recall import WEB_ASSETS, WebRecallSettings
    from opencoder_assets.core.code_web import WEB_STEP_NAMES
    from opencoder_assets.definitions import defs
    from sensors.web_crawl_sensor import list_shards, web_crawl_shards, web_sources

    crawl = build_default_crawl(dest)
    codes = sum(1 for v in crawl.labels.values() if v == "code")
    print(f"\nweb: default crawl in {crawl.crawl_dir} ({codes} code pages, {len(crawl.labels) - codes} other pages)")
    instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    resources = {**defs.resources, "web_recall": WebRecallSettings(**web_recall_config(crawl))}
    run_config = {} if verbose else {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    keys = sorted(list_shards(crawl.crawl_dir))
    have = set(instance.get_dynamic_partitions(web_crawl_shards.name))
    instance.add_dynamic_partitions(web_crawl_shards.name, [k for k in keys if k not in have])
    every = [*defs.assets] if isinstance(defs.assets, list) else list(defs.assets)
    code_web_steps = [a for a in CODE_WEB_ASSETS if a.key.to_user_string() in WEB_STEP_NAMES]

    def step(label: str, selection: list, partition: str | None = None) -> bool:
        t0 = time.perf_counter()
        result = materialize(every, selection=selection, partition_key=partition, instance=instance,
                             resources=resources, run_config=run_config, raise_on_error=False)
        print(f"[{'ok' if result.success else 'FAILED'}] {label:<40} {time.perf_counter() - t0:6.1f}s")
        return result.success

    ok = all(step(f"web_pages[{k}]", ["web_pages"], k) for k in keys)
    ok = ok and step("recall rounds", [a for a in WEB_ASSETS if a.key.path[0].startswith("round_")])
    for source in sorted(instance.get_dynamic_partitions(web_sources.name)) if ok else []:
        ok = ok and step(f"code_web_corpus[{source}]", code_web_steps, source)
    ok = ok and step(MIX_STEP, [MIX_STEP])
    if ok:
        comp, _members = mix_composition(defs.resources["storage"])
        print("\nrefinecode_mix composition (tokens per source):")
        print(composition_markdown(comp))
        print('\nnext:  .venv/bin/opencoder sql "SELECT step, partition, reason, files FROM drop_reasons '
              "WHERE step LIKE 'web_%' OR step = 'code_web_corpus' ORDER BY files DESC\"")
    return 0 if ok else 1


if __name__ == "__main__":
    c = build_default_crawl(force=True)
    print(f"crawl in {c.crawl_dir}: {sum(1 for v in c.labels.values() if v == 'code')} code pages, "
          f"{sum(1 for v in c.labels.values() if v == 'other')} other pages")
