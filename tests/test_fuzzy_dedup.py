"""Tests for opencoder_assets.core.fuzzy_dedup on real code (CPython stdlib sources).

Near-duplicates are made by small real edits (one changed/deleted line); dissimilar pairs by
editing many lines or pairing different modules.  num_perm is kept small except where a test
is about the paper defaults (2048 perms, 16x128).
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opencoder_assets.core.fuzzy_dedup import (
    FuzzyDedupParams,
    candidate_probability,
    exact_jaccard,
    lsh_threshold,
    minhash_signatures,
    run_fuzzy_dedup,
    s_curve_table,
    shingle_hashes,
)

STDLIB = Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
if not STDLIB.is_dir():  # pragma: no cover
    STDLIB = Path(np.__file__).parents[1]
UTC = dt.timezone.utc


def _real_files(n: int, min_lines: int = 150, max_bytes: int = 60_000) -> list[tuple[str, str]]:
    """First n stdlib modules (sorted, deterministic) with enough lines to edit."""
    out: list[tuple[str, str]] = []
    for p in sorted(STDLIB.glob("*.py")):
        try:
            text = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if len(text.splitlines()) >= min_lines and len(text.encode()) <= max_bytes:
            out.append((p.name, text))
        if len(out) >= n:
            break
    assert len(out) >= n // 2, f"not enough real files under {STDLIB}"
    return out


def _edit_lines(text: str, k: int, seed: int) -> str:
    """Real small edit: rename the identifiers on k non-empty lines spread over the file."""
    lines = text.splitlines()
    rng = np.random.default_rng(seed)
    cand = [i for i, ln in enumerate(lines) if len(ln.split()) >= 2]
    for i in rng.choice(cand, size=min(k, len(cand)), replace=False):
        lines[i] = " ".join(w + "_x" if w.isidentifier() else w for w in lines[i].split())
    return "\n".join(lines)


def _write_shards(recs: list[dict], out_dir: Path, n_shards: int, row_group_size: int = 64) -> list[str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in range(n_shards):
        part = recs[s::n_shards]
        tbl = pa.table(
            {
                "file_id": pa.array([r["file_id"] for r in part], pa.string()),
                "content": pa.array([r["content"] for r in part], pa.string()),
                "stars": pa.array([r.get("stars") for r in part], pa.int64()),
                "commit_time": pa.array([r.get("commit_time") for r in part], pa.timestamp("us", tz="UTC")),
            }
        )
        p = out_dir / f"shard-{s:03d}.parquet"
        pq.write_table(tbl, p, row_group_size=row_group_size)
        paths.append(str(p))
    return paths


def _clusters(result) -> pl.DataFrame:
    return pl.read_parquet(result.clusters_path).sort("cluster_id", "file_id")


# ------------------------------------------------------------------------------------------


def test_params_validation_and_lsh_math() -> None:
    with pytest.raises(ValueError, match="bands\\*rows"):
        FuzzyDedupParams(num_perm=1024, bands=16, rows=128)
    with pytest.raises(ValueError, match="token_unit"):
        FuzzyDedupParams(token_unit="bpe")
    assert FuzzyDedupParams().threshold == pytest.approx(0.978, abs=1e-3)
    assert lsh_threshold(128, 16) == pytest.approx(0.738, abs=1e-3)
    assert candidate_probability(0.98, 16, 128) == pytest.approx(0.71, abs=0.01)
    assert candidate_probability(0.95, 16, 128) == pytest.approx(0.02, abs=0.005)
    table = s_curve_table(16, 128)
    js = [j for j, _ in table]
    ps = [p for _, p in table]
    assert js == sorted(js) and ps == sorted(ps) and table[0] == (0.0, 0.0) and table[-1] == (1.0, 1.0)


def test_estimator_accuracy_on_real_code_pairs() -> None:
    """MinHash(2048) estimate vs exact shingle Jaccard: error within the binomial bound."""
    params = FuzzyDedupParams()
    files = _real_files(30)
    a_texts, b_texts = [], []
    for i, (_, text) in enumerate(files):
        k = [1, 5, 20, 60, 150][i % 5]
        a_texts.append(text)
        b_texts.append(_edit_lines(text, k, seed=i))
    for (_, t1), (_, t2) in zip(files[:-1:3], files[1::3], strict=False):  # different modules, J ~ 0
        a_texts.append(t1)
        b_texts.append(t2)
    sig = minhash_signatures(a_texts + b_texts, params)
    sets = shingle_hashes(a_texts + b_texts, params)
    n = len(a_texts)
    est = (sig[:n] == sig[n:]).mean(axis=1)
    true = np.array([exact_jaccard(sets[i], sets[n + i]) for i in range(n)])
    assert true.min() < 0.2 and true.max() > 0.99 and ((true > 0.3) & (true < 0.9)).any()
    err = np.abs(est - true)
    sigma = np.sqrt(true * (1 - true) / params.num_perm)  # per-pair std of the estimator
    # Mean |err| of a normal is 0.8 sigma; allow 2x slack; no pair beyond 5 sigma (+ rounding).
    assert err.mean() <= 2 * 0.8 * max(sigma.mean(), 1 / params.num_perm) + 1e-3
    assert (err <= 5 * sigma + 2 / params.num_perm).all(), list(zip(true, est, strict=True))
    assert err.mean() <= 1 / math.sqrt(params.num_perm)


@pytest.fixture(scope="module")
def near_dup_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Real files + one-line near copies (J >= 0.99) + heavily edited copies (J <= 0.9)."""
    files = _real_files(40, min_lines=400)
    recs: list[dict] = []
    near_pairs, far_pairs = [], []
    for i, (name, text) in enumerate(files):
        recs.append({"file_id": name, "content": text, "stars": i % 5, "commit_time": None})
        if i % 2 == 0:
            cid = f"{name}#near"
            recs.append(
                {"file_id": cid, "content": _edit_lines(text, 1, seed=i), "stars": 10, "commit_time": None}
            )
            near_pairs.append((name, cid))
        else:
            cid = f"{name}#far"
            recs.append(
                {"file_id": cid, "content": _edit_lines(text, 40, seed=i), "stars": 10, "commit_time": None}
            )
            far_pairs.append((name, cid))
    recs += [
        {"file_id": "tiny-a", "content": "x = 1\n", "stars": 1, "commit_time": None},
        {"file_id": "tiny-b", "content": "x = 1\n", "stars": 2, "commit_time": None},
        {"file_id": "tiny-c", "content": "", "stars": None, "commit_time": None},
    ]
    base = tmp_path_factory.mktemp("near")
    paths = _write_shards(recs, base / "in", n_shards=3)
    params = FuzzyDedupParams()
    sets = dict(
        zip([r["file_id"] for r in recs], shingle_hashes([r["content"] for r in recs], params), strict=True)
    )
    res = run_fuzzy_dedup(paths, base / "work", params)
    return {"recs": recs, "near": near_pairs, "far": far_pairs, "sets": sets, "res": res, "paths": paths}


def test_default_16x128_near_copies_clustered_far_pairs_not(near_dup_corpus: dict) -> None:
    sets = near_dup_corpus["sets"]
    cl = _clusters(near_dup_corpus["res"])
    cluster_of = dict(zip(cl["file_id"].to_list(), cl["cluster_id"].to_list(), strict=True))
    near = [(a, b) for a, b in near_dup_corpus["near"] if exact_jaccard(sets[a], sets[b]) >= 0.99]
    far = [(a, b) for a, b in near_dup_corpus["far"] if exact_jaccard(sets[a], sets[b]) <= 0.9]
    assert len(near) >= 10 and len(far) >= 10
    for a, b in near:
        assert a in cluster_of and cluster_of[a] == cluster_of.get(b), (a, b)
    for a, b in far:
        assert cluster_of.get(a) is None or cluster_of.get(a) != cluster_of.get(b), (a, b)


def test_counts_too_short_and_survivor_columns(near_dup_corpus: dict) -> None:
    res = near_dup_corpus["res"]
    st = res.stats
    assert st["input"] == len(near_dup_corpus["recs"])
    assert st["kept"] + st["removed"] == st["input"]
    assert st["too_short"] == 3
    cl = _clusters(res)
    assert not set(cl["file_id"]) & {"tiny-a", "tiny-b", "tiny-c"}
    assert res.removed_id_set() == set(cl.filter(~pl.col("is_survivor"))["file_id"])
    assert len(res.removed_id_set()) == st["removed"]
    per = cl.group_by("cluster_id").agg(
        pl.col("is_survivor").sum().alias("n_surv"), pl.len().alias("n"), pl.col("cluster_size").first()
    )
    assert (per["n_surv"] == 1).all() and (per["n"] == per["cluster_size"]).all()
    surv = cl.filter(pl.col("is_survivor"))
    assert (surv["cluster_id"] == surv["file_id"]).all() and (surv["est_similarity"] == 1.0).all()
    # Copies have stars=10 > originals' 0..4, so the copy survives (stars are unique per cluster).
    stars = {r["file_id"]: r["stars"] for r in near_dup_corpus["recs"]}
    for cid, members in cl.group_by("cluster_id").agg(pl.col("file_id")).iter_rows():
        assert stars[cid] == max(stars[m] for m in members)
    assert sum(s.endswith("#near") for s in surv["file_id"]) >= 10
    assert cl["est_similarity"].min() > 0.95
    assert cl["verified_similarity"].is_null().all()


def test_survivor_policy_stars_then_commit_time_then_id(tmp_path: Path) -> None:
    (_, text), (_, other) = _real_files(2, min_lines=300)[:2]
    t = [dt.datetime(2023, m, 1, tzinfo=UTC) for m in (1, 6, 9)]
    recs = [
        # cluster 1: stars decide (null stars rank last)
        {"file_id": "a1", "content": text, "stars": None, "commit_time": t[2]},
        {"file_id": "a2", "content": text + "\n", "stars": 3, "commit_time": t[0]},
        {"file_id": "a3", "content": text + "\n\n", "stars": 7, "commit_time": t[0]},
        # cluster 2: equal stars -> latest commit wins; then ids
        {"file_id": "b1", "content": other, "stars": 5, "commit_time": t[0]},
        {"file_id": "b2", "content": other, "stars": 5, "commit_time": t[1]},
        {"file_id": "b3", "content": other, "stars": 5, "commit_time": None},
        # cluster 3: full tie -> smallest file_id
        {"file_id": "c2", "content": text[:-200], "stars": 1, "commit_time": t[1]},
        {"file_id": "c1", "content": text[:-200], "stars": 1, "commit_time": t[1]},
    ]
    params = FuzzyDedupParams(num_perm=256, bands=32, rows=8)
    res = run_fuzzy_dedup(_write_shards(recs, tmp_path / "in", 2), tmp_path / "w", params)
    cl = _clusters(res)
    surv = {r["file_id"]: r["survivor_id"] for r in cl.iter_rows(named=True)}
    # text / text+"\n" / text[:-200] are near-identical -> one cluster; survivor = a3 (7 stars).
    assert surv["a1"] == surv["a2"] == surv["c1"] == surv["c2"] == "a3"
    assert surv["b1"] == surv["b3"] == "b2"
    assert res.stats["clusters"] == 2 and res.stats["removed"] == 6


def test_tie_break_by_smallest_id(tmp_path: Path) -> None:
    (_, text) = _real_files(1)[0]
    recs = [{"file_id": f"id{i}", "content": text, "stars": None, "commit_time": None} for i in (3, 1, 2)]
    res = run_fuzzy_dedup(
        _write_shards(recs, tmp_path / "in", 2),
        tmp_path / "w",
        FuzzyDedupParams(num_perm=128, bands=16, rows=8),
    )
    assert set(_clusters(res)["survivor_id"]) == {"id1"}


def test_determinism_workers_and_shard_order(tmp_path: Path) -> None:
    files = _real_files(24)
    recs = []
    for i, (name, text) in enumerate(files):
        recs.append({"file_id": name, "content": text, "stars": i, "commit_time": None})
        recs.append(
            {
                "file_id": name + "~",
                "content": _edit_lines(text, 2, seed=i),
                "stars": 24 - i,
                "commit_time": None,
            }
        )
    paths = _write_shards(recs, tmp_path / "in", n_shards=4, row_group_size=8)
    base = FuzzyDedupParams(num_perm=256, bands=32, rows=8, batch_rows=8, verify_jaccard=0.5)
    r1 = run_fuzzy_dedup(paths, tmp_path / "w1", base)
    r2 = run_fuzzy_dedup(paths, tmp_path / "w2", FuzzyDedupParams(**{**base.__dict__, "workers": 2}))
    r3 = run_fuzzy_dedup(list(reversed(paths)), tmp_path / "w3", base)
    c1, c2, c3 = _clusters(r1), _clusters(r2), _clusters(r3)
    assert c1.height >= 2 * len(files) - 2
    assert c1.equals(c2) and c1.equals(c3)
    b1 = pl.read_parquet(tmp_path / "w1" / "bands").sort("file_id", "band")
    b2 = pl.read_parquet(tmp_path / "w2" / "bands").sort("file_id", "band")
    assert b1.equals(b2)
    for k in ("input", "kept", "removed", "candidate_edges", "verified_edges", "clusters"):
        assert r1.stats[k] == r2.stats[k] == r3.stats[k], k


def test_verification_drops_false_positive_edges(tmp_path: Path) -> None:
    """64 bands x 1 row is very loose LSH: moderately similar files collide; Jaccard check prunes."""
    files = _real_files(12, min_lines=300)
    recs = []
    for i, (name, text) in enumerate(files):
        recs.append({"file_id": name, "content": text, "stars": 1, "commit_time": None})
        recs.append(
            {
                "file_id": name + "#half",
                "content": _edit_lines(text, 10_000, seed=i)[: len(text) // 2] + text[len(text) // 2 :],
                "stars": 0,
                "commit_time": None,
            }
        )
        recs.append(
            {
                "file_id": name + "#near",
                "content": _edit_lines(text, 1, seed=i),
                "stars": 0,
                "commit_time": None,
            }
        )
    paths = _write_shards(recs, tmp_path / "in", 2)
    loose = FuzzyDedupParams(num_perm=64, bands=64, rows=1)
    raw = run_fuzzy_dedup(paths, tmp_path / "raw", loose)
    ver = run_fuzzy_dedup(
        paths, tmp_path / "ver", FuzzyDedupParams(num_perm=64, bands=64, rows=1, verify_jaccard=0.8)
    )
    assert ver.stats["verified_edges"] < raw.stats["candidate_edges"] == ver.stats["candidate_edges"]
    raw_c, ver_c = _clusters(raw), _clusters(ver)
    sets = dict(
        zip([r["file_id"] for r in recs], shingle_hashes([r["content"] for r in recs], loose), strict=True)
    )
    low = {n + "#half" for n, _ in files if exact_jaccard(sets[n], sets[n + "#half"]) < 0.8}
    assert len(low) >= 6
    raw_of = dict(zip(raw_c["file_id"].to_list(), raw_c["cluster_id"].to_list(), strict=True))
    cluster_of = dict(zip(ver_c["file_id"].to_list(), ver_c["cluster_id"].to_list(), strict=True))
    # Without verification the loose LSH merges dissimilar halves into the original's cluster ...
    assert sum(raw_of.get(h) == raw_of.get(h[: -len("#half")]) is not None for h in low) >= len(low) // 2
    # ... with verification none of them stays with its original.
    assert all(
        cluster_of.get(h) is None or cluster_of.get(h) != cluster_of.get(h[: -len("#half")]) for h in low
    )
    for name, _ in files:
        assert cluster_of[name] == cluster_of[name + "#near"]
    assert (ver_c["verified_similarity"] >= 0.8).all()


def test_empty_and_all_short_inputs(tmp_path: Path) -> None:
    recs = [{"file_id": f"s{i}", "content": "a b c", "stars": 1, "commit_time": None} for i in range(5)]
    res = run_fuzzy_dedup(
        _write_shards(recs, tmp_path / "in", 2),
        tmp_path / "w",
        FuzzyDedupParams(num_perm=64, bands=8, rows=8),
    )
    assert res.stats["too_short"] == 5 and res.stats["removed"] == 0 and res.stats["kept"] == 5
    assert pl.read_parquet(res.clusters_path).height == 0 and res.removed_id_set() == set()
