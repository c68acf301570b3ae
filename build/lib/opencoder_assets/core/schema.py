"""Arrow schemas shared by every code stage, and the stable file id.

Why fixed schemas: every stage reads and writes Parquet shards; one schema per layer keeps shards
concatenable and lets DuckDB query any step's output with the same SQL.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")

#: Columns every code row carries from ingestion on (``content`` is added by preprocessing).
META_FIELDS: list[pa.Field] = [
    pa.field("file_id", pa.string(), nullable=False),
    pa.field("source", pa.string()),
    pa.field("repo", pa.string()),
    pa.field("path", pa.string()),
    pa.field("language", pa.string()),
    pa.field("doc_type", pa.string()),
    pa.field("ext", pa.string()),
    pa.field("size_bytes", pa.int64()),
    pa.field("sha256", pa.string()),
    pa.field("stars", pa.int64()),
    pa.field("commit_time", TIMESTAMP),
]

#: ``raw_code``: undecoded bytes; ``raw`` is null when the file could not be read or is over the
#: read cap (``read_error`` says why, so preprocessing can account for it).
RAW_SCHEMA = pa.schema([*META_FIELDS, pa.field("read_error", pa.string()), pa.field("raw", pa.large_binary())])

#: Every stage from ``preprocessed_code`` on: decoded UTF-8 text with LF newlines.
CODE_SCHEMA = pa.schema([*META_FIELDS, pa.field("content", pa.large_string())])

#: One row per input file of a step: what happened to it and why.
DECISION_SCHEMA = pa.schema(
    [
        pa.field("file_id", pa.string()),
        pa.field("repo", pa.string()),
        pa.field("path", pa.string()),
        pa.field("language", pa.string()),
        pa.field("decision", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("size_bytes", pa.int64()),
    ]
)


def stable_file_id(source: str, repo: str | None, path: str) -> str:
    """80-bit hex id from (source, repo, path): stable across runs and machines, order-free."""
    key = f"{source}\x00{repo or ''}\x00{path}".encode("utf-8", "surrogateescape")
    return hashlib.blake2b(key, digest_size=10).hexdigest()


def empty_table(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()
