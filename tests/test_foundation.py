"""Foundation: ingestion of real folders/tables, bad input, exact dedup keep policy, accounting."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import Definitions, materialize

from opencoder_assets.core.ingest import IngestError, TableMapping, iter_table_batches
from opencoder_assets.definitions import code_assets, defs
from tests.conftest import copy_into, stdlib_files

INGEST_ASSETS = [a for a in code_assets if a.key.to_user_string() in
                 {"raw_code", "preprocessed_code", "exact_deduped_code"}]
SOURCE_INDEX = [a for a in code_assets if a.key.to_user_string() == "source_index"]


def run_ingest(resources, partition: str = "python"):
    """source_index (global) then the partitioned steps, as the UI or the CLI would."""
    index = materialize(SOURCE_INDEX, resources=resources)
    assert index.success
    result = materialize(INGEST_ASSETS, resources=resources, partition_key=partition)
    return index, result


def _git_repo(path: Path, when: str) -> None:
    env = {**os.environ, "GIT_COMMITTER_DATE": when, "GIT_AUTHOR_DATE": when,
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "init"], check=True, env=env)


def _decisions(metrics, step: str, partition: str = "python") -> dict[str, tuple]:
    rows = metrics.query(
        "SELECT repo || '/' || path, decision, reason, detail FROM file_decisions WHERE step = ? AND partition = ?",
        [step, partition],
    )
    return {r[0]: r[1:] for r in rows}


def _assert_accounting(metrics) -> None:
    rows = metrics.query("SELECT step, partition, input_count, kept, dropped FROM latest_step_runs")
    assert rows
    for step, partition, n_in, kept, dropped in rows:
        assert kept + dropped == n_in, (step, partition)
        n_dec = metrics.query("SELECT count(*) FROM file_decisions WHERE step=? AND partition=?", [step, partition])
        assert n_dec[0][0] == n_in


@pytest.fixture()
def bad_corpus(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "repos"
    real = stdlib_files(12)
    copy_into(root / "alpha", real[:8], "pkg/")
    copy_into(root / "beta", real[4:12], "lib/")  # 4 exact copies of alpha's files
    copy_into(root / "gamma", real[:2])  # no manifest entry, but a git repo
    _git_repo(root / "gamma", "2021-05-06T07:08:09+00:00")
    bad = root / "alpha" / "bad"
    bad.mkdir()
    (bad / "empty.py").write_text("")
    (bad / "latin1.py").write_bytes("# caf\xe9\nx = 1\n".encode("latin-1"))
    (bad / "nul.py").write_bytes(b"x = 1\n\x00\x01\x02binary\n")
    (bad / "huge.py").write_bytes((b"x = 1  # padding\n" * 600_000)[: 9 * 1024 * 1024])
    os.symlink("loop_b.py", bad / "loop_a.py")
    os.symlink("loop_a.py", bad / "loop_b.py")
    os.symlink("does_not_exist.py", bad / "dangling.py")
    (bad / "crlf.py").write_bytes(real[0].read_bytes().replace(b"\n", b"\r\n"))
    (bad / "notes.unknownext").write_text("not code")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"repos": [
        {"name": "alpha", "stars": 10, "commit_time": "2020-01-01T00:00:00Z"},
        {"name": "beta", "stars": 500, "commit_time": "2019-01-01T00:00:00Z"},
    ]}))
    return root, manifest


def test_folder_ingestion_survives_bad_input(bad_corpus, pipeline_resources):
    root, manifest = bad_corpus
    res = pipeline_resources([root], manifest)
    index, result = run_ingest(res)
    assert result.success
    metrics = res["metrics"]
    pre = _decisions(metrics, "preprocessed_code")
    assert pre["alpha/bad/empty.py"][:2] == ("dropped", "empty")
    assert pre["alpha/bad/latin1.py"][:2] == ("dropped", "invalid_utf8")
    assert pre["alpha/bad/nul.py"][:2] == ("dropped", "binary")
    assert pre["alpha/bad/huge.py"][:2] == ("dropped", "too_large")
    assert pre["alpha/bad/loop_a.py"][:2] == ("dropped", "unreadable:symlink_loop")
    assert pre["alpha/bad/dangling.py"][:2] == ("dropped", "unreadable:dangling_symlink")
    assert pre["alpha/bad/crlf.py"][0] == "kept"
    # the unknown extension went to the "other" partition, not python
    assert "alpha/bad/notes.unknownext" not in pre
    # gamma has no manifest entry: ingested, commit time read from git, stars unknown
    raw = pq.read_table(res["storage"].shards("raw_code", "python")).to_pylist()
    gamma = [r for r in raw if r["repo"] == "gamma"]
    assert len(gamma) == 2 and all(r["stars"] is None for r in gamma)
    assert gamma[0]["commit_time"] == dt.datetime(2021, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
    mats = {e.asset_key.to_user_string(): e.materialization.metadata
            for e in [*index.get_asset_materialization_events(), *result.get_asset_materialization_events()]}
    assert mats["source_index"]["repos_without_manifest"].value == ["gamma"]
    assert "invalid_utf8" in {r.data["reason"] for r in mats["preprocessed_code"]["drop_reasons"].records}
    _assert_accounting(metrics)


def test_exact_dedup_keeps_top_ranked_copy_and_records_pair(bad_corpus, pipeline_resources):
    root, manifest = bad_corpus
    res = pipeline_resources([root], manifest)
    assert run_ingest(res)[1].success
    ex = _decisions(res["metrics"], "exact_deduped_code")
    real = stdlib_files(12)
    ids = dict(res["metrics"].query(
        "SELECT repo || '/' || path, file_id FROM file_decisions WHERE step='exact_deduped_code'"))
    # files 4..7 exist in alpha (10 stars) and beta (500 stars): beta's copy wins on stars
    for f in real[4:8]:
        assert ex[f"beta/lib/{f.name}"][0] == "kept"
        assert ex[f"alpha/pkg/{f.name}"] == ("dropped", "exact_duplicate", f"duplicate_of:{ids[f'beta/lib/{f.name}']}")
    # files 0..1 exist in alpha (10 stars) and gamma (unknown stars): alpha wins (unknown ranks last)
    for f in real[:2]:
        assert ex[f"alpha/pkg/{f.name}"][0] == "kept"
        assert ex[f"gamma/{f.name}"][1] == "exact_duplicate"
    # the CRLF copy of real[0] is an exact duplicate after newline normalisation
    assert ex["alpha/bad/crlf.py"][1] == "exact_duplicate"
    kept = pq.read_table(res["storage"].shards("exact_deduped_code", "python"))
    assert len(set(kept["sha256"].to_pylist())) == kept.num_rows
    _assert_accounting(res["metrics"])


def test_exact_dedup_tie_breaks_commit_time_then_file_id(tmp_path, pipeline_resources):
    root = tmp_path / "repos"
    f = stdlib_files(1)
    for name in ("r1", "r2", "r3"):
        copy_into(root / name, f)
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"repos": [
        {"name": "r1", "stars": 5, "commit_time": "2020-01-01T00:00:00Z"},
        {"name": "r2", "stars": 5, "commit_time": "2022-01-01T00:00:00Z"},
        {"name": "r3", "stars": 5, "commit_time": "2022-01-01T00:00:00Z"},
    ]}))
    res = pipeline_resources([root], manifest)
    assert run_ingest(res)[1].success
    rows = res["metrics"].query(
        "SELECT repo, file_id, decision FROM file_decisions WHERE step='exact_deduped_code' ORDER BY repo")
    by_repo = {r[0]: (r[1], r[2]) for r in rows}
    assert by_repo["r1"][1] == "dropped"  # older commit loses
    winner = min(("r2", "r3"), key=lambda r: by_repo[r][0])  # same stars & time: smallest id wins
    assert by_repo[winner][1] == "kept"
    assert sum(1 for v in by_repo.values() if v[1] == "kept") == 1


def _stack_table(tmp_path: Path) -> Path:
    files = stdlib_files(6, start=20)
    rows = {
        "content": [f.read_text() for f in files] + [files[0].read_text()],
        "path": [f"src/{f.name}" for f in files] + [f"vendor/{files[0].name}"],
        "repo_name": ["org/a"] * 3 + ["org/b"] * 3 + ["org/c"],
        "star_events_count": [3, 3, 3, 7, 7, 7, 99],
        "committer_date": ["2023-01-01T00:00:00Z"] * 7,
    }
    path = tmp_path / "stack.parquet"
    pq.write_table(pa.table(rows), path)
    return path


def test_parquet_source_with_column_mapping(tmp_path, pipeline_resources):
    table = _stack_table(tmp_path)
    res = pipeline_resources([], None, [table])
    from resources import CodeSources

    res["sources"] = CodeSources(folders=[], manifest=None, tables=[str(table)],
                                 column_map={"stars": "star_events_count", "commit_time": "committer_date"})
    assert run_ingest(res)[1].success
    ex = _decisions(res["metrics"], "exact_deduped_code")
    assert len(ex) == 7
    first = stdlib_files(6, start=20)[0].name
    assert ex[f"org/c/vendor/{first}"][0] == "kept"  # 99 stars beats 3
    assert ex[f"org/a/src/{first}"][1] == "exact_duplicate"
    _assert_accounting(res["metrics"])


def test_jsonl_source_and_missing_column_error(tmp_path):
    files = stdlib_files(3, start=40)
    jsonl = tmp_path / "pages.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": f.read_text(), "file": f.name, "repo": "x/y"}) for f in files))
    mapping = TableMapping.from_mapping({"content": "text", "path": "file", "repo": "repo",
                                         "stars": None, "commit_time": None})
    tables = list(iter_table_batches([jsonl], partition="python", mapping=mapping))
    assert sum(t.num_rows for t in tables) == 3
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"content": ["x"], "repo_name": ["r"]}), bad)
    with pytest.raises(IngestError, match=r"bad\.parquet: missing column 'path' \(path\)"):
        list(iter_table_batches([bad], partition="python"))


def test_rematerialize_replaces_partition_atomically(tmp_path, pipeline_resources):
    root = tmp_path / "repos"
    copy_into(root / "a", stdlib_files(5))
    res = pipeline_resources([root], None)
    assert run_ingest(res)[1].success
    first = res["storage"].current_dir("exact_deduped_code", "python")
    copy_into(root / "a", stdlib_files(3, start=5))
    assert run_ingest(res)[1].success
    second = res["storage"].current_dir("exact_deduped_code", "python")
    assert first != second and first.exists()  # the previous version is retained (keep_versions=2)
    assert pq.read_table(res["storage"].shards("exact_deduped_code", "python")).num_rows == 8
    assert run_ingest(res)[1].success
    third = res["storage"].current_dir("exact_deduped_code", "python")
    assert third != second and second.exists() and not first.exists()
    latest = third.parent / "latest"
    assert latest.is_symlink() and latest.resolve() == third.resolve()
    n = res["metrics"].query("SELECT count(*) FROM file_decisions WHERE step='exact_deduped_code'")[0][0]
    assert n == 8  # old rows replaced, not appended


def test_definitions_load():
    Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    assert {"raw_code", "preprocessed_code", "exact_deduped_code"} <= {
        k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    job = defs.resolve_job_def("refinecode_job")
    assert job.partitions_def is not None and "python" in job.partitions_def.get_partition_keys()


def test_parallel_partition_runs_multiprocess_executor(tmp_path):
    """Three partition runs at once in separate processes, one corpus root and one metrics store."""
    from tests.conftest import INCLUDE

    data = tmp_path / "data"
    repos = data / "default_corpus" / "repos"
    copy_into(repos / "cpy", stdlib_files(30))
    copy_into(repos / "cpy", sorted(INCLUDE.glob("*.h"))[:20], "Include/")
    (repos / "web").mkdir(parents=True)
    # real HTML nobody here wrote, on any machine: pydoc's rendering of five stdlib modules
    import importlib
    import pydoc

    for name in ("json", "heapq", "bisect", "textwrap", "shlex"):
        module = importlib.import_module(name)
        page = pydoc.HTMLDoc().page(f"Python: module {name}", pydoc.HTMLDoc().docmodule(module))
        (repos / "web" / f"{name}.html").write_text(page, encoding="utf-8")
    (data / "default_corpus" / "manifest.json").write_text(json.dumps({"repos": [{"name": "cpy", "stars": 1}]}))
    env = {**os.environ, "OPENCODER_DATA": str(data), "DAGSTER_HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    from dagster import DagsterInstance

    DagsterInstance.from_config(str(tmp_path / "home")).dispose()  # create the run DB once, not racily
    dagster = str(Path(os.sys.executable).parent / "dagster")
    subprocess.run([dagster, "job", "execute", "-m", "opencoder_assets.definitions", "-j", "source_index_job"],
                   env=env, check=True, capture_output=True)
    procs = [
        subprocess.Popen(
            [str(Path(os.sys.executable).parent / "dagster"), "job", "execute", "-m", "opencoder_assets.definitions",
             "-j", "ingest_job", "--tags", json.dumps({"dagster/partition": p})],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for p in ("python", "c", "html")
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out[-3000:]
        assert "RUN_SUCCESS" in out
    from resources import MetricsStore

    metrics = MetricsStore(db_path=str(data / "metrics.duckdb"))
    parts = {r[0] for r in metrics.query("SELECT DISTINCT partition FROM step_runs")}
    assert {"python", "c", "html"} <= parts
    raw = dict(metrics.query("SELECT partition, input_count FROM latest_step_runs WHERE step = 'raw_code'"))
    assert raw == {"python": 30, "c": 20, "html": 5}, raw  # every partition really read its files
    _assert_accounting(metrics)
