"""One tokenizer behind every token figure (funnel, sampling targets, annealing budgets).

Why one place: token counts from different tokenizers (or a ``bytes / 3.6`` estimate) are not
comparable, and the recipe's volumes (Java 449 -> 200, the annealing mixture in billions of
tokens) are token counts. Whichever tokenizer is used, its identity (file sha256) is recorded
next to the counts.

Which tokenizer, first match wins:

1. an explicit path (the ``tokenizer`` parameter of a step);
2. the run's ``PipelineSettings.tokenizer_path`` (set with :func:`configure` when the resource
   starts, and resolved in the driver: workers receive the concrete path in the step params);
3. the ``OPENCODER_TOKENIZER`` environment variable;
4. the shipped default ``opencoder_assets/data/code_bpe.json``: a 16k byte-level BPE trained
   deterministically on the Python standard library + C headers by
   ``scripts/train_default_tokenizer.py``. It is a *stand-in* for the paper's tokenizer (not
   public): code-tuned, so its bytes/token is close to a production code tokenizer's, but
   absolute counts differ from any real model's by a few percent to tens of percent on
   non-code text (see ``bench/bench_tokens.py``).

Any HF ``tokenizer.json`` works (``tokenizers.Tokenizer.from_file``). Special tokens (BOS/EOS)
are never added: a count is the text's own tokens.

Counting uses ``encode_batch_fast`` (no offsets, Rust threads); texts over ``CHUNK_CHARS`` are
encoded in line-aligned chunks so one 8 MiB file never builds one giant encoding. A chunk
boundary can split one whitespace pre-token in two, so a chunked count may differ by a token per
boundary (one per MiB: below 1e-5 relative).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

#: Environment variable naming a ``tokenizer.json``.
ENV_VAR = "OPENCODER_TOKENIZER"
#: The shipped stand-in tokenizer.
DEFAULT_TOKENIZER = Path(__file__).resolve().parents[1] / "data" / "code_bpe.json"
#: Texts longer than this (characters) are encoded in line-aligned chunks.
CHUNK_CHARS = 1 << 20
#: Characters per ``encode_batch_fast`` call (bounds memory of one call).
BATCH_CHARS = 8 << 20


@dataclass(frozen=True)
class TokenizerInfo:
    """Which tokenizer counted: its file, a short name and the file's sha256 (recorded in metadata)."""

    path: str
    name: str
    sha256: str

    @property
    def label(self) -> str:
        return f"{self.name} (sha256 {self.sha256[:12]})"


_configured: str | None = None


def configure(path: str | None) -> None:
    """Set (or with ``None`` clear) the run-wide tokenizer; ``PipelineSettings`` calls it when a run
    starts, so every run sets it afresh."""
    global _configured
    _configured = path or None


def resolve_tokenizer_path(explicit: str | None = None) -> str:
    """The tokenizer file to use: ``explicit``, else the configured one, else
    ``$OPENCODER_TOKENIZER``, else the shipped default."""
    env = os.environ.get(ENV_VAR)
    chosen = explicit or _configured or env or str(DEFAULT_TOKENIZER)
    source = ("argument" if explicit else "PipelineSettings.tokenizer_path" if _configured
              else ENV_VAR if env else "default")
    path = Path(chosen).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file {path} (from {source}) does not exist; "
                                f"give a HF tokenizer.json or unset {ENV_VAR}")
    return str(path.resolve())


@lru_cache(maxsize=4)
def _load(path: str):  # -> tokenizers.Tokenizer
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(path)
    except Exception as exc:  # tokenizers raises a bare Exception on a bad file
        raise ValueError(f"tokenizer file {path} is not a HF tokenizer.json: {exc}") from exc


@lru_cache(maxsize=4)
def tokenizer_info(path: str | None = None) -> TokenizerInfo:
    p = resolve_tokenizer_path(path)
    sha = hashlib.sha256(Path(p).read_bytes()).hexdigest()
    name = "code_bpe (default stand-in)" if Path(p) == DEFAULT_TOKENIZER else Path(p).name
    return TokenizerInfo(p, name, sha)


def _chunks(text: str) -> list[str]:
    """Split a long text at line starts into pieces of about ``CHUNK_CHARS``."""
    if len(text) <= CHUNK_CHARS:
        return [text]
    out, start = [], 0
    while start < len(text):
        end = start + CHUNK_CHARS
        if end < len(text):
            nl = text.rfind("\n", start, end)
            end = nl + 1 if nl > start else end
        out.append(text[start:end])
        start = end
    return out


def count_tokens(texts: Sequence[str], tokenizer: str | None = None) -> list[int]:
    """Token count of each text (no special tokens), batched through the Rust tokenizer."""
    tok = _load(resolve_tokenizer_path(tokenizer))
    counts = [0] * len(texts)
    pieces: list[str] = []
    owners: list[int] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if pieces:
            for owner, enc in zip(owners, tok.encode_batch_fast(pieces, add_special_tokens=False), strict=True):
                counts[owner] += len(enc.ids)
            pieces.clear()
            owners.clear()
            size = 0

    for i, text in enumerate(texts):
        if not text:
            continue
        for piece in _chunks(text):
            pieces.append(piece)
            owners.append(i)
            size += len(piece)
            if size >= BATCH_CHARS:
                flush()
    flush()
    return counts


def duckdb_register(con, tokenizer: str | None = None, name: str = "oc_tokens") -> TokenizerInfo:
    """Register ``name(VARCHAR) -> BIGINT`` on a DuckDB connection (vectorised Arrow UDF), so SQL
    pipelines count with the same tokenizer."""
    import duckdb
    import pyarrow as pa

    info = tokenizer_info(tokenizer)

    def udf(col):  # pa.Array -> pa.Array (no annotations: DuckDB evaluates them)
        texts = col.to_pylist()
        counts = count_tokens([t or "" for t in texts], info.path)
        return pa.array([None if t is None else c for t, c in zip(texts, counts, strict=True)], pa.int64())

    con.create_function(name, udf, [duckdb.sqltype("VARCHAR")], duckdb.sqltype("BIGINT"), type="arrow",
                        null_handling="special", side_effects=False)
    return info
