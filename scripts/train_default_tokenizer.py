"""Train the shipped default tokenizer, ``opencoder_assets/data/code_bpe.json``.

Why: every token figure of the pipeline (funnel, per-language sampling targets, annealing budgets)
is counted with one tokenizer. The paper's tokenizer is not public, so the package ships a small
stand-in: a byte-level BPE (GPT-2 style pre-tokenizer, no special tokens) trained with HF
``tokenizers`` on a fixed sample of real code -- the interpreter's Python standard library and C
headers (CPython's own include dir, then glibc's top-level ``/usr/include/*.h``). Users who want
their model's counts point ``OPENCODER_TOKENIZER`` (or ``PipelineSettings.tokenizer_path``) at its
``tokenizer.json``.

Deterministic: files are taken in sorted relative-path order up to fixed byte budgets and the
trainer sees them in that order; the same interpreter + headers give the same file byte for byte
(``--check`` retrains and compares). The sample's sha256 is printed and compared with
``SAMPLE_SHA256`` (the sample this file was trained on: CPython 3.11.7 on Debian 12 headers).

    python scripts/train_default_tokenizer.py [--out PATH] [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import sysconfig
from pathlib import Path

VOCAB_SIZE = 16000
PY_BUDGET = 6_000_000
C_BUDGET = 2_000_000
#: sha256 of the training sample the shipped file was made from (see module doc).
SAMPLE_SHA256 = "a8c88a43adf5ebfb6bf120a7ae73285be08129e05ae3603d6b14ece09470571d"
OUT = Path(__file__).resolve().parents[1] / "opencoder_assets" / "data" / "code_bpe.json"
_SKIP_DIRS = {"test", "tests", "idlelib", "site-packages", "dist-packages", "__pycache__", "lib2to3", "turtledemo"}


def _take(files: list[tuple[str, Path]], budget: int) -> list[tuple[str, str]]:
    out, used = [], 0
    for rel, path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if used + len(text.encode()) > budget:
            continue
        out.append((rel, text))
        used += len(text.encode())
    return out


def training_sample() -> list[tuple[str, str]]:
    """(label, text) of every training file, in training order."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    py = sorted((str(p.relative_to(stdlib)), p) for p in stdlib.rglob("*.py")
                if not _SKIP_DIRS.intersection(p.relative_to(stdlib).parts[:-1]))
    include = Path(sysconfig.get_paths()["include"])
    c = sorted((f"py-include/{p.relative_to(include)}", p) for p in include.rglob("*.h"))
    c += sorted((f"usr-include/{p.name}", p) for p in Path("/usr/include").glob("*.h"))
    return _take(py, PY_BUDGET) + _take(c, C_BUDGET)


def sample_digest(sample: list[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for label, text in sample:
        h.update(label.encode() + b"\0" + text.encode() + b"\0")
    return h.hexdigest()


def train(sample: list[tuple[str, str]]) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator((text for _, text in sample), trainer=trainer, length=len(sample))
    return tok.to_str(pretty=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true", help="retrain and compare with --out, write nothing")
    args = ap.parse_args(argv)
    sample = training_sample()
    digest = sample_digest(sample)
    size = sum(len(t.encode()) for _, t in sample)
    print(f"sample: {len(sample)} files, {size} bytes, sha256 {digest}")
    if SAMPLE_SHA256 and digest != SAMPLE_SHA256:
        print(f"warning: this machine's sample differs from the shipped one ({SAMPLE_SHA256}); "
              "the trained file will differ", file=sys.stderr)
    data = train(sample)
    if args.check:
        same = args.out.read_text(encoding="utf-8") == data
        print("identical" if same else f"DIFFERENT from {args.out}")
        return 0 if same else 1
    args.out.write_text(data, encoding="utf-8")
    print(f"wrote {args.out} ({len(data.encode())} bytes, vocab {VOCAB_SIZE})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
