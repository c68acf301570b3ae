"""Web recall: readers, domains, URL patterns, the classifier on real text, the assets and the sensor.

Real text (``tests/web_recall_corpus.py``), never downloaded: code-related pages from what the
project's dependencies install (Python language reference, pydoc pages of stdlib modules, PyPI
READMEs, numpy/pandas API docs) and not-code pages (PyPI license texts plus a small vendored set:
fortune cookies, Project Gutenberg books, GNOME desktop help).  Held-out sources (numpy/pandas
docs vs GNOME help) are never trained on.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opencoder_assets.core import web_recall as wr

sys.path.insert(0, str(Path(__file__).resolve().parent))
import web_recall_corpus as corpus_mod  # noqa: E402

TRAIN_CODE = ["python-reference", "stdlib-pydoc", "pypi-readmes"]
TRAIN_OTHER = ["fortunes", "gutenberg", "pypi-licenses"]
HELDOUT_CODE = ["numpy-docs", "pandas-docs"]
#: desktop help: technical-sounding prose about apps and settings, the hard negative
HELDOUT_OTHER = ["gnome-help"]


# ----------------------------------------------------------------------------------------------
# fixtures
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def corpus() -> dict[str, list[dict]]:
    return corpus_mod.load_corpus()


def _texts(corpus: dict, names: list[str]) -> list[str]:
    return [p["text"] for n in names for p in corpus[n]]


@pytest.fixture(scope="session")
def trained(corpus: dict) -> wr.CodeWebClassifier:
    """Trained on the training doc sets only (held-out sources never seen, not even by BPE)."""
    pos, neg = _texts(corpus, TRAIN_CODE), _texts(corpus, TRAIN_OTHER)
    return wr.fit_classifier(pos + neg, [wr.CODE_LABEL] * len(pos) + [wr.OTHER_LABEL] * len(neg),
                             wr.BpeParams(), wr.FastTextParams())


def _warc_record(rtype: str, url: str, block: bytes, extra: str = "") -> bytes:
    head = (f"WARC/1.0\r\nWARC-Type: {rtype}\r\nWARC-Target-URI: {url}\r\n"
            f"WARC-Record-ID: <urn:uuid:{abs(hash((rtype, url))):032x}>\r\nWARC-Date: 2024-01-01T00:00:00Z\r\n"
            f"{extra}Content-Length: {len(block)}\r\n\r\n").encode()
    return gzip.compress(head + block + b"\r\n\r\n")


def write_warc(path: Path, pages: list[tuple[str, str]], content_type: str = "text/html; charset=utf-8") -> None:
    """A gzip-per-record WARC of HTTP responses, written by hand (independent of the reader)."""
    with open(path, "wb") as fh:
        fh.write(_warc_record("warcinfo", "", b"software: test\r\n", "Content-Type: application/warc-fields\r\n"))
        for url, body in pages:
            payload = body.encode("utf-8")
            http = (f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n\r\n"
                    ).encode() + payload
            fh.write(_warc_record("response", url, http, "Content-Type: application/http; msgtype=response\r\n"))


def write_wet(path: Path, pages: list[tuple[str, str]]) -> None:
    with open(path, "wb") as fh:
        for url, text in pages:
            fh.write(_warc_record("conversion", url, text.encode("utf-8"), "Content-Type: text/plain\r\n"))


def _html(text: str) -> str:
    body = "".join(f"<p>{p}</p>" for p in text.split("\n") if p.strip())
    return f"<html><head><title>t</title><script>var x=1;</script></head><body><nav>Home</nav>{body}</body></html>"


# ----------------------------------------------------------------------------------------------
# domains, patterns, readers (no real corpus needed)
# ----------------------------------------------------------------------------------------------


def test_base_domain_uses_bundled_suffix_list_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("tldextract tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    wr._EXTRACTOR = None
    wr.base_domain.cache_clear()
    assert wr.base_domain("docs.python.org") == "python.org"
    assert wr.base_domain("a.b.example.co.uk") == "example.co.uk"
    assert wr.base_domain("www.stackoverflow.com") == "stackoverflow.com"
    assert wr.base_domain("cloud.tencent.com", "host") == "cloud.tencent.com"
    assert wr.base_domain("192.168.0.1") == "192.168.0.1"
    assert wr.url_host("HTTPS://Docs.Python.org:443/3/") == "docs.python.org"
    assert wr.url_host("example.com/a/b") == "example.com"
    assert wr.url_host("") == ""


def test_url_patterns_like_semantics(tmp_path: Path) -> None:
    f = tmp_path / "patterns.txt"
    f.write_text("# code\n%stackoverflow.com/questions%\n-%stackoverflow.com/users%\nsegmentfault.com/q\n"
                 "%my.oschina.net%blog%\n%a_b.com/x%  # underscore is literal\n%stackoverflow.com/questions%\n")
    pats = wr.load_url_patterns(f)
    assert [(p.pattern, p.label) for p in pats] == [
        ("%stackoverflow.com/questions%", "code"), ("%stackoverflow.com/users%", "other"),
        ("%segmentfault.com/q%", "code"), ("%my.oschina.net%blog%", "code"), ("%a_b.com/x%", "code"),
    ]
    assert wr.match_url("https://stackoverflow.com/questions/1/x", pats).label == "code"
    assert wr.match_url("https://stackoverflow.com/users/7", pats).label == "other"
    assert wr.match_url("https://my.oschina.net/u/1/blog/2", pats).pattern == "%my.oschina.net%blog%"
    assert wr.match_url("https://aXb.com/x", pats) is None
    assert pats[0].host_hint == "stackoverflow.com"
    urls = ["https://stackoverflow.com/questions/1", "https://stackoverflow.com/users/2", "http://aXb.com/x/1",
            "http://a_b.com/x/1", "https://segmentfault.com/q/3", "https://other.org/questions"]
    import duckdb

    con = duckdb.connect()
    con.register("p", pa.table({"page_id": [str(i) for i in range(len(urls))], "url": urls,
                                "domain": [wr.base_domain(wr.url_host(u)) for u in urls], "text": ["t"] * len(urls)}))
    got = wr.match_patterns_sql("SELECT * FROM p", pats, con)
    sql = dict(zip(got["url"].to_pylist(), got["label"].to_pylist(), strict=True))
    py = {u: m.label for u in urls if (m := wr.match_url(u, pats))}
    assert sql == py == {urls[0]: "code", urls[1]: "other", urls[3]: "code", urls[4]: "code"}
    only = wr.match_patterns_sql("SELECT * FROM p", pats, con, domains=["segmentfault.com"])
    assert only["url"].to_pylist() == [urls[4]]
    with pytest.raises(wr.PageReadError, match=r"patterns.txt: line 1"):
        f.write_text("%%\n")
        wr.load_url_patterns(f)


def test_domain_rule_is_exact_at_ten_percent() -> None:
    rows = []
    for dom, pages, code in [("exactly10.example", 100, 10), ("just-over.example", 1000, 101),
                             ("one-of-nine.example", 9, 1), ("none.example", 50, 0), ("all.example", 3, 3)]:
        rows += [(dom, 0.9 if i < code else 0.1) for i in range(pages)]
    t = pa.table({"domain": [r[0] for r in rows], "score": pa.array([r[1] for r in rows], pa.float32())})
    out = wr.aggregate_domains(t, threshold=0.5, min_ratio=0.10)
    flags = dict(zip(out["domain"].to_pylist(), out["is_code_domain"].to_pylist(), strict=True))
    assert flags == {"exactly10.example": False, "just-over.example": True, "one-of-nine.example": True,
                     "none.example": False, "all.example": True}
    assert wr.aggregate_domains(t, min_pages=5).filter(pa.compute.field("is_code_domain"))["domain"].to_pylist() \
        == ["just-over.example", "one-of-nine.example"]


def test_readers_all_formats_and_clear_errors(tmp_path: Path) -> None:
    pages = [("https://docs.example.org/a", "def f(x):\n    return x"), ("https://blog.example.com/b", "Hello prose.")]
    pq.write_table(pa.table({"url": [u for u, _ in pages], "text": [t for _, t in pages]}), tmp_path / "s.parquet")
    (tmp_path / "s.jsonl.gz").write_bytes(gzip.compress(
        "\n".join(json.dumps({"url": u, "text": t}) for u, t in pages).encode()))
    write_warc(tmp_path / "s.warc.gz", [(u, _html(t)) for u, t in pages])
    write_wet(tmp_path / "s.warc.wet.gz", pages)
    for name in ("s.parquet", "s.jsonl.gz", "s.warc.gz", "s.warc.wet.gz"):
        got = list(wr.iter_page_rows(tmp_path / name))
        assert [u for u, _ in got] == [u for u, _ in pages], name
        assert "return x" in got[0][1] and "Hello prose." in got[1][1], (name, got)
        assert "var x" not in got[0][1]  # scripts never leak into text
    batch = next(wr.iter_page_batches(tmp_path / "s.parquet", shard="s"))
    assert batch.schema == wr.PAGE_SCHEMA
    assert batch["domain"].to_pylist() == ["example.org", "example.com"]

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"url": "u", "text": "ok"}\n{not json}\n')
    with pytest.raises(wr.PageReadError, match=r"bad.jsonl: line 2: invalid JSON"):
        list(wr.iter_page_rows(bad))
    pq.write_table(pa.table({"link": ["u"], "body": ["x"]}), tmp_path / "cols.parquet")
    with pytest.raises(wr.PageReadError, match=r"cols.parquet: missing column\(s\) \['url', 'text'\]"):
        list(wr.iter_page_rows(tmp_path / "cols.parquet"))
    assert list(wr.iter_page_rows(tmp_path / "cols.parquet", url_column="link", text_column="body")) == [("u", "x")]
    (tmp_path / "x.csv").write_text("a")
    with pytest.raises(wr.PageReadError, match="x.csv: unsupported"):
        list(wr.iter_page_rows(tmp_path / "x.csv"))
    for cut in (40, 100):  # the last record's body cut short / cut before its HTTP body
        (tmp_path / "trunc.warc.gz").write_bytes((tmp_path / "s.warc.gz").read_bytes()[:-cut])
        with pytest.raises(wr.PageReadError, match=r"trunc\.warc\.gz: WARC record #2 .*truncated"):
            list(wr.iter_page_rows(tmp_path / "trunc.warc.gz"))


def test_seed_file_errors_name_the_row(tmp_path: Path) -> None:
    f = tmp_path / "seeds.jsonl"
    f.write_text(json.dumps({"text": "a", "label": "code"}) + "\n" + json.dumps({"text": "b", "label": "maybe"}) + "\n")
    with pytest.raises(wr.PageReadError, match=r"seeds.jsonl: row 2: label 'maybe'"):
        wr.load_seed_file(f)


def test_split_by_group_never_splits_a_group() -> None:
    groups = [f"g{i % 7}" for i in range(700)]
    labels = ["code" if i % 7 < 4 else "other" for i in range(700)]
    is_eval = wr.split_by_group(groups, labels, 0.3, seed=1)
    for g in set(groups):
        vals = {bool(e) for gg, e in zip(groups, is_eval, strict=True) if gg == g}
        assert len(vals) == 1
    assert 0 < is_eval.sum() < 700
    held_labels = {lab for lab, e in zip(labels, is_eval, strict=True) if e}
    assert held_labels == {"code", "other"}
    assert (is_eval == wr.split_by_group(groups, labels, 0.3, seed=1)).all()


# ----------------------------------------------------------------------------------------------
# real text: held-out source, determinism, domain discovery
# ----------------------------------------------------------------------------------------------


def test_classifier_beats_keyword_baseline_on_heldout_sources(corpus: dict, trained: wr.CodeWebClassifier) -> None:
    pos, neg = _texts(corpus, HELDOUT_CODE), _texts(corpus, HELDOUT_OTHER)
    assert len(pos) > 200 and len(neg) > 100
    y = [True] * len(pos) + [False] * len(neg)
    scores = trained.score(pos + neg)
    clf = wr.binary_metrics(y, scores > 0.5)
    base = wr.binary_metrics(y, wr.keyword_baseline_predict(pos + neg))
    print(f"\nheld-out {HELDOUT_CODE} vs {HELDOUT_OTHER}: fastText {clf} | keyword baseline {base}")
    assert clf["f1"] > base["f1"] + 0.1
    assert clf["f1"] > 0.75


def test_training_is_deterministic(corpus: dict) -> None:
    pos, neg = _texts(corpus, ["python-reference"]), _texts(corpus, ["fortunes"])[:80]
    texts, labels = pos + neg, ["code"] * len(pos) + ["other"] * len(neg)
    bpe, ft = wr.BpeParams(vocab_size=2000, max_chars=2000), wr.FastTextParams(epoch=3)
    a = wr.fit_classifier(texts, labels, bpe, ft)
    b = wr.fit_classifier(texts, labels, bpe, ft)
    assert a.tokenizer.to_str() == b.tokenizer.to_str()
    probe = _texts(corpus, ["numpy-docs"])[:50]
    assert np.array_equal(a.score(probe), b.score(probe))


def _synthetic_crawl(corpus: dict, seed: int = 7) -> tuple[pa.Table, dict[str, float]]:
    """Held-out real pages under made-up domains with known code shares (far from the 10 % line)."""
    rng = np.random.default_rng(seed)
    code = _texts(corpus, HELDOUT_CODE)
    office = _texts(corpus, HELDOUT_OTHER)
    prose = _texts(corpus, ["fortunes"])
    plan = {  # domain: (pages, code pages)
        "pgtips.example": (60, 45), "sqlcorner.test": (40, 20), "mixed-blog.example": (80, 32),
        "officehelp.example": (80, 0), "gardening.test": (50, 1), "cooking.example": (40, 0),
        "rarecode.example": (100, 2),
    }
    rows = []
    ci = oi = 0
    for dom, (n, c) in plan.items():
        for i in range(n):
            host = ["www.", "docs.", "forum."][i % 3] + dom
            if i < c:
                text, ci = code[ci % len(code)], ci + 1
            elif dom.startswith("office"):
                text, oi = office[oi % len(office)], oi + 1
            else:
                text, oi = prose[(oi * 7 + i) % len(prose)], oi + 1
            url = f"https://{host}/p/{i}"
            rows.append((url, text))
    order = rng.permutation(len(rows))
    urls = [rows[i][0] for i in order]
    texts = [rows[i][1] for i in order]
    hosts = [wr.url_host(u) for u in urls]
    table = pa.table({
        "page_id": [wr.page_id_for(u) for u in urls], "url": urls, "host": hosts,
        "domain": [wr.base_domain(h) for h in hosts], "shard": ["s0"] * len(urls), "text": texts,
        "text_bytes": [len(t.encode()) for t in texts], "source": ["crawl"] * len(urls),
        "record_offset": pa.nulls(len(urls), pa.int64()),
    }, schema=wr.PAGE_SCHEMA)
    return table, {d: c / n for d, (n, c) in plan.items()}


def test_domain_discovery_on_synthetic_crawl(corpus: dict, trained: wr.CodeWebClassifier) -> None:
    """Held-out pages under made-up domains (sub-domains www./docs./forum. fold into one base domain).

    The recall threshold is precision-oriented (0.9): at 0.5 about 18 % of held-out LibreOffice
    help pages score as code, which alone would push an all-office domain over the 10 % rule.
    """
    pages, truth = _synthetic_crawl(corpus)
    scores = trained.score(pages["text"].to_pylist())
    out = wr.aggregate_domains(pa.table({"domain": pages["domain"], "score": pa.array(scores, pa.float32())}),
                               threshold=0.9)
    found = {d for d, f in zip(out["domain"].to_pylist(), out["is_code_domain"].to_pylist(), strict=True) if f}
    expected = {d for d, r in truth.items() if r > 0.10}
    print("\n" + "\n".join(f"{d}: true {truth[d]:.0%}, found {r:.0%}" for d, r in
                           zip(out["domain"].to_pylist(), out["ratio"].to_pylist(), strict=True)))
    assert found == expected == {"pgtips.example", "sqlcorner.test", "mixed-blog.example"}


# ----------------------------------------------------------------------------------------------
# Dagster: assets end to end and the sensor
# ----------------------------------------------------------------------------------------------


def _write_crawl(corpus: dict, crawl: Path) -> None:
    """Three shards (Parquet, WARC, WET) of real pages under made-up domains.  The code pages are
    stdlib pydoc pages the seed file does not contain (it takes the first 80): round 1 trains on
    80 seeds per source plus random crawl pages as negatives, too little to generalise to the
    held-out numpy/pandas docs (that is test_classifier_beats_keyword_baseline_on_heldout_sources)."""
    code = _texts(corpus, ["stdlib-pydoc"])[80:]
    other = _texts(corpus, HELDOUT_OTHER) + _texts(corpus, ["fortunes"])
    known = _texts(corpus, ["python-reference"])
    crawl.mkdir(parents=True)
    rows = []
    rows += [(f"https://docs.pylib.example/lib/{i}", known[i]) for i in range(30)]
    rows += [(f"https://www.pgforum.example/questions/{i}", code[i]) for i in range(25)]
    rows += [(f"https://www.pgforum.example/users/{i}", other[i]) for i in range(15)]
    rows += [(f"https://blog.sqlnotes.test/post/{i}", code[100 + i] if i < 10 else other[100 + i]) for i in range(30)]
    rows += [(f"https://help.office.example/{i}", other[200 + i]) for i in range(60)]
    prose = _texts(corpus, ["fortunes"])
    rows += [(f"https://quotes.example/{i}", prose[i]) for i in range(150)]
    rows += [("", "page without url"), ("https://empty.example/x", "")]
    rng = np.random.default_rng(3)
    rows = [rows[i] for i in rng.permutation(len(rows))]
    thirds = [rows[0::3], rows[1::3], rows[2::3]]
    pq.write_table(pa.table({"url": [u for u, _ in thirds[0]], "text": [t for _, t in thirds[0]]}),
                   crawl / "CC-0000.parquet")
    write_warc(crawl / "CC-0001.warc.gz", [(u, _html(t)) for u, t in thirds[1] if u])
    write_wet(crawl / "CC-0002.warc.wet.gz", [(u, t) for u, t in thirds[2] if u])
    old = time.time() - 3600
    for f in crawl.iterdir():
        os.utime(f, (old, old))


def test_assets_end_to_end_and_sensor(corpus: dict, tmp_path: Path) -> None:
    from dagster import DagsterInstance, build_sensor_context, materialize

    from opencoder_assets.assets import web_recall as web
    from resources import CorpusStorage, MetricsStore, PipelineSettings
    from sensors.web_crawl_sensor import web_crawl_sensor, web_crawl_shards

    crawl = tmp_path / "crawl"
    _write_crawl(corpus, crawl)
    seed_file = tmp_path / "seeds.jsonl"
    with open(seed_file, "w") as fh:
        for name in ("stdlib-pydoc", "pypi-readmes", "gutenberg", "pypi-licenses"):
            for p in corpus[name][:80]:
                fh.write(json.dumps({"text": p["text"], "label": corpus_mod.SOURCE_LABELS[name], "group": name}) + "\n")
    patterns = tmp_path / "url_patterns.txt"
    patterns.write_text("%pgforum.example/questions%\n-%pgforum.example/users%\n%nowhere.example/x%\n")
    settings = web.WebRecallSettings(
        crawl_dir=str(crawl), seed_file=str(seed_file), known_code_domains=["pylib.example"],
        url_patterns_file=str(patterns), shard_min_age_s=0, bpe_vocab_size=4000, max_chars=3000, ft_epoch=40,
        negatives_ratio=1.5, holdout_fraction=0.3,
    )
    metrics = MetricsStore(db_path=str(tmp_path / "metrics.duckdb"))
    resources = {"web_recall": settings, "storage": CorpusStorage(root=str(tmp_path / "corpus")),
                 "metrics": metrics, "settings": PipelineSettings(batch_rows=50)}
    instance = DagsterInstance.ephemeral()

    # sensor: first tick adds 3 partitions + 3 runs, second tick nothing, touched file -> 1 run
    ctx = build_sensor_context(instance=instance, resources={"web_recall": settings})
    res = web_crawl_sensor(ctx)
    keys = sorted(r.partition_key for r in res.run_requests)
    assert keys == ["CC-0000.parquet", "CC-0001.warc.gz", "CC-0002.warc.wet.gz"]
    assert sorted(res.dynamic_partitions_requests[0].partition_keys) == keys
    instance.add_dynamic_partitions(web_crawl_shards.name, keys)
    again = web_crawl_sensor(build_sensor_context(instance=instance, cursor=res.cursor,
                                                  resources={"web_recall": settings}))
    assert not getattr(again, "run_requests", None)
    (crawl / "CC-0003.jsonl").write_text(json.dumps({"url": "https://new.example/1", "text": "x"}) + "\n")
    os.utime(crawl / "CC-0003.jsonl", (time.time() - 100, time.time() - 100))
    third = web_crawl_sensor(build_sensor_context(instance=instance, cursor=res.cursor,
                                                  resources={"web_recall": settings}))
    assert [r.partition_key for r in third.run_requests] == ["CC-0003.jsonl"]
    (crawl / "CC-0003.jsonl").unlink()

    assets = web.build_web_assets(rounds=2)
    for key in keys:
        r = materialize(assets, selection=["web_pages"], partition_key=key, instance=instance, resources=resources)
        assert r.success
    result = materialize(assets, selection=[a for a in assets if a.key.path[0].startswith("round_")],
                         instance=instance, resources=resources)
    assert result.success

    def meta(key: str) -> dict:
        from dagster import AssetKey

        ev = instance.get_latest_materialization_event(AssetKey(key.split("/")))
        return ev.asset_materialization.metadata

    # round 1 seeds: seed file + known domain pages (+ crawl negatives)
    m1 = meta("round_1/web_seed_corpus")
    assert m1["positives"].value >= 30 + 160
    clf1 = meta("round_1/code_web_classifier")
    print("\nround-1 held-out:", clf1["heldout_groups"].value, clf1["heldout_vs_baseline"].value)
    # held-out groups (seeded split): 110 code pages of 214, so calling everything code scores
    # F1 0.68; the keyword baseline scores 0.68 too; the model measured 0.74-0.76
    assert clf1["heldout_f1"].value > clf1["baseline_f1"].value
    assert clf1["heldout_f1"].value >= 0.70
    d1 = meta("round_1/code_domains")
    d2 = meta("round_2/code_domains")
    assert "per_round_growth" in d2 and "| 2 |" in d2["per_round_growth"].value
    assert "pgforum.example" in d2["top_domains"].value
    # url patterns of round 1 feed round 2's seeds
    p1 = meta("round_1/url_patterns")
    assert p1["next_round_positives"].value == 25 and p1["next_round_negatives"].value == 15
    m2 = meta("round_2/web_seed_corpus")
    assert "url_pattern" in m2["by_source"].value
    assert "nowhere.example" not in json.dumps(p1["code_domains_without_pattern"].value)
    r1 = meta("round_1/recalled_web_pages")
    assert "score_histogram" in r1 and "top_recalled_domains" in r1
    store = resources["storage"]
    domains = pq.read_table(store.shards("code_domains", "round_2"))
    code = set(domains.filter(domains["is_code_domain"])["domain"].to_pylist())
    assert {"pylib.example", "pgforum.example", "sqlnotes.test"} <= code
    assert "quotes.example" not in code and "office.example" not in code
    print("\nround 1 code domains:", d1["code_domain_count"].value, "round 2:", sorted(code))

    # every page has a decision; recalled pages carry their score
    rows = metrics.query("SELECT decision, count(*) FROM file_decisions WHERE step='recalled_web_pages' "
                         "AND partition='round_2' GROUP BY 1 ORDER BY 1")
    n_pages = metrics.query("SELECT count(*) FROM file_decisions WHERE step='web_pages' AND decision='kept'")[0][0]
    assert sum(n for _, n in rows) == n_pages == 310
    dropped = metrics.query("SELECT reason, count(*) FROM file_decisions WHERE step='web_pages' "
                            "AND decision='dropped' GROUP BY 1 ORDER BY 1")
    assert dropped == [("empty_text", 1), ("no_url", 1)]
    # the detail of every recall decision is the page's score, and it decides: kept iff > 0.5
    decisions = metrics.query("SELECT decision, reason, detail FROM file_decisions WHERE step='recalled_web_pages' "
                              "AND partition='round_2'")
    kept_scores = [float(d) for dec, _, d in decisions if dec == "kept"]
    dropped = [(r, float(d)) for dec, r, d in decisions if dec == "dropped"]
    assert len(kept_scores) + len(dropped) == 310 and len(kept_scores) >= 30 + 25  # known domain + pgforum
    assert all(0.5 <= s <= 1.0 for s in kept_scores), kept_scores
    assert all(r == "below_threshold" and 0.0 <= s <= 0.5 for r, s in dropped), dropped[:5]


def test_run_recall_loop_in_memory(corpus: dict) -> None:
    """The library loop: round 2 gains the pattern-matched pages of a domain found in round 1."""
    pages, _ = _synthetic_crawl(corpus)
    seeds = pa.Table.from_pylist(
        [{"page_id": f"s{n}{i}", "url": "", "domain": "", "text": p["text"], "label": corpus_mod.SOURCE_LABELS[n],
          "source": "seed_file", "group": n}
         for n in ("python-reference", "stdlib-pydoc", "pypi-readmes", "fortunes", "gutenberg", "pypi-licenses")
         for i, p in enumerate(corpus[n][:60])],
        schema=wr.SEED_SCHEMA)
    pats = wr.parse_url_patterns("%pgtips.example/p/%\n")
    results, clf, scores = wr.run_recall_loop(
        pages, base_seeds=seeds, patterns=pats, rounds=2, negatives_ratio=1.0, holdout_fraction=0.0,
        bpe=wr.BpeParams(vocab_size=4000, max_chars=3000), ft=wr.FastTextParams(epoch=30),
    )
    assert [r.round for r in results] == [1, 2] and scores.num_rows == pages.num_rows
    r1, r2 = results
    assert "pgtips.example" in r1.code_domains
    assert r1.pattern_positives == 60 and r2.positives >= r1.positives + 60
