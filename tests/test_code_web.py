"""The code-web corpus and the RefineCode mix, end to end through Dagster on real pages.

The crawl is the demo's default crawl (opencoder_assets/default_crawl.py): real HTML from this
machine (pydoc pages of the stdlib, the Valgrind manual from Debian's ``valgrind`` package in
.ci/apt-packages.txt, npm's docs when present) as code pages, prose in a site template as
not-code pages, packed as a WARC (source ``common_crawl``), and PyPI READMEs/licenses as a
FineWeb-style Parquet shard (source ``fineweb``). One code page is planted twice more: a mirror
(exact duplicate) and a re-rendered copy (near duplicate). The code side is a small Python repo
(stdlib ``json`` + ``email`` packages) through the code pipeline.

Everything runs once per module (one recall round, small fastText) and the tests read the
published versions, the metrics views and the materialization metadata.
"""

from __future__ import annotations

import os
import shutil
import sysconfig
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from opencoder_assets.assets import code_web as cwa
from opencoder_assets.assets import web_recall as web
from opencoder_assets.core import code_web as cw
from opencoder_assets.core.filtering import FilterThresholds
from opencoder_assets.core.tokens import count_tokens
from opencoder_assets.core.web_extract import extract_main_text
from opencoder_assets.default_crawl import build_default_crawl, web_recall_config
from opencoder_assets.definitions import code_assets
from resources import CodeSources, CorpusStorage, MetricsStore, PipelineSettings
from resources.engine import ExecutionEngine
from sensors.web_crawl_sensor import list_shards, web_crawl_shards, web_sources

VALGRIND = Path("/usr/share/doc/valgrind/html")
SOURCES = ["common_crawl", "fineweb"]
STEPS = cw.WEB_STEP_NAMES


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if not VALGRIND.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{VALGRIND} missing (Debian valgrind, .ci/apt-packages.txt)")
        pytest.skip(f"{VALGRIND} missing")
    tmp = tmp_path_factory.mktemp("codeweb")
    crawl = build_default_crawl(tmp / "default_crawl", code_pages=40, prose_per_set=30)
    repo = tmp / "repos" / "stdlib-json"
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for pkg in ("json", "email"):
        shutil.copytree(stdlib / pkg, repo / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    storage = CorpusStorage(root=str(tmp / "corpus"))
    metrics = MetricsStore(db_path=str(tmp / "metrics.duckdb"))
    resources = {
        "sources": CodeSources(folders=[str(tmp / "repos")], manifest=None), "storage": storage, "metrics": metrics,
        "settings": PipelineSettings(batch_rows=64, unit_rows=200),
        "engine": ExecutionEngine(kind="inprocess", workers=1, dask_scheduler=None),
        "web_recall": web.WebRecallSettings(**web_recall_config(crawl)),
    }
    instance = DagsterInstance.ephemeral()
    partitioned = [a for a in code_assets if a.partitions_def is not None]
    assert materialize([a for a in code_assets if a.partitions_def is None], resources=resources,
                       instance=instance).success
    assert materialize(partitioned, resources=resources, partition_key="python", instance=instance).success

    web_assets = web.build_web_assets(rounds=1)
    keys = sorted(list_shards(crawl.crawl_dir))
    assert keys == ["common_crawl/CC-DEMO-00000.warc.gz", "fineweb/000_00000.parquet"]
    instance.add_dynamic_partitions(web_crawl_shards.name, keys)
    for key in keys:
        assert materialize(web_assets, selection=["web_pages"], partition_key=key, instance=instance,
                           resources=resources).success
    assert materialize(web_assets, selection=[a for a in web_assets if a.key.path[0] == "round_1"],
                       instance=instance, resources=resources).success
    cw_assets = cwa.build_code_web_assets(rounds=1)
    steps = [a for a in cw_assets if a.partitions_def is not None]
    results = {}
    for source in sorted(instance.get_dynamic_partitions(web_sources.name)):
        results[source] = materialize([*steps, *web_assets, *partitioned], selection=steps, partition_key=source,
                                      instance=instance, resources=resources)
        assert results[source].success
    mix = materialize([a for a in cw_assets if a.partitions_def is None] + steps + partitioned, selection=[cwa.MIX_STEP],
                      instance=instance, resources=resources)
    assert mix.success
    return {"crawl": crawl, "storage": storage, "metrics": metrics, "instance": instance, "results": results,
            "mix": mix}


def _rows(storage: CorpusStorage, step: str, part: str) -> list[dict]:
    files = storage.shards(step, part)
    return pq.read_table(files).to_pylist() if files else []


def _decisions(metrics: MetricsStore, step: str, part: str) -> dict[str, tuple]:
    rows = metrics.query("SELECT path, decision, reason, detail, file_id FROM file_decisions WHERE step = ? AND "
                         "partition = ?", [step, part])
    return {r[0]: r[1:] for r in rows}


def test_source_dimension(run: dict) -> None:
    """Sources come from the crawl's folders: partitions, page rows and corpus rows carry them."""
    inst, storage = run["instance"], run["storage"]
    assert sorted(inst.get_dynamic_partitions(web_sources.name)) == SOURCES
    pages = _rows(storage, "web_pages", "common_crawl/CC-DEMO-00000.warc.gz")
    assert pages and {p["source"] for p in pages} == {"common_crawl"}
    assert all(p["record_offset"] is not None for p in pages)
    fw = _rows(storage, "web_pages", "fineweb/000_00000.parquet")
    assert {p["source"] for p in fw} == {"fineweb"} and all(p["record_offset"] is None for p in fw)
    for source in SOURCES:
        corpus = _rows(storage, cw.WEB_FINAL_STEP, source)
        assert corpus, f"no {source} page survived"
        assert {r["source"] for r in corpus} == {source}
        assert {r["language"] for r in corpus} == {"web"}
    # the mapping in the config wins over the folder name
    assert web.WebRecallSettings(shard_sources={"fineweb/*": "FineWeb-Edu"}).source_of("fineweb/0.parquet") == \
        "FineWeb-Edu"
    assert web.WebRecallSettings().source_of("CC-MAIN-1.warc.gz") == "common_crawl"


def _warc_html(path: Path) -> dict[str, str]:
    """url -> HTML of every response record, read sequentially (independent of the offset seek)."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    out = {}
    with open(path, "rb") as fh:
        for rec in ArchiveIterator(fh, record_types=WarcRecordType.response, parse_http=True):
            out[rec.headers.get("WARC-Target-URI")] = rec.reader.read().decode("utf-8")
    return out


def test_extraction_main_text_from_the_warc(run: dict) -> None:
    storage, crawl = run["storage"], run["crawl"]
    html = _warc_html(crawl.crawl_dir / "common_crawl" / "CC-DEMO-00000.warc.gz")
    kept = _rows(storage, "web_extracted_pages", "common_crawl")
    assert len(kept) >= 20
    recalled = {r["url"] for r in _rows(storage, "recalled_web_pages", "round_1") if r["source"] == "common_crawl"}
    assert {r["path"] for r in kept} <= recalled
    valgrind = [r for r in kept if "valgrind.example" in r["path"]]
    assert valgrind, "no Valgrind manual page recalled"
    for r in kept:
        # the kept content is Resiliparse's main text of the page's own HTML (re-read by offset)
        assert r["content"] == extract_main_text(html[r["path"]]).text, r["path"]
        assert r["sha256"] and r["size_bytes"] == len(r["content"].encode())
    # code blocks survive main-text extraction; the stdlib parser's text (what web_pages keeps) is different
    import re

    page = valgrind[0]
    pre = [" ".join(ln.split()) for b in re.findall(r"<pre[^>]*>(.*?)</pre>", html[page["path"]], re.S)
           for ln in re.sub(r"<[^>]+>", "", b).split("\n") if len(ln.strip()) > 10]
    flat = " ".join(page["content"].split())
    import html as htmllib

    assert sum(htmllib.unescape(ln) in flat for ln in pre) >= 0.9 * len(pre)
    web_pages_text = {p["url"]: p["text"] for p in _rows(storage, "web_pages", "common_crawl/CC-DEMO-00000.warc.gz")}
    assert sum(web_pages_text[r["path"]] != r["content"] for r in kept) >= len(kept) // 2
    # the decision detail names the extractor
    dec = _decisions(run["metrics"], "web_extracted_pages", "common_crawl")
    assert all(d[2].startswith("resiliparse.") for d in dec.values() if d[0] == "kept")
    # FineWeb pages are text already: only tidied
    fw = _decisions(run["metrics"], "web_extracted_pages", "fineweb")
    assert fw and all(d[2].startswith("text ") for d in fw.values() if d[0] == "kept")


def test_dedup_drops_planted_duplicates(run: dict) -> None:
    metrics, crawl = run["metrics"], run["crawl"]
    exact = _decisions(metrics, "web_exact_deduped", "common_crawl")
    a, b = crawl.exact_duplicate
    assert a in exact and b in exact, "planted exact duplicates were not recalled"
    pair = sorted([exact[a], exact[b]], key=lambda d: d[0])
    assert [d[0] for d in pair] == ["dropped", "kept"]
    assert pair[0][1] == "exact_duplicate" and pair[0][2] == f"duplicate_of:{pair[1][3]}"
    assert sum(d[0] == "dropped" for d in exact.values()) == 1
    # the near duplicate (a re-rendered copy of the same page) meets the exact-dedup survivor
    fuzzy = _decisions(metrics, "web_fuzzy_deduped", "common_crawl")
    survivor = a if exact[a][0] == "kept" else b
    near = crawl.near_duplicate[1]
    assert survivor in fuzzy and near in fuzzy and a != near
    pair = sorted([fuzzy[survivor], fuzzy[near]], key=lambda d: d[0])
    assert [d[0] for d in pair] == ["dropped", "kept"], (fuzzy[survivor], fuzzy[near])
    assert pair[0][1] == "fuzzy_duplicate" and pair[0][2].startswith(f"duplicate_of:{pair[1][3]} est_j=")
    assert sum(d[0] == "dropped" for d in fuzzy.values()) == 1
    clusters = metrics.query("SELECT count(*) FROM dedup_clusters WHERE step = 'web_fuzzy_deduped' AND "
                             "partition = 'common_crawl'")[0][0]
    assert clusters >= 2


def test_nl_filter_drops_are_the_rules(run: dict) -> None:
    """Every drop names a rule of the text config that fires on the page's stored signals; no
    kept page has a firing rule."""
    metrics = run["metrics"]
    th = FilterThresholds.load()
    rows = metrics.query(
        "SELECT d.decision, d.reason, d.detail, s.signals, s.lang FROM file_decisions d JOIN web_quality_signals s "
        "USING (file_id) WHERE d.step = 'code_web_corpus' AND s.step = 'code_web_corpus'")
    n_in = metrics.query("SELECT count(*) FROM file_decisions WHERE step = 'code_web_corpus'")[0][0]
    assert len(rows) == n_in > 0
    drops = [r for r in rows if r[0] == "dropped"]
    assert drops, "the natural-language rules dropped nothing"
    for decision, reason, detail, signals, lang in rows:
        sig = dict(signals) if not isinstance(signals, dict) else signals
        config = "zh" if lang == "zh" else "en"
        fired = [n for n, rule in th.rules(config).items()
                 if not rule.off and rule.random_drop is None and n in sig and rule.over(sig[n])]
        if decision == "dropped":
            assert reason.startswith("filter:") and reason[len("filter:"):] in fired, (reason, fired)
            assert f"config={config}" in detail
        else:
            assert not fired, (detail, fired)


def test_every_step_accounts_for_every_page(run: dict) -> None:
    storage, metrics = run["storage"], run["metrics"]
    recalled = _rows(storage, "recalled_web_pages", "round_1")
    for source in SOURCES:
        upstream = sum(1 for r in recalled if r["source"] == source)
        for step in STEPS:
            m = storage.manifest(step, source)
            c = m["counts"]
            assert c["kept"] + c["dropped"] == c["input_count"] == upstream, (step, source, c)
            n, kept = metrics.query("SELECT count(*), count(*) FILTER (decision = 'kept') FROM file_decisions "
                                    "WHERE step = ? AND partition = ?", [step, source])[0]
            assert (n, kept) == (c["input_count"], c["kept"]) == (upstream, len(_rows(storage, step, source)))
            upstream = c["kept"]


def test_refinecode_mix_composition_adds_up(run: dict) -> None:
    storage = run["storage"]
    comp = pq.read_table(storage.current_dir(cwa.MIX_STEP, None) / "composition.parquet").to_pylist()
    assert {(r["category"], r["source"]) for r in comp} == {
        ("code", "python"), ("code-related web", "common_crawl"), ("code-related web", "fineweb")}
    for r in comp:
        step = "refinecode_code" if r["category"] == "code" else cw.WEB_FINAL_STEP
        content = [x["content"] for x in _rows(storage, step, r["source"])]
        assert r["documents"] == len(content)
        assert r["tokens"] == sum(count_tokens(content)) > 0, r
    total = sum(r["tokens"] for r in comp)
    assert abs(sum(r["token_share"] for r in comp) - 1.0) < 1e-5
    ev = run["instance"].get_latest_materialization_event(AssetKey(cwa.MIX_STEP)).asset_materialization.metadata
    assert ev["tokens"].value == total
    assert ev["code_tokens"].value + ev["web_tokens"].value == total
    assert len(ev["composition"].value.records) == 3
    assert "| **total** |" in ev["composition_md"].value
    members = pq.read_table(storage.current_dir(cwa.MIX_STEP, None) / "members.parquet").to_pylist()
    assert sorted({(m["step"], m["source"]) for m in members}) == sorted(
        {("refinecode_code", "python"), (cw.WEB_FINAL_STEP, "common_crawl"), (cw.WEB_FINAL_STEP, "fineweb")})
    assert all(Path(m["file"]).is_file() for m in members)
