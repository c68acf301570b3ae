"""corpus_report on a real two-language run: the HTML and the metadata tell what the metrics store says."""

from __future__ import annotations

import base64
import html.parser
import io
import re
import shutil
from pathlib import Path

import pytest
from dagster import materialize
from PIL import Image

from opencoder_assets.assets.report import REPORT_FILE, corpus_report
from opencoder_assets.core.filtering import FilterThresholds
from opencoder_assets.core.report import MAX_PNG_BYTES, SECTION_TITLES
from opencoder_assets.definitions import code_assets
from tests.conftest import INCLUDE
from tests.test_refine_pipeline import _corpus

PARTITIONED = [a for a in code_assets if a.partitions_def is not None]
SOURCE_INDEX = [a for a in code_assets if a.partitions_def is None]
EMAIL = "jane.doe@corp-mail.net"


class _Tables(html.parser.HTMLParser):
    """``{data-key: [ {column: cell text} ]}`` of every ``<table data-key=...>`` of the report."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[dict[str, str]]] = {}
        self.images: list[str] = []
        self._key: str | None = None
        self._head: list[str] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src", ""))
        elif tag == "table":
            self._key, self._head = a["data-key"], []
            self.tables[self._key] = []
        elif tag == "tr" and self._key:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._key:
            if not self._head:
                self._head = self._row
            elif len(self._row) == len(self._head):  # not the "no rows" placeholder
                self.tables[self._key].append(dict(zip(self._head, self._row, strict=False)))
            self._row = None
        elif tag == "table":
            self._key = None


def _num(cell: str) -> float:
    return float(cell.replace(",", ""))


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """The code pipeline for python (stdlib + a fork with near-copies + a licensed file with PII)
    and c (this interpreter's headers), then corpus_report."""
    from resources import CodeSources, CorpusStorage, MetricsStore, PipelineSettings
    from resources.engine import ExecutionEngine

    tmp = tmp_path_factory.mktemp("report")
    repos, manifest = _corpus(tmp)
    (repos / "cpython-include").mkdir()
    for h in sorted(INCLUDE.glob("*.h"))[:25]:
        shutil.copyfile(h, repos / "cpython-include" / h.name)
    res = {
        "sources": CodeSources(folders=[str(repos)], manifest=str(manifest)),
        "storage": CorpusStorage(root=str(tmp / "corpus")),
        "metrics": MetricsStore(db_path=str(tmp / "metrics.duckdb")),
        "settings": PipelineSettings(),
        "engine": ExecutionEngine(kind="inprocess", workers=1, dask_scheduler=None),
    }
    assert materialize(SOURCE_INDEX, resources=res).success
    for partition in ("python", "c"):
        assert materialize(PARTITIONED, resources=res, partition_key=partition).success, partition
    result = materialize([corpus_report], resources={"storage": res["storage"], "metrics": res["metrics"]})
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    page = Path(meta["report_path"].value)
    parser = _Tables()
    parser.feed(page.read_text())
    return res, meta, page, parser


def test_html_is_published_with_every_section(reported):
    res, meta, page, parser = reported
    assert page.name == REPORT_FILE and page.parent == res["storage"].current_dir("corpus_report", None)
    assert meta["report_url"].value == page.as_uri()
    text = page.read_text()
    for title in SECTION_TITLES.values():
        assert f"<h2>{title}</h2>" in text, title
    assert "http://" not in text and "https://" not in text  # self-contained: no external resource
    manifest = res["storage"].manifest("corpus_report", None)
    assert REPORT_FILE in manifest["files"] and manifest["partitions"] == ["python", "c"]
    assert "step" not in manifest  # the report is not a pipeline step: it never shows up in step_runs
    assert not res["metrics"].query("SELECT * FROM step_runs WHERE step = 'corpus_report'")


def test_numbers_match_the_metrics_store(reported):
    res, meta, _page, parser = reported
    q = res["metrics"].query
    kept = dict(q("SELECT partition, kept FROM step_runs WHERE step = 'refinecode_code'"))
    raw_in = dict(q("SELECT partition, input_count FROM step_runs WHERE step = 'raw_code'"))
    assert set(kept) == {"python", "c"}
    langs = {r["language"]: r for r in parser.tables["languages"]}
    for lang in ("python", "c"):
        assert _num(langs[lang]["files_kept"]) == kept[lang]
        assert _num(langs[lang]["files_in"]) == raw_in[lang]
    md_langs = {r.data["language"]: r.data for r in meta["languages"].value.records}
    assert {k: v["files_kept"] for k, v in md_langs.items()} == kept
    assert meta["dagster/row_count"].value == sum(kept.values())
    # funnel: the "all" rows sum the languages, step by step
    steps = dict(q("SELECT step, sum(kept) FROM step_runs GROUP BY step"))
    all_rows = {r["step"]: _num(r["files_kept"]) for r in parser.tables["funnel"] if r["language"] == "all"}
    assert all_rows == {s: float(n) for s, n in steps.items()}
    # drop reasons: the filter's leading reason and its count
    top_reason, top_files = q("SELECT reason, sum(files) f FROM drop_reasons WHERE step = 'filtered_code' "
                              "GROUP BY reason ORDER BY f DESC, reason LIMIT 1")[0]
    filt = [r for r in parser.tables["drop_reasons"] if r["step"] == "filtered_code"]
    assert filt[0]["reason"] == top_reason and _num(filt[0]["files"]) == top_files
    total_in = q("SELECT sum(input_count) FROM step_runs WHERE step = 'filtered_code'")[0][0]
    assert _num(filt[0]["share_pct"]) == round(100 * top_files / total_in, 1)


def test_token_figures_are_real_counts_of_the_published_content(reported):
    """Every token figure is the tokenizer's count: each step from transformed_code on equals a fresh
    count of its published content; steps before it (pre-transformation content) show none."""
    import pyarrow.parquet as pq

    from opencoder_assets.core.tokens import count_tokens

    res, _meta, _page, parser = reported
    storage = res["storage"]
    funnel = {(r["language"], r["step"]): r["tokens_kept"] for r in parser.tables["funnel"]}
    for lang in ("python", "c"):
        for step in ("transformed_code", "filtered_code", "refinecode_code"):
            texts = [t for s in storage.shards(step, lang) for t in pq.read_table(s, columns=["content"])["content"]
                     .to_pylist()]
            assert _num(funnel[(lang, step)]) == sum(count_tokens(texts)) > 0, (lang, step)
        # quality_signals publishes signals, not content, and keeps every file it reads
        assert funnel[(lang, "quality_signals")] == funnel[(lang, "transformed_code")]
        assert funnel[(lang, "raw_code")] == "–"  # rendered None
    extra = res["storage"].manifest("refinecode_code", "python")["extra"]
    assert extra["params"]["tokens_reused_from"] == "transformed_code"  # sampling did not tokenize again
    assert _num(funnel[("python", "refinecode_code")]) == extra["kept_tokens"]  # and its own figure agrees


def test_signal_distributions_agree_with_the_thresholds(reported):
    """% over threshold recomputed in Python with Rule.over on the stored signal values."""
    res, meta, _page, parser = reported
    rows = parser.tables["quality_signals"]
    assert rows and len(rows) == len(meta["quality_signals"].value.records)
    th = FilterThresholds.load()
    q = res["metrics"].query
    for row in rows:
        rule = th.rules(row["config"])[row["signal"]]
        values = [v for (v,) in q(
            "SELECT s.signals[?] FROM quality_signals s JOIN file_decisions d ON d.file_id = s.file_id "
            "AND d.step = 'filtered_code' WHERE regexp_extract(d.detail, 'config=(\\S+)', 1) = ?",
            [row["signal"], row["config"]])]
        assert _num(row["files"]) == len(values)
        over = sum(1 for v in values if rule.over(v))
        assert _num(row["over_threshold_pct"]) == round(100 * over / len(values), 1), row
        nulls = sum(1 for v in values if v is None)
        assert _num(row["null_pct"]) == round(100 * nulls / len(values), 1)
    # the most frequently firing rule comes first
    fired = q("SELECT c, r, count(*) n FROM (SELECT regexp_extract(detail, 'config=(\\S+)', 1) AS c, "
              "unnest(string_split(regexp_extract(detail, 'hits=(\\S+)', 1), ',')) AS r FROM file_decisions "
              "WHERE step = 'filtered_code' AND decision = 'dropped') "
              "WHERE r LIKE 'qsc_%' GROUP BY c, r ORDER BY n DESC, c, r LIMIT 1")
    assert (rows[0]["config"], rows[0]["signal"], _num(rows[0]["files_fired"])) == fired[0]


def test_dedup_clusters_name_their_members(reported):
    _res, _meta, _page, parser = reported
    rows = parser.tables["dedup_clusters"]
    clusters: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        clusters.setdefault(r["cluster"], []).append(r)
    assert len(clusters) == 5  # the fork's five near-copies
    for members in clusters.values():
        roles = {m["role"]: m for m in members}
        assert set(roles) == {"kept", "dropped"}
        assert roles["kept"]["repo"] == "upstream" and roles["dropped"]["repo"] == "fork"
        assert roles["kept"]["path"] == roles["dropped"]["path"]
        assert 0.5 < _num(roles["dropped"]["est_similarity"]) <= 1.0


def test_transformation_excerpt_masks_the_pii_it_shows(reported):
    _res, meta, page, parser = reported
    text = page.read_text()
    assert "upstream/licensed.py" in text
    section = text.split('id="transformations"', 1)[1].split("</section>", 1)[0]
    before, after = re.search(r"upstream/licensed\.py.*?<pre>(.*?)</pre>.*?<pre>(.*?)</pre>", section, re.S).groups()
    assert "&lt;EMAIL&gt;" in after and "corp-mail.net" not in after
    assert "j•" in before and "•t" in before  # the address is masked (first and last character kept)
    assert EMAIL not in text and EMAIL not in meta["transformations"].value
    edits = {r["language"]: r for r in parser.tables["transform_edits"]}
    assert _num(edits["python"]["email"]) >= 1 and _num(edits["python"]["copyright_headers_removed"]) >= 1


def test_charts_are_decodable_small_pngs(reported):
    _res, meta, _page, parser = reported
    pngs = [base64.b64decode(src.split(",", 1)[1]) for src in parser.images]
    assert len(pngs) == 5  # funnel, languages, drop reasons, signal histograms, dedup sizes
    for data in pngs:
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < MAX_PNG_BYTES
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            assert im.width > 300 and im.height > 100
    charts = [k for k, v in meta.items() if "data:image/png;base64," in str(getattr(v, "value", ""))]
    assert sorted(charts) == sorted(["funnel_chart", "languages_chart", "drop_reasons_chart", "signal_histograms",
                                     "dedup_chart"])
    for key in ("funnel", "languages", "drop_reasons", "quality_signals", "dedup_clusters", "exact_duplicate_groups",
                "transform_edits", "other_assets"):
        value = meta[key]
        assert type(value).__name__ == "TableMetadataValue", key
        assert [c.name for c in value.schema.columns] == list(parser.tables[key][0]) if parser.tables[key] else True


def test_report_without_data_names_the_root(tmp_path):
    from resources import CorpusStorage, MetricsStore

    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "corpus"))):
        materialize([corpus_report], resources={"storage": CorpusStorage(root=str(tmp_path / "corpus")),
                                                "metrics": MetricsStore(db_path=str(tmp_path / "m.duckdb"))})


def test_report_after_ingestion_only(tmp_path, pipeline_resources):
    """Only raw -> exact dedup published for c: no signals/clusters/edit tables exist yet; the
    report still tells what there is and says what is missing."""
    repo = tmp_path / "repos" / "cpython-include"
    repo.mkdir(parents=True)
    for h in sorted(INCLUDE.glob("*.h"))[:8]:
        shutil.copyfile(h, repo / h.name)
    res = pipeline_resources([tmp_path / "repos"], None, engine="inprocess")
    assert materialize(SOURCE_INDEX, resources=res).success
    ingest = [a for a in PARTITIONED if a.key.to_user_string() in ("raw_code", "preprocessed_code",
                                                                    "exact_deduped_code")]
    assert materialize(ingest, resources=res, partition_key="c").success
    result = materialize([corpus_report], resources={"storage": res["storage"], "metrics": res["metrics"]})
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    parser = _Tables()
    parser.feed(Path(meta["report_path"].value).read_text())
    langs = {r["language"]: r for r in parser.tables["languages"]}
    assert langs["c"]["last_step"] == "exact_deduped_code" and _num(langs["c"]["files_in"]) == 8
    assert parser.tables["quality_signals"] == [] and parser.tables["dedup_clusters"] == []
    assert parser.tables["transform_edits"] == []
    assert meta["dagster/row_count"].value == 0  # nothing reached refinecode_code yet
