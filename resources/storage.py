"""Corpus storage: versioned Parquet directories per (asset, partition) with an atomic pointer.

Why: assets pass Parquet *paths*, never frames, and re-materializing a partition must replace it
atomically. Every write goes to a fresh version directory; a tiny ``CURRENT`` file is swapped with
``os.replace`` (atomic on POSIX) once the version is complete, so readers never see a half-written
partition, and a failed run leaves the previous version untouched.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from pathlib import Path

from dagster import ConfigurableResource

DEFAULT_DATA_ROOT = os.environ.get("OPENCODER_DATA", "data")

_SAFE = re.compile(r"[^A-Za-z0-9_.+-]")


def _safe(name: str) -> str:
    return _SAFE.sub("_", name) or "_"


class PartitionWriter:
    """A version directory being written; ``commit()`` publishes it atomically."""

    def __init__(self, base: Path, version: str) -> None:
        self.base = base
        self.version = version
        self.path = base / version
        self.path.mkdir(parents=True, exist_ok=False)
        self._committed = False

    def shard_path(self, index: int, stem: str = "part") -> Path:
        return self.path / f"{stem}-{index:05d}.parquet"

    def commit(self, keep_versions: int = 1) -> Path:
        """Swap the CURRENT pointer to this version, then remove older versions."""
        pointer_tmp = self.base / f".CURRENT.{self.version}.tmp"
        pointer_tmp.write_text(self.version)
        os.replace(pointer_tmp, self.base / "CURRENT")
        self._committed = True
        versions = sorted(
            (p for p in self.base.iterdir() if p.is_dir() and p.name.startswith("v-")),
            key=lambda p: p.name,
        )
        for old in versions[: max(0, len(versions) - keep_versions)]:
            if old.name != self.version:
                shutil.rmtree(old, ignore_errors=True)
        return self.path

    def abort(self) -> None:
        if not self._committed:
            shutil.rmtree(self.path, ignore_errors=True)


class CorpusStorage(ConfigurableResource):
    """Where every asset's Parquet shards live (a local or mounted filesystem path)."""

    root: str = os.path.join(DEFAULT_DATA_ROOT, "corpus")

    def base_dir(self, asset: str, partition: str | None) -> Path:
        return Path(self.root).resolve() / _safe(asset) / _safe(partition or "__all__")

    def writer(self, asset: str, partition: str | None) -> PartitionWriter:
        """Open a new version directory; names sort by creation time so GC keeps the newest."""
        base = self.base_dir(asset, partition)
        base.mkdir(parents=True, exist_ok=True)
        version = f"v-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        return PartitionWriter(base, version)

    def current_dir(self, asset: str, partition: str | None) -> Path:
        """The published version of a partition; a clear error if it was never materialized."""
        base = self.base_dir(asset, partition)
        pointer = base / "CURRENT"
        if not pointer.exists():
            raise FileNotFoundError(
                f"{asset}[{partition}] has no published data under {base}; materialize it first"
            )
        return base / pointer.read_text().strip()

    def shards(self, asset: str, partition: str | None, stem: str = "part") -> list[Path]:
        """The Parquet shards of the published version, in a stable order."""
        return sorted(self.current_dir(asset, partition).glob(f"{stem}-*.parquet"))

    def has(self, asset: str, partition: str | None) -> bool:
        return (self.base_dir(asset, partition) / "CURRENT").exists()
