"""Export the final corpus in the layouts other curation and training tools read as they are.

Why: users of datatrove, dolma and NeMo Curator should take the RefineCode corpus without glue
code. Every format carries ``id`` (the stable file id), ``text`` and ``metadata`` (repo, path,
language, stars, commit time, sha256, bytes, source):

- ``parquet``: ``<out>/<partition>/part-*.parquet`` with columns ``id``, ``text``, ``metadata``
  (a struct) -- datatrove's ``ParquetReader`` and NeMo Curator's ``read_parquet`` take it;
- ``jsonl``: ``<out>/<partition>/part-*.jsonl`` with one ``{"id", "text", "metadata"}`` object a line
  (datatrove ``JsonlReader``, NeMo Curator ``read_json``);
- ``dolma``: ``<out>/documents/<partition>-*.json.gz``, dolma's document format (``id``, ``text``,
  ``source``, ``added``, ``created``, ``metadata``), ready for ``dolma tag`` / ``dolma mix``.

Output files are written to a temporary name and renamed, shard by shard, in a stable order.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq

Format = Literal["parquet", "jsonl", "dolma"]
FORMATS = ("parquet", "jsonl", "dolma")

META_COLUMNS = ["repo", "path", "language", "stars", "commit_time", "sha256", "size_bytes", "source"]
EXPORT_SCHEMA = pa.schema([
    ("id", pa.string()), ("text", pa.large_string()),
    ("metadata", pa.struct([("repo", pa.string()), ("path", pa.string()), ("language", pa.string()),
                            ("stars", pa.int64()), ("commit_time", pa.string()), ("sha256", pa.string()),
                            ("size_bytes", pa.int64()), ("source", pa.string()), ("partition", pa.string())])),
])


def _records(shard: Path, partition: str, batch_rows: int) -> Iterator[pa.Table]:
    pf = pq.ParquetFile(shard)
    for batch in pf.iter_batches(batch_size=batch_rows, columns=["file_id", "content", *META_COLUMNS]):
        t = pa.Table.from_batches([batch]).combine_chunks()
        commit = [None if v is None else v.isoformat() for v in t["commit_time"].to_pylist()]
        meta = pa.StructArray.from_arrays(
            [batch.column(name).cast(typ) for name, typ in (("repo", pa.string()), ("path", pa.string()),
                                                            ("language", pa.string()), ("stars", pa.int64()))]
            + [pa.array(commit, pa.string())]
            + [batch.column(name).cast(typ) for name, typ in (("sha256", pa.string()), ("size_bytes", pa.int64()),
                                                            ("source", pa.string()))]
            + [pa.array([partition] * t.num_rows, pa.string())],
            fields=list(EXPORT_SCHEMA.field("metadata").type))
        yield pa.table({"id": t["file_id"].cast(pa.string()), "text": t["content"].cast(pa.large_string()),
                        "metadata": meta}, schema=EXPORT_SCHEMA)


def export_partition(shards: Sequence[Path], partition: str, out: Path, fmt: Format, batch_rows: int = 2000,
                     created: str | None = None) -> dict[str, int]:
    """Write one partition's final shards to ``out`` in ``fmt``; returns documents and files written."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    added = created or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    docs = files = 0
    target_dir = out / ("documents" if fmt == "dolma" else partition)
    target_dir.mkdir(parents=True, exist_ok=True)
    for i, shard in enumerate(shards):
        stem = f"{partition}-{i:05d}" if fmt == "dolma" else f"part-{i:05d}"
        suffix = {"parquet": ".parquet", "jsonl": ".jsonl", "dolma": ".json.gz"}[fmt]
        final = target_dir / f"{stem}{suffix}"
        tmp = target_dir / f".{stem}{suffix}.tmp"
        if fmt == "parquet":
            with pq.ParquetWriter(tmp, EXPORT_SCHEMA, compression="zstd") as w:
                for t in _records(shard, partition, batch_rows):
                    w.write_table(t)
                    docs += t.num_rows
        else:
            opener = gzip.open if fmt == "dolma" else open
            with opener(tmp, "wt", encoding="utf-8") as fh:
                for t in _records(shard, partition, batch_rows):
                    for row in t.to_pylist():
                        if fmt == "dolma":
                            row = {"id": row["id"], "text": row["text"], "source": f"refinecode-{partition}",
                                   "added": added, "created": row["metadata"]["commit_time"] or added,
                                   "metadata": row["metadata"]}
                        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                    docs += t.num_rows
        os.replace(tmp, final)
        files += 1
    return {"documents": docs, "files": files}
