"""The one tokenizer behind every token figure: batching, chunking, selection, the shipped file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from tokenizers import Tokenizer

from opencoder_assets.core import tokens
from tests.conftest import INCLUDE, stdlib_files

ROOT = Path(__file__).resolve().parents[1]


def _real_texts() -> list[str]:
    files = stdlib_files(30, start=100) + sorted(INCLUDE.glob("*.h"))[:20]
    return [f.read_text(errors="replace") for f in files] + ["", "x", "中文文本 and ascii"]


def test_count_tokens_matches_one_by_one_encoding():
    """Batched counts equal the tokenizer's own per-text encoding (no special tokens), in order."""
    texts = _real_texts()
    tok = Tokenizer.from_file(str(tokens.DEFAULT_TOKENIZER))
    expected = [len(tok.encode(t, add_special_tokens=False).ids) for t in texts]
    assert tokens.count_tokens(texts) == expected
    assert expected[-3] == 0 and expected[-2] == 1
    # small flush size: many batches, owners must still line up
    old = tokens.BATCH_CHARS
    tokens.BATCH_CHARS = 5000
    try:
        assert tokens.count_tokens(texts) == expected
    finally:
        tokens.BATCH_CHARS = old


def test_long_texts_are_chunked_with_at_most_a_token_per_boundary(monkeypatch):
    text = "\n".join(_real_texts()[:30])
    whole = tokens.count_tokens([text])[0]
    monkeypatch.setattr(tokens, "CHUNK_CHARS", 20000)
    pieces = tokens._chunks(text)
    assert len(pieces) > 5 and "".join(pieces) == text and all(p.endswith("\n") for p in pieces[:-1])
    assert abs(tokens.count_tokens([text])[0] - whole) <= len(pieces)


def test_tokenizer_selection_order_and_errors(tmp_path, monkeypatch):
    other = tmp_path / "other.json"
    other.write_bytes(tokens.DEFAULT_TOKENIZER.read_bytes())
    monkeypatch.delenv(tokens.ENV_VAR, raising=False)
    assert tokens.resolve_tokenizer_path() == str(tokens.DEFAULT_TOKENIZER)
    monkeypatch.setenv(tokens.ENV_VAR, str(other))
    assert tokens.resolve_tokenizer_path() == str(other)
    tokens.configure(str(tokens.DEFAULT_TOKENIZER))
    try:
        assert tokens.resolve_tokenizer_path() == str(tokens.DEFAULT_TOKENIZER)
        assert tokens.resolve_tokenizer_path(str(other)) == str(other)
    finally:
        tokens.configure(None)
    monkeypatch.setenv(tokens.ENV_VAR, str(tmp_path / "missing.json"))
    with pytest.raises(FileNotFoundError, match="missing.json.*OPENCODER_TOKENIZER"):
        tokens.count_tokens(["x"])
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="bad.json"):
        tokens.count_tokens(["x"], str(bad))


def test_duckdb_udf_counts_like_python():
    texts = _real_texts()[:10]
    con = duckdb.connect()
    info = tokens.duckdb_register(con)
    con.execute("CREATE TABLE t AS SELECT * FROM (SELECT unnest(?) AS x, generate_subscripts(?, 1) AS i)",
                [texts, texts])
    got = [r[0] for r in con.execute("SELECT oc_tokens(x) FROM t ORDER BY i").fetchall()]
    assert got == tokens.count_tokens(texts)
    assert con.execute("SELECT oc_tokens(NULL::VARCHAR)").fetchone()[0] is None
    assert info.sha256 == tokens.tokenizer_info().sha256 and "code_bpe" in info.label


def test_shipped_tokenizer_is_small_and_reproducible():
    """The default file is < 1.5 MB, is packaged, and the training script rebuilds it byte for byte."""
    assert tokens.DEFAULT_TOKENIZER.stat().st_size < 1_500_000
    assert '"data/*.json"' in (ROOT / "pyproject.toml").read_text()
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_default_tokenizer.py"), "--check"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "identical" in out.stdout, out.stdout + out.stderr
    # a code tokenizer: real code averages more than 3 bytes per token
    texts = _real_texts()[:30]
    ratio = sum(len(t.encode()) for t in texts) / sum(tokens.count_tokens(texts))
    assert 3.0 < ratio < 6.0, ratio
