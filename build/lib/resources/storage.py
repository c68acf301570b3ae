"""Corpus storage: versioned Parquet directories per (asset, partition) with an atomic pointer.

Why: assets pass Parquet *paths*, never frames, and re-materializing a partition must replace it
atomically, also under faults. The publication protocol (docs/architecture.md, Publication):

1. ``writer()`` takes an exclusive per-(asset, partition) lock, so two runs of one partition never
   interleave (the second waits, then writes its own version), and opens a *staging* directory
   ``.staging-v-…`` that no reader or glob (``v-*``) ever sees.
2. ``commit()`` writes ``_MANIFEST.json`` (sha256 + size of every file, the step's counts and the
   metrics tables it carries), renames the staging directory to ``v-…``, then swaps ``CURRENT`` with
   ``os.replace``. The metrics store is a set of views over the manifests of *current* versions,
   so the data and its metrics agree after a crash at any point: before the swap nothing changed,
   after it both changed.
3. Old versions beyond ``keep_versions`` and abandoned staging dirs are removed under the lock, so
   clean-up never deletes a version that is being written.

Readers validate ``CURRENT`` (exact version-name pattern, directory present, manifest present) and
``verify_file`` checks a shard's sha256 against the manifest, so a corrupt pointer or a flipped bit
is an error naming the file, never an empty or different partition.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource

DEFAULT_DATA_ROOT = os.environ.get("OPENCODER_DATA", "data")

MANIFEST = "_MANIFEST.json"
POINTER = "CURRENT"
LOCK = ".lock"
HISTORY = "HISTORY"
LATEST = "latest"
VERSION_RE = re.compile(r"v-\d{20}-[0-9a-f]{8}")
#: Sub-directory of a staging version for scratch files; removed before the manifest is written.
WORK_DIR = "_work"

_SAFE = re.compile(r"[^A-Za-z0-9_.+-]")


def _safe(name: str) -> str:
    return _SAFE.sub("_", name) or "_"


class PublicationError(RuntimeError):
    """A published version is not what its pointer or manifest says (the message names the file)."""


class CorruptShardError(PublicationError):
    """A file's bytes differ from the sha256 its version's manifest recorded."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@lru_cache(maxsize=256)
def _manifest_cached(path: str, mtime_ns: int) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def read_manifest(version_dir: Path) -> dict[str, Any]:
    """The manifest of a committed version (cached by mtime); an error naming it if unreadable."""
    path = version_dir / MANIFEST
    try:
        return _manifest_cached(str(path), path.stat().st_mtime_ns)
    except FileNotFoundError:
        raise PublicationError(f"{path} is missing: {version_dir} is not a complete version") from None
    except (OSError, ValueError) as exc:
        raise PublicationError(f"{path} is unreadable: {exc}") from exc


def verify_file(path: Path) -> None:
    """Check ``path`` against the sha256 in its version's manifest (files of committed versions only)."""
    path = Path(path)
    manifest = read_manifest(path.parent)
    entry = manifest.get("files", {}).get(path.name)
    if entry is None:
        raise PublicationError(f"{path} is not listed in {path.parent / MANIFEST}")
    actual = sha256_file(path)
    if actual != entry["sha256"]:
        raise CorruptShardError(f"{path}: sha256 {actual[:16]}… differs from the manifest's "
                                f"{entry['sha256'][:16]}… (corrupt or modified after publication)")


def verify_if_published(path: Path) -> None:
    """``verify_file`` for a file of a committed version; files being written have no manifest yet."""
    if (Path(path).parent / MANIFEST).is_file():
        verify_file(path)


def current_version_dir(base: Path) -> Path:
    """Resolve and validate ``base/CURRENT``; ``FileNotFoundError`` if never published."""
    pointer = base / POINTER
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        raise FileNotFoundError(f"{pointer} does not exist: nothing published yet; materialize it first") from None
    if not VERSION_RE.fullmatch(name):
        raise PublicationError(f"{pointer} names {name[:80]!r}, which is not a version name (v-<ns>-<hex8>)")
    version_dir = base / name
    if not version_dir.is_dir():
        raise PublicationError(f"{pointer} names {name}, but {version_dir} does not exist")
    if not (version_dir / MANIFEST).is_file():
        raise PublicationError(f"{pointer} names {name}, but {version_dir / MANIFEST} is missing (incomplete version)")
    return version_dir


@contextlib.contextmanager
def _locked(lock_path: Path, timeout_s: float, what: str) -> Iterator[None]:
    with open(lock_path, "a+") as fh:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    fh.seek(0)
                    holder = fh.read().strip() or "unknown"
                    raise TimeoutError(f"{what}: {lock_path} is held by another writer ({holder}) "
                                       f"for more than {timeout_s:.0f}s") from None
                time.sleep(0.05)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid={os.getpid()}")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class PartitionWriter:
    """A version being written (under the partition's lock); ``commit()`` publishes it atomically.

    Use as a context manager: any exception inside the block aborts (the staging directory is
    removed, the published version and its metrics are untouched, the lock is released).
    """

    def __init__(self, base: Path, version: str, *, keep_versions: int = 2, lock_timeout_s: float = 3600.0) -> None:
        self.base = base
        self.version = version
        self.keep_versions = max(1, keep_versions)
        self._lock_cm = _locked(base / LOCK, lock_timeout_s, f"writing {base}")
        self._lock_cm.__enter__()
        self.staging = base / f".staging-{version}"
        self.final = base / version
        try:
            self.staging.mkdir(parents=True, exist_ok=False)
        except BaseException:
            self._release()
            raise
        self._committed = False
        self._closed = False
        self.record: dict[str, Any] = {}

    @property
    def path(self) -> Path:
        """Where files go while writing; the published directory once committed."""
        return self.final if self._committed else self.staging

    @property
    def work_dir(self) -> Path:
        """Scratch space inside the version, deleted before publication."""
        d = self.staging / WORK_DIR
        d.mkdir(exist_ok=True)
        return d

    def shard_path(self, index: int | str, stem: str = "part") -> Path:
        suffix = f"{index:05d}" if isinstance(index, int) else index
        return self.path / f"{stem}-{suffix}.parquet"

    def _release(self) -> None:
        if not self._closed:
            self._closed = True
            self._lock_cm.__exit__(None, None, None)

    def commit(self, record: dict[str, Any] | None = None) -> Path:
        """Manifest -> rename staging -> swap CURRENT -> clean old versions. ``record`` (counts,
        tables, step info) is stored in the manifest, where the metrics store reads it."""
        if self._committed or self._closed:
            raise PublicationError(f"{self.staging}: commit() after commit/abort")
        shutil.rmtree(self.staging / WORK_DIR, ignore_errors=True)
        files = {}
        for p in sorted(self.staging.iterdir()):
            if p.is_file():
                files[p.name] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        manifest = {"version": self.version, "created_ns": time.time_ns(), **self.record, **(record or {}),
                    "files": files}
        tmp = self.staging / (MANIFEST + ".tmp")
        with open(tmp, "w") as fh:
            json.dump(manifest, fh, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.staging / MANIFEST)
        os.rename(self.staging, self.final)
        try:
            pointer_tmp = self.base / f".CURRENT.{self.version}.tmp"
            with open(pointer_tmp, "w") as fh:
                fh.write(self.version)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(pointer_tmp, self.base / POINTER)
            _fsync_dir(self.base)
            with open(self.base / HISTORY, "a") as fh:
                fh.write(self.version + "\n")
            # a stable path for people and tools: <asset>/<partition>/latest -> v-... (relative)
            link_tmp = self.base / f".latest.{self.version}.tmp"
            os.symlink(self.version, link_tmp)
            os.replace(link_tmp, self.base / LATEST)
        except BaseException:
            # pointer not swapped: the renamed version is garbage, the old one stays published
            with contextlib.suppress(OSError):
                (self.base / f".CURRENT.{self.version}.tmp").unlink()
            shutil.rmtree(self.final, ignore_errors=True)
            self._release()
            raise
        self._committed = True
        try:
            self._collect_garbage()
        finally:
            self._release()
        return self.final

    def _collect_garbage(self) -> None:
        """Under the lock: keep the current version and the ``keep_versions - 1`` versions that
        were current before it (``HISTORY``); remove everything else -- versions of crashed
        writers that were never current, abandoned staging dirs, stray pointer temp files."""
        versions = sorted(p for p in self.base.iterdir() if p.is_dir() and VERSION_RE.fullmatch(p.name))
        history = [v for v in (self.base / HISTORY).read_text().split() if VERSION_RE.fullmatch(v)]
        keep: set[str] = set()
        for name in reversed(history):
            if len(keep) >= self.keep_versions:
                break
            if (self.base / name / MANIFEST).is_file():
                keep.add(name)
        keep.add(self.version)
        (self.base / HISTORY).write_text("".join(f"{v}\n" for v in history if v in keep))
        for p in versions:
            if p.name not in keep:
                shutil.rmtree(p, ignore_errors=True)
        for p in self.base.iterdir():
            if p.name.startswith(".staging-") or (p.name.startswith((".CURRENT.", ".latest.")) and p.name.endswith(".tmp")):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        p.unlink()

    def abort(self) -> None:
        if not self._committed:
            shutil.rmtree(self.staging, ignore_errors=True)
        self._release()

    def __enter__(self) -> PartitionWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or not self._committed:
            self.abort()


class CorpusStorage(ConfigurableResource):
    """Where every asset's Parquet shards live (a local or mounted filesystem path)."""

    root: str = os.path.join(DEFAULT_DATA_ROOT, "corpus")
    #: Complete versions kept per asset/partition (the current one plus older ones), so recent
    #: ``data_path`` metadata stays valid.
    keep_versions: int = 2
    lock_timeout_s: float = 3600.0

    def base_dir(self, asset: str, partition: str | None) -> Path:
        return Path(self.root).resolve() / _safe(asset) / _safe(partition or "__all__")

    def writer(self, asset: str, partition: str | None) -> PartitionWriter:
        """Lock the partition and open a new staging version (names sort by creation time)."""
        base = self.base_dir(asset, partition)
        base.mkdir(parents=True, exist_ok=True)
        version = f"v-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        return PartitionWriter(base, version, keep_versions=self.keep_versions, lock_timeout_s=self.lock_timeout_s)

    def current_dir(self, asset: str, partition: str | None) -> Path:
        """The published, validated version of a partition."""
        try:
            return current_version_dir(self.base_dir(asset, partition))
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{asset}[{partition}] has no published data under {self.base_dir(asset, partition)}; "
                "materialize it first"
            ) from None

    def manifest(self, asset: str, partition: str | None) -> dict[str, Any]:
        return read_manifest(self.current_dir(asset, partition))

    def shards(self, asset: str, partition: str | None, stem: str = "part") -> list[Path]:
        """The Parquet shards of the published version, in a stable order (as listed in its manifest)."""
        d = self.current_dir(asset, partition)
        names = read_manifest(d).get("files", {})
        prefix = f"{stem}-"
        return [d / n for n in sorted(names) if n.startswith(prefix) and n.endswith(".parquet")]

    def has(self, asset: str, partition: str | None) -> bool:
        return (self.base_dir(asset, partition) / POINTER).exists()
