"""SFT data (recipe §4.3): instruction sources, package-API docs, stage recipes.

- Sources are JSONL(.gz) or Parquet files of instruction/response pairs; field names are
  configurable (``instruction``/``output`` by default, as the official SFT script reads).
- Package-Instruct is grounded in the docstrings and signatures of *installed* libraries
  (``inspect``/``pydoc``), so the answers match the versions the user actually has; the installed
  version is recorded on every sample.
- Stage recipes are the recipe's recommended training settings, attached as metadata.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import importlib.metadata
import inspect
import json
import pkgutil
import pydoc
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

INSTRUCTION_SCHEMA = pa.schema([
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("source", pa.string()),
    pa.field("instruction", pa.large_string()),
    pa.field("output", pa.large_string()),
    pa.field("language", pa.string()),
    pa.field("meta", pa.string()),
])


@dataclass(frozen=True)
class StageRecipe:
    """Recommended training settings (official scripts, matching the paper)."""

    stage: int
    epochs: int
    global_batch_size: int
    micro_batch_size: int
    learning_rate: float
    warmup_steps: int
    lr_schedule: str
    max_length: int
    recipe_sources: tuple[str, ...]
    recipe_rows: tuple[str, ...]
    notes: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


STAGE_RECIPES: dict[int, StageRecipe] = {
    1: StageRecipe(1, 1, 4096, 8, 2e-5, 100, "cosine", 1216,
                   ("realuser_instruct", "largescale_diverse_instruct", "filtered_infinity_instruct"),
                   ("0.7M", "2.3M", "1.0M"),
                   "bf16, DeepSpeed ZeRO-3, gradient checkpointing; broad theory/general code data"),
    2: StageRecipe(2, 3, 512, 4, 5e-5, 100, "cosine", 1500,
                   ("mceval_instruct", "evol_instruct", "educational_instruct", "package_instruct"),
                   ("36K", "111K", "110K", "110K"),
                   "high-quality, code-task focused data; educational = verified synthetic snippets"),
}


def sample_id(source: str, instruction: str, output: str) -> str:
    """Content-addressed id: the same pair from the same source always gets the same id."""
    h = hashlib.blake2b(digest_size=10)
    for part in (source, instruction, output):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


@dataclass(frozen=True)
class InstructionSource:
    """A JSONL/Parquet file of instruction/response pairs."""

    path: str
    name: str | None = None
    instruction_field: str = "instruction"
    output_field: str = "output"
    language_field: str | None = None
    max_rows: int | None = None

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> InstructionSource:
        return cls(**dict(m))

    @property
    def source_name(self) -> str:
        return self.name or Path(self.path).name.split(".")[0]


def _iter_rows(path: Path) -> Iterator[dict[str, Any]]:
    name = path.name.lower()
    if name.endswith(".parquet"):
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=2000):
            yield from batch.to_pylist()
    elif name.endswith((".jsonl", ".jsonl.gz", ".json", ".ndjson")):
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{path}:{line_no}: invalid JSON: {exc}") from exc
    else:
        raise ValueError(f"{path}: unsupported instruction source format (use .jsonl[.gz] or .parquet)")


def load_instruction_source(src: InstructionSource) -> list[dict[str, Any]]:
    """Rows in INSTRUCTION_SCHEMA order; rows with an empty instruction or output are skipped."""
    path = Path(src.path)
    if not path.exists():
        raise FileNotFoundError(f"SFT source {src.source_name!r}: {path} does not exist")
    out = []
    for row in _iter_rows(path):
        if src.instruction_field not in row or src.output_field not in row:
            raise KeyError(
                f"{path}: rows need {src.instruction_field!r} and {src.output_field!r} (found {sorted(row)}); "
                "set instruction_field/output_field"
            )
        ins, outp = row[src.instruction_field], row[src.output_field]
        if not ins or not outp:
            continue
        ins, outp = str(ins), str(outp)
        out.append({
            "sample_id": sample_id(src.source_name, ins, outp), "source": src.source_name,
            "instruction": ins, "output": outp,
            "language": str(row.get(src.language_field) or "") if src.language_field else None,
            "meta": json.dumps({"file": str(path)}),
        })
        if src.max_rows is not None and len(out) >= src.max_rows:
            break
    return out


@dataclass(frozen=True)
class ApiDoc:
    """One public callable/class of an installed package, as documented there."""

    package: str
    version: str
    qualname: str
    kind: str
    signature: str
    doc: str


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        mod = importlib.import_module(package)
        return str(getattr(mod, "__version__", "stdlib"))


def package_api_docs(
    package: str,
    *,
    max_items: int = 50,
    min_doc_chars: int = 80,
    max_doc_chars: int = 3000,
    submodules: bool = True,
) -> list[ApiDoc]:
    """Public documented functions/classes of ``package`` (and its public submodules), sorted.

    Deterministic order (by qualified name) so ``max_items`` always picks the same API surface.
    Private names, re-exports from other packages and undocumented objects are skipped.
    """
    version = _version(package)
    root = importlib.import_module(package)
    modules = [root]
    if submodules and hasattr(root, "__path__"):
        for info in pkgutil.iter_modules(root.__path__, prefix=package + "."):
            leaf = info.name.rsplit(".", 1)[-1]
            if leaf.startswith("_") or "test" in leaf:
                continue
            try:
                modules.append(importlib.import_module(info.name))
            except Exception:  # noqa: BLE001 - optional submodules may need extra deps
                continue
    seen: set[int] = set()
    docs: dict[str, ApiDoc] = {}
    for mod in modules:
        for name, obj in inspect.getmembers(mod):
            if name.startswith("_") or id(obj) in seen:
                continue
            if not (inspect.isfunction(obj) or inspect.isbuiltin(obj) or inspect.isclass(obj)):
                continue
            owner = getattr(obj, "__module__", "") or ""
            if not owner.split(".")[0] == package:
                continue
            doc = inspect.getdoc(obj) or ""
            if len(doc) < min_doc_chars:
                continue
            seen.add(id(obj))
            try:
                sig = str(inspect.signature(obj))
            except (TypeError, ValueError):
                sig = "(...)"
            qual = f"{mod.__name__}.{name}"
            docs[qual] = ApiDoc(package, version, qual, "class" if inspect.isclass(obj) else "function",
                                sig, pydoc.plain(doc)[:max_doc_chars])
    return [docs[k] for k in sorted(docs)][:max_items]
