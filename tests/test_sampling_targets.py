"""Per-language sampling to a token/byte target, through Dagster, on real Java and HTML files.

Java: the JDK's own sources (Debian ``openjdk-17-source``'s src.zip, in .ci/apt-packages.txt);
HTML: Valgrind's manual shipped by Debian's ``valgrind`` package (both in .ci/apt-packages.txt).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import materialize

from opencoder_assets.core.steps import SamplingParams, sample_keep
from opencoder_assets.core.tokens import count_tokens, tokenizer_info
from opencoder_assets.definitions import code_assets

PARTITIONED = [a for a in code_assets if a.partitions_def is not None]
SOURCE_INDEX = [a for a in code_assets if a.partitions_def is None]
FINAL = [a for a in PARTITIONED if a.key.to_user_string() == "refinecode_code"]
JDK_SRC = sorted(Path("/usr/lib/jvm").glob("*/lib/src.zip"))
HTML_DOCS = Path("/usr/share/doc/valgrind/html")


def _need(ok: bool, what: str) -> None:
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} missing (install it from .ci/apt-packages.txt)")
        pytest.skip(f"{what} missing")


def _java_files(n: int) -> dict[str, bytes]:
    _need(bool(JDK_SRC), "a JDK src.zip under /usr/lib/jvm (Debian openjdk-17-source)")
    with zipfile.ZipFile(JDK_SRC[0]) as z:
        names = sorted(x for x in z.namelist() if x.startswith("java.base/java/util/") and x.endswith(".java")
                       and "/concurrent/" not in x and 3000 < z.getinfo(x).file_size < 40000)
        return {Path(x).name: z.read(x) for x in names[:n]}


def _html_files(n: int) -> dict[str, bytes]:
    _need(HTML_DOCS.is_dir(), f"{HTML_DOCS} (Debian valgrind)")
    files = sorted((p for p in HTML_DOCS.glob("*.html") if 3000 < p.stat().st_size < 100000),
                   key=lambda p: (p.stat().st_size, p.name))
    return {p.name: p.read_bytes() for p in files[:n]}


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    repos = tmp_path / "repos"
    for repo, files in (("jdk", _java_files(40)), ("vgdocs", _html_files(16))):
        (repos / repo).mkdir(parents=True)
        for name, data in files.items():
            (repos / repo / name).write_bytes(data)
    return repos


def _decisions(res, partition: str) -> dict[str, tuple[str, str | None, str | None]]:
    rows = res["metrics"].query("SELECT file_id, decision, reason, detail FROM file_decisions "
                                "WHERE step = 'refinecode_code' AND partition = ?", [partition])
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _kept_files(res, partition: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for shard in res["storage"].shards("refinecode_code", partition):
        t = pq.read_table(shard, columns=["file_id", "content"])
        out.update(zip(t["file_id"].to_pylist(), t["content"].to_pylist(), strict=True))
    return out


def _filtered(res, partition: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for shard in res["storage"].shards("filtered_code", partition):
        t = pq.read_table(shard, columns=["file_id", "content"])
        out.update(zip(t["file_id"].to_pylist(), t["content"].to_pylist(), strict=True))
    return out


def _meta(result) -> dict:
    return {k: getattr(v, "value", v) for k, v in result.asset_materializations_for_node("refinecode_code")[0]
            .metadata.items()}


def _assert_within_one_file(kept: dict[str, int], target: float, total: int) -> None:
    got = sum(kept.values())
    assert target < total, (target, total)
    assert got >= target, (got, target)
    assert got - max(kept.values()) < target, (got, max(kept.values()), target)


@pytest.mark.parametrize("partition,unit", [("java", "tokens"), ("html", "bytes")])
def test_target_sampling_through_dagster(corpus, pipeline_resources, partition, unit):
    res = pipeline_resources([corpus], None, engine="inprocess")
    assert materialize(SOURCE_INDEX, resources=res).success
    assert materialize(PARTITIONED, resources=res, partition_key=partition).success
    pool = _filtered(res, partition)
    assert len(pool) >= 8, f"too few {partition} files survive the filter: {len(pool)}"
    measure = ({f: n for f, n in zip(pool, count_tokens(list(pool.values())), strict=True)} if unit == "tokens"
               else {f: len(t.encode()) for f, t in pool.items()})
    total = sum(measure.values())
    # java: the paper's 449 -> 200 as a share of the partition's tokens; html: an absolute byte target
    if partition == "java":
        cfg = {"ratio_mode": "volume", "target_unit": unit, "seed": 7}
        target = 200 / 449 * total
    else:
        target = float(int(total * 0.3))
        cfg = {"targets": {"html": target}, "target_unit": unit, "seed": 7}
    run_config = {"ops": {"refinecode_code": {"config": cfg}}}
    r1 = materialize(FINAL, resources=res, partition_key=partition, run_config=run_config)
    assert r1.success
    kept = _kept_files(res, partition)
    _assert_within_one_file({f: measure[f] for f in kept}, target, total)
    first = _decisions(res, partition)
    # every input file has a decision; every drop is recorded with the target and the file's rank
    assert set(first) == set(pool)
    drops = {f: d for f, d in first.items() if d[0] == "dropped"}
    assert drops and set(drops) == set(pool) - set(kept)
    assert all(d[1] == "downsampled" and f"target={target:.0f} {unit}" in d[2] and " rank=" in d[2]
               for d in drops.values())
    md = _meta(r1)
    assert md["kept_tokens"] == sum(count_tokens(list(kept.values())))
    assert md["input_tokens"] == sum(count_tokens(list(pool.values())))
    assert md["sampling_mode"] == "target" and abs(md["sampling_target"] - target) < 1e-3
    manifest = res["storage"].manifest("refinecode_code", partition)
    assert manifest["extra"]["kept_tokens"] == md["kept_tokens"]
    # the same on a re-run, and on a 2-worker process pool
    assert materialize(FINAL, resources=res, partition_key=partition, run_config=run_config).success
    assert _decisions(res, partition) == first
    res_pool = pipeline_resources([corpus], None, engine="processes", workers=2, unit_rows=5)
    assert materialize(FINAL, resources=res_pool, partition_key=partition, run_config=run_config).success
    assert res_pool["storage"].manifest("refinecode_code", partition)["extra"]["workers"] == 2
    assert _decisions(res_pool, partition) == first
    # another seed ranks differently
    other = {"ops": {"refinecode_code": {"config": {**cfg, "seed": 8}}}}
    assert materialize(FINAL, resources=res, partition_key=partition, run_config=other).success
    assert set(_kept_files(res, partition)) != set(kept)
    # the per-file ratio mode stays available (the default): a seeded Bernoulli per file
    assert materialize(FINAL, resources=res, partition_key=partition).success
    per_file = _decisions(res, partition)
    ratio = SamplingParams(partition=partition).ratios[partition]
    assert {f for f, d in per_file.items() if d[0] == "kept"} == {f for f in pool if sample_keep(42, f, ratio)}
    assert all(d[2] == f"ratio={ratio:.4f}" for d in per_file.values() if d[0] == "dropped")


def test_tokenizer_from_settings_reaches_pool_workers(corpus, pipeline_resources, tmp_path):
    """A user tokenizer.json set in PipelineSettings counts every token figure of a run, including
    on process-pool workers, and its identity is recorded."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    java = [t.decode() for t in _java_files(10).values()]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(java, trainers.BpeTrainer(vocab_size=400, show_progress=False,
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    path = tmp_path / "tiny.json"
    tok.save(str(path))
    res = pipeline_resources([corpus], None, engine="processes", workers=2, unit_rows=5, tokenizer_path=str(path))
    assert materialize(SOURCE_INDEX, resources=res).success
    result = materialize(PARTITIONED, resources=res, partition_key="java")
    assert result.success
    kept = list(_kept_files(res, "java").values())
    tiny = sum(count_tokens(kept, str(path)))
    assert tiny != sum(count_tokens(kept))  # the default tokenizer would count differently
    md = _meta(result)
    assert md["kept_tokens"] == tiny and md["tokenizer"] == tokenizer_info(str(path)).label
    transformed = res["storage"].manifest("transformed_code", "java")["extra"]["kept_tokens"]
    pool_texts = []
    for shard in res["storage"].shards("transformed_code", "java"):
        pool_texts += pq.read_table(shard, columns=["content"])["content"].to_pylist()
    assert transformed == sum(count_tokens(pool_texts, str(path)))
    # the funnel shows the real counts where a step counted them
    funnel = md["funnel"]
    assert f"| {tiny} |" in funnel and f"| {transformed} |" in funnel
    # a missing tokenizer file fails the run naming the file
    bad = pipeline_resources([corpus], None, tokenizer_path=str(tmp_path / "nope.json"))
    r = materialize(FINAL, resources=bad, partition_key="java", raise_on_error=False)
    assert not r.success
