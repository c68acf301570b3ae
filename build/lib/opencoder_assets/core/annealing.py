"""Annealing data (recipe §4.2): algorithmic-keyword selection, token estimate, mixture sampling.

Decisions for the gaps of §6.18:
- **Keywords**: ``leetcode``, ``def solution``, ``class Solution`` by default, per language
  overridable. Matching is case-insensitive, word-bounded at both ends, and any run of whitespace
  in a keyword matches any whitespace (``def  solution`` matches ``def solution``).
- **Tokens** are counted with the pipeline's tokenizer (``core/tokens.py``: the run's
  ``tokenizer.json``, default the shipped code BPE stand-in), registered in DuckDB as the UDF
  ``oc_tokens`` (:func:`tokens_sql`). Budgets and the per-category table use the same counts.
  :func:`approx_tokens` (``ceil(utf8_bytes / 3.5)``) stays only as the estimate benches compare to.
- **Sampling** is deterministic by seed: each candidate gets the key ``md5(seed:category:id)``;
  within a category candidates are taken in key order until the category's token budget is reached
  (the last one may overshoot by at most one document). No document is repeated: if a pool is
  smaller than its budget the whole pool is taken and the shortfall is reported. With
  ``total_tokens=None`` the total is the largest budget every pool can fill at the configured
  proportions, so proportions hold exactly (up to one document per category).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pyarrow as pa

BYTES_PER_TOKEN = 3.5

DEFAULT_ALGORITHMIC_KEYWORDS: tuple[str, ...] = ("leetcode", "def solution", "class Solution")

#: Recipe Table 3 (billions of tokens): RefineCode 84.21, algorithmic corpus 12.44,
#: synthetic snippets 2.71, code textbooks 0.91.
RECIPE_MIXTURE: dict[str, float] = {
    "original": 84.21,
    "algorithmic": 12.44,
    "synthetic_snippets": 2.71,
    "code_textbooks": 0.91,
}

ANNEAL_SCHEMA = pa.schema([
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("category", pa.string()),
    pa.field("source_asset", pa.string()),
    pa.field("language", pa.string()),
    pa.field("text", pa.large_string()),
    pa.field("tokens", pa.int64()),
])


def approx_tokens(text: str | bytes) -> int:
    """The old byte estimate ``ceil(utf8 bytes / 3.5)`` (benchmarks only; budgets count real tokens)."""
    n = len(text) if isinstance(text, bytes) else len(text.encode("utf-8"))
    return math.ceil(n / BYTES_PER_TOKEN)


def tokens_sql(column: str) -> str:
    """Token count of ``column`` in DuckDB: the ``oc_tokens`` UDF, registered on the connection
    with :func:`opencoder_assets.core.tokens.duckdb_register`."""
    return f"oc_tokens({column})"


class KeywordMatcher:
    """Word-bounded, whitespace-tolerant keyword search; reports the first keyword found."""

    def __init__(self, keywords: Iterable[str], case_sensitive: bool = False) -> None:
        self.keywords = [k for k in keywords if k.strip()]
        if not self.keywords:
            raise ValueError("at least one algorithmic keyword is required")
        parts = []
        for i, kw in enumerate(self.keywords):
            body = r"\s+".join(re.escape(w) for w in kw.split())
            left = r"\b" if re.match(r"\w", kw.strip()) else ""
            right = r"\b" if re.search(r"\w$", kw.strip()) else ""
            parts.append(f"(?P<k{i}>{left}{body}{right})")
        self._re = re.compile("|".join(parts), 0 if case_sensitive else re.IGNORECASE)

    def match(self, text: str) -> str | None:
        m = self._re.search(text)
        if not m:
            return None
        return self.keywords[int(m.lastgroup[1:])] if m.lastgroup else None


def keywords_for(language: str, config: Mapping[str, list[str]] | None) -> list[str]:
    """Per-language keyword list: ``config[language]``, else ``config['*']``, else the defaults."""
    if config:
        if language in config:
            return list(config[language])
        if "*" in config:
            return list(config["*"])
    return list(DEFAULT_ALGORITHMIC_KEYWORDS)


@dataclass
class CategoryPlan:
    """Target and outcome for one mixture category."""

    category: str
    weight: float
    target_share: float
    pool_tokens: int
    pool_docs: int
    budget_tokens: int = 0
    selected_tokens: int = 0
    selected_docs: int = 0

    @property
    def shortfall_tokens(self) -> int:
        return max(0, self.budget_tokens - self.selected_tokens)


@dataclass
class MixturePlan:
    categories: dict[str, CategoryPlan] = field(default_factory=dict)
    total_budget: int = 0
    auto_total: bool = False

    def table_markdown(self) -> str:
        total_sel = sum(c.selected_tokens for c in self.categories.values()) or 1
        lines = ["| category | target share | budget tokens | selected tokens | actual share | docs | pool tokens | shortfall |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for c in self.categories.values():
            lines.append(
                f"| {c.category} | {c.target_share:.2%} | {c.budget_tokens} | {c.selected_tokens} | "
                f"{c.selected_tokens / total_sel:.2%} | {c.selected_docs} | {c.pool_tokens} | {c.shortfall_tokens} |"
            )
        return "\n".join(lines)

    def as_rows(self) -> list[dict]:
        total_sel = sum(c.selected_tokens for c in self.categories.values()) or 1
        return [
            {"category": c.category, "target_share": c.target_share, "budget_tokens": c.budget_tokens,
             "selected_tokens": c.selected_tokens, "actual_share": c.selected_tokens / total_sel,
             "selected_docs": c.selected_docs, "pool_tokens": c.pool_tokens, "pool_docs": c.pool_docs,
             "shortfall_tokens": c.shortfall_tokens}
            for c in self.categories.values()
        ]


def plan_budgets(
    weights: Mapping[str, float],
    pools: Mapping[str, tuple[int, int]],
    total_tokens: int | None,
) -> MixturePlan:
    """Token budget per category from weights; ``pools`` maps category -> (tokens, docs)."""
    active = {k: float(w) for k, w in weights.items() if w > 0}
    if not active:
        raise ValueError("mixture needs at least one category with a positive weight")
    wsum = sum(active.values())
    plan = MixturePlan(auto_total=total_tokens is None)
    if total_tokens is None:
        candidates = [pools.get(k, (0, 0))[0] / (w / wsum) for k, w in active.items()]
        total_tokens = int(min(candidates)) if candidates else 0
    plan.total_budget = int(total_tokens)
    for k, w in active.items():
        pool_tokens, pool_docs = pools.get(k, (0, 0))
        plan.categories[k] = CategoryPlan(
            category=k, weight=w, target_share=w / wsum, pool_tokens=int(pool_tokens), pool_docs=int(pool_docs),
            budget_tokens=int(round(total_tokens * w / wsum)),
        )
    return plan


def selection_sql(candidates_view: str, budgets_table: str, seed: int) -> str:
    """DuckDB query selecting, per category, docs in md5 order until the budget is reached.

    ``candidates_view`` has (category, sample_id, tokens, ...); ``budgets_table`` has (category,
    budget). A doc is kept if the tokens taken *before* it are below the budget.
    """
    return f"""
        WITH keyed AS (
            SELECT c.*, md5('{int(seed)}:' || c.category || ':' || c.sample_id) AS _key
            FROM {candidates_view} c
        ), running AS (
            SELECT k.*, sum(k.tokens) OVER (
                PARTITION BY k.category ORDER BY k._key, k.sample_id
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - k.tokens AS _before
            FROM keyed k
        )
        SELECT r.* EXCLUDE (_key, _before) FROM running r JOIN {budgets_table} b USING (category)
        WHERE r._before < b.budget
        ORDER BY r.category, r._key
    """
