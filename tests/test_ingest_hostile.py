"""Hostile repository trees: symlinks out of the repo, non-UTF-8 names, FIFOs, races after the walk.

Every case runs on a real file tree in tmp, through the real core reader and/or real Dagster
``materialize`` of ``source_index`` -> ``raw_code`` -> ``preprocessed_code``; each bad file
must end as a dropped decision row with its own reason, and nothing outside the repo is read.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from opencoder_assets.core.ingest import (
    IngestError,
    IngestStats,
    escape_fs_path,
    iter_folder_index,
    iter_indexed_file_batches,
    read_repo_file,
    unescape_fs_path,
)
from tests.conftest import copy_into, stdlib_files
from tests.test_foundation import _assert_accounting, _decisions, run_ingest

SECRET = b"TOP-SECRET-OUTSIDE-THE-REPO 7f3a9c"


def _raw_rows(res, partition: str = "python") -> list[dict]:
    return pq.read_table(res["storage"].shards("raw_code", partition)).to_pylist()


def _no_secret_read(res) -> None:
    for partition in ("python", "text") if res["storage"].has("raw_code", "text") else ("python",):
        for row in _raw_rows(res, partition):
            assert SECRET not in (row["raw"] or b""), row["path"]


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    """Files next to (not inside) the repositories: what a malicious link would exfiltrate."""
    out = tmp_path / "outside"
    (out / "dir").mkdir(parents=True)
    (out / "secret.py").write_bytes(b"API_KEY = '" + SECRET + b"'\n")
    (out / "id_rsa.py").write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----\n" + SECRET + b"\n")
    (out / "dir" / "vendored.py").write_bytes(b"def leaked():\n    return '" + SECRET + b"'\n")
    return out


# ----------------------------------------------------------------------------- 1. symlinks
def test_symlinks_never_lead_outside_the_repo(tmp_path: Path, outside: Path, pipeline_resources) -> None:
    root = tmp_path / "repos"
    repo = root / "alpha"
    copy_into(repo, stdlib_files(3), "pkg/")
    real = sorted((repo / "pkg").iterdir())[0]
    os.symlink(outside / "secret.py", repo / "abs_link.py")  # absolute target outside
    os.symlink("../../outside/id_rsa.py", repo / "rel_link.py")  # relative target outside
    os.symlink("/etc/passwd", repo / "passwd.py")
    os.symlink(f"pkg/{real.name}", repo / "alias.py")  # inside: followed
    os.symlink("../pkg/../../alpha/alias.py", repo / "pkg" / "chain.py")  # link -> link -> inside file
    os.symlink(outside / "dir", repo / "vendor")  # symlinked directory: not walked
    os.symlink(".", repo / "pkg" / "self")  # directory loop: must not hang the walk
    os.symlink("loop_b.py", repo / "loop_a.py")
    os.symlink("loop_a.py", repo / "loop_b.py")
    res = pipeline_resources([root], None)
    index, result = run_ingest(res)
    assert result.success
    pre = _decisions(res["metrics"], "preprocessed_code")
    for name in ("abs_link.py", "rel_link.py", "passwd.py"):
        assert pre[f"alpha/{name}"][:2] == ("dropped", "unreadable:symlink_outside_repo"), name
    assert pre["alpha/loop_a.py"][:2] == ("dropped", "unreadable:symlink_loop")
    assert pre["alpha/alias.py"][0] == "kept" and pre["alpha/pkg/chain.py"][0] == "kept"
    assert not any(k.startswith(("alpha/vendor/", "alpha/pkg/self/")) for k in pre)
    raw = {r["path"]: r["raw"] for r in _raw_rows(res)}
    assert raw["alias.py"] == real.read_bytes()
    _no_secret_read(res)
    meta = next(e for e in index.get_asset_materialization_events()
                if e.asset_key.to_user_string() == "source_index").materialization.metadata
    assert meta["skipped_symlinked_dirs"].value == 2
    _assert_accounting(res["metrics"])


def test_parent_dir_swapped_for_a_symlink_after_the_walk(tmp_path: Path, outside: Path) -> None:
    """TOCTOU: the index was built, then ``pkg`` became a link to an outside dir."""
    root = tmp_path / "repos"
    (root / "alpha" / "pkg").mkdir(parents=True)
    (root / "alpha" / "pkg" / "vendored.py").write_text("x = 1\n")
    (root / "alpha" / "top.py").write_text("y = 2\n")
    index = list(iter_folder_index(root))
    shutil.rmtree(root / "alpha" / "pkg")
    os.symlink(outside / "dir", root / "alpha" / "pkg")
    (root / "alpha" / "top.py").unlink()
    os.symlink(outside / "secret.py", root / "alpha" / "top.py")  # file swapped for an outside link
    rows = {r["path"]: r for t in iter_indexed_file_batches(iter(index)) for r in t.to_pylist()}
    assert rows["pkg/vendored.py"]["read_error"] == "symlinked_parent_dir"
    assert rows["top.py"]["read_error"] == "symlink_outside_repo"
    assert all(r["raw"] is None for r in rows.values())


# ------------------------------------------------------------------------- 2. non-UTF-8 names
def test_non_utf8_file_and_repo_names(tmp_path: Path, pipeline_resources) -> None:
    root = tmp_path / "repos"
    copy_into(root / "alpha", stdlib_files(2))
    bad_repo = os.path.join(os.fsencode(root), b"r\xe9po")
    os.makedirs(os.path.join(bad_repo, b"sub\xff"))
    with open(os.path.join(bad_repo, b"sub\xff", b"caf\xe9.py"), "wb") as fh:
        fh.write(b"latin1_name = 1\n")
    with open(os.path.join(os.fsencode(root), b"alpha", "café.py".encode()), "wb") as fh:
        fh.write(b"utf8_name = 2\n")
    with open(os.path.join(os.fsencode(root), b"alpha", b"caf\\xc3\\xa9.py"), "wb") as fh:
        fh.write(b"backslash_name = 3\n")  # literal backslashes: must not collide with the escapes
    res = pipeline_resources([root], None)
    index, result = run_ingest(res)
    assert result.success
    raw = {(r["repo"], r["path"]): r for r in _raw_rows(res)}
    assert raw[("r\\xe9po", "sub\\xff/caf\\xe9.py")]["raw"] == b"latin1_name = 1\n"
    assert raw[("alpha", "café.py")]["raw"] == b"utf8_name = 2\n"
    assert raw[("alpha", "caf\\\\xc3\\\\xa9.py")]["raw"] == b"backslash_name = 3\n"
    assert len({r["file_id"] for r in raw.values()}) == len(raw)
    assert unescape_fs_path("sub\\xff/caf\\xe9.py") == b"sub\xff/caf\xe9.py"
    pre = _decisions(res["metrics"], "preprocessed_code")
    assert pre["r\\xe9po/sub\\xff/caf\\xe9.py"][0] == "kept"
    _assert_accounting(res["metrics"])


def test_escape_round_trips_and_errors_name_the_file(tmp_path: Path) -> None:
    for raw in [b"a.py", b"caf\xe9.py", b"a\\b", b"a\\x41", "ü/é.py".encode(), b"\xed\xa0\x80", b"\xff\\\xfe"]:
        text = escape_fs_path(raw)
        text.encode("utf-8")  # storable as an Arrow string
        assert unescape_fs_path(text) == raw
    assert escape_fs_path("caf\udce9.py") == "caf\\xe9.py"  # str from os.walk (surrogateescape)
    with pytest.raises(ValueError, match="bad\\\\\\\\q"):
        unescape_fs_path("bad\\q")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "a.py").write_text("x = 1\n")
    table = next(iter(iter_folder_index(tmp_path)))
    broken = table.set_column(table.schema.get_field_index("path"), "path", [["other.py"]])
    with pytest.raises(IngestError, match="a.py"):
        list(iter_indexed_file_batches(iter([broken])))


# ------------------------------------------------------------------- 3. FIFOs and other non-files
@pytest.mark.timeout(60)
def test_fifo_named_py_is_dropped_without_blocking(tmp_path: Path, pipeline_resources) -> None:
    root = tmp_path / "repos"
    copy_into(root / "alpha", stdlib_files(2))
    os.mkfifo(root / "alpha" / "pipe.py")
    os.symlink("pipe.py", root / "alpha" / "to_pipe.py")
    os.symlink("/dev/zero", root / "alpha" / "zero.py")  # endless device, outside the repo
    res = pipeline_resources([root], None)
    _, result = run_ingest(res)
    assert result.success
    pre = _decisions(res["metrics"], "preprocessed_code")
    assert pre["alpha/pipe.py"][:2] == ("dropped", "unreadable:not_regular_file:fifo")
    assert pre["alpha/to_pipe.py"][:2] == ("dropped", "unreadable:not_regular_file:fifo")
    assert pre["alpha/zero.py"][:2] == ("dropped", "unreadable:symlink_outside_repo")
    _assert_accounting(res["metrics"])


@pytest.mark.timeout(60)
def test_file_swapped_for_a_fifo_after_the_walk(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "a.py").write_text("x = 1\n")
    index = list(iter_folder_index(tmp_path))
    (tmp_path / "r" / "a.py").unlink()
    os.mkfifo(tmp_path / "r" / "a.py")
    stats = IngestStats()
    rows = [r for t in iter_indexed_file_batches(iter(index), stats=stats) for r in t.to_pylist()]
    assert rows[0]["read_error"] == "not_regular_file:fifo"
    assert stats.read_errors == {"not_regular_file:fifo": 1}
    assert read_repo_file(tmp_path / "r", "a.py", 1024) == (None, 0, "not_regular_file:fifo")
    assert read_repo_file(tmp_path / "r", "../r/a.py", 1024)[2] == "path_outside_repo"
    (tmp_path / "r" / "a.py").unlink()
    assert read_repo_file(tmp_path / "r", "a.py", 1024)[2] == "missing_since_index"


def test_sensor_scan_names_non_utf8_repos_like_the_index(tmp_path: Path) -> None:
    """The change sensor's cursor (JSON stored by Dagster) and run keys must be valid UTF-8 too."""
    from resources import CodeSources
    from sensors.code_sensors import _cursor_json, affected_partitions, scan_sources

    repo = os.path.join(os.fsencode(tmp_path), b"r\xe9po")
    os.makedirs(repo)
    with open(os.path.join(repo, b"m\xff.py"), "wb") as fh:
        fh.write(b"x = 1\n")
    sources = CodeSources(folders=[str(tmp_path)])
    scan = scan_sources(sources)
    assert list(scan.repos) == ["r\\xe9po"] == [r["repo"] for t in iter_folder_index(tmp_path) for r in t.to_pylist()]
    _cursor_json(scan).encode("utf-8")
    changed = affected_partitions(scan, {}, sources)
    assert changed == {"repo:r\\xe9po": {"python"}}
    for key in changed:
        key.encode("utf-8")
