"""Preprocessing: size cap, text-only, programming-language file types, newline normalisation.

Decisions (documented in README "Preprocessing"):
- files over ``max_bytes`` (8 MiB, the recipe's cap) are dropped as ``too_large``;
- a NUL byte marks a binary file -> ``binary``; invalid UTF-8 -> ``invalid_utf8`` (dropped, not
  repaired: lossy repair silently corrupts code, and the recipe keeps text files only);
- empty / whitespace-only files -> ``empty``;
- languages whose doc_type is not code/data/text (unknown extension, or on the recipe's exclusion
  list) -> ``not_programming_language`` / ``excluded_language``;
- files the reader refused or could not read keep its reason as ``unreadable:<read_error>``
  (``symlink_outside_repo``, ``not_regular_file:fifo``, ``symlink_loop``, ``permission_denied``...;
  see ``core.ingest.read_repo_file``).
Kept text gets a UTF-8 BOM stripped and CRLF/CR turned into LF (the reference read files in text
mode, so its signals assume LF), and ``sha256`` is recomputed over the normalised text so that
exact dedup treats CRLF and LF copies as the same file.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

from opencoder_assets.core.schema import CODE_SCHEMA, DECISION_SCHEMA

MAX_FILE_BYTES = 8 * 1024 * 1024
TEXT_DOC_TYPES = frozenset({"code", "data", "text"})


def classify(raw: bytes | None, read_error: str | None, size: int, doc_type: str, max_bytes: int) -> tuple[str | None, str | None]:
    """(drop reason or None, decoded normalised text or None)."""
    if read_error == "over_read_cap" or size > max_bytes:
        return "too_large", None
    if read_error:
        return f"unreadable:{read_error}", None
    if doc_type == "excluded":
        return "excluded_language", None
    if doc_type not in TEXT_DOC_TYPES:
        return "not_programming_language", None
    assert raw is not None
    if b"\x00" in raw:
        return "binary", None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8", None
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return "empty", None
    return None, text


def preprocess_batch(batch: pa.Table, max_bytes: int = MAX_FILE_BYTES) -> tuple[pa.Table, pa.Table]:
    """Split a RAW_SCHEMA batch into kept CODE_SCHEMA rows and one decision row per input file."""
    cols = batch.to_pydict()
    kept: dict[str, list] = {name: [] for name in CODE_SCHEMA.names}
    decisions: dict[str, list] = {name: [] for name in DECISION_SCHEMA.names}
    meta_names = [n for n in CODE_SCHEMA.names if n != "content"]
    for i in range(batch.num_rows):
        reason, text = classify(
            cols["raw"][i], cols["read_error"][i], cols["size_bytes"][i] or 0, cols["doc_type"][i], max_bytes
        )
        decisions["file_id"].append(cols["file_id"][i])
        decisions["repo"].append(cols["repo"][i])
        decisions["path"].append(cols["path"][i])
        decisions["language"].append(cols["language"][i])
        decisions["decision"].append("dropped" if reason else "kept")
        decisions["reason"].append(reason)
        decisions["detail"].append(None)
        decisions["size_bytes"].append(cols["size_bytes"][i])
        if reason is None:
            for name in meta_names:
                kept[name].append(cols[name][i])
            kept["content"].append(text)
            kept["sha256"][-1] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return pa.table(kept, schema=CODE_SCHEMA), pa.table(decisions, schema=DECISION_SCHEMA)
