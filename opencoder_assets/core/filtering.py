"""Declarative RefineCode heuristic filter: compute signals, pick a config, apply thresholds.

Signals and thresholds are kept apart (as in the reference) so thresholds can be re-tuned
and re-applied to persisted signal dicts without recomputing them.  Thresholds live in
``opencoder_assets/config/filter_thresholds.toml`` and are parsed with :mod:`tomllib`
(never ``eval``).  The reference's unseeded 80 % random drops are made deterministic.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from opencoder_assets.core.signals import (
    ALL_SIGNAL_NAMES,
    CODE_SIGNALS,
    LANG_SIGNALS,
    TEXT_SIGNALS,
    CodeDocument,
    SignalCompat,
)
from opencoder_assets.core.suggest import did_you_mean

__all__ = [
    "DEFAULT_THRESHOLDS_PATH",
    "FilterDecision",
    "FilterThresholds",
    "Rule",
    "SignalCompat",
    "SignalValue",
    "ThresholdConfigError",
    "apply_filters",
    "compute_signals",
    "compute_signals_with_errors",
    "select_config",
]

log = logging.getLogger(__name__)

SignalValue = float | int | bool | None
RandomMode = Literal["seeded", "strict", "lenient"]

DEFAULT_THRESHOLDS_PATH = Path(__file__).resolve().parent.parent / "config" / "filter_thresholds.toml"

#: program languages with their own config (reference ``support_program_langs``).
LANG_CONFIGS = ("cpp", "csharp", "c", "go", "html", "java", "javascript", "python", "shell", "sql")
CONFIG_NAMES = ("en", "zh", "others", "data", *LANG_CONFIGS)
_RULE_KEYS = frozenset({"lt", "gt", "le", "ge", "eq", "random_drop", "off"})


class ThresholdConfigError(ValueError):
    """Raised when the threshold TOML is malformed (names the offending key)."""


# --------------------------------------------------------------------------- signals
def signal_groups(program_lang: str, doc_type: str) -> list[tuple[str, list[tuple[str, Any]]]]:
    """The named signal groups computed for a file: text files get the document group,
    code/data files the general code group plus their language's group; others none."""
    if doc_type == "text":
        return [("text", TEXT_SIGNALS)]
    if doc_type in ("code", "data"):
        return [("code", CODE_SIGNALS), ("lang", LANG_SIGNALS.get(program_lang, []))]
    return []


def compute_signals_with_errors(
    text: str,
    *,
    program_lang: str,
    doc_type: str,
    ext: str,
    filename: str,
    size_bytes: int,
    lang: str = "en",
    compat: SignalCompat | None = None,
    js_parser: str = "esprima",
) -> tuple[dict[str, SignalValue], dict[str, str]]:
    """Like :func:`compute_signals` but also returns ``{signal: error message}``.

    A failing or timed-out signal is recorded as ``None`` and does not affect any other
    signal (the reference skipped the rest of the group).
    """
    groups = signal_groups(program_lang, doc_type)
    if not groups:  # unknown / excluded: nothing is computed (the filter drops them)
        return {}, {}
    doc = CodeDocument(
        text,
        program_lang=program_lang,
        doc_type=doc_type,
        ext=ext,
        filename=filename,
        size_bytes=size_bytes,
        lang=lang,
        compat=compat or SignalCompat(),
        js_parser=js_parser,
    )
    result: dict[str, SignalValue] = {}
    errors: dict[str, str] = {}
    for _group_name, group in groups:
        for name, fn in group:
            try:
                result[name] = fn(doc)
            except Exception as exc:  # noqa: BLE001 - one failing signal must only null itself
                result[name] = None
                errors[name] = f"{type(exc).__name__}: {exc}"[:500]
                log.debug("signal %s failed on %s: %s", name, filename, exc)
    return result, errors


def compute_signals(
    text: str,
    *,
    program_lang: str,
    doc_type: str,
    ext: str,
    filename: str,
    size_bytes: int,
    lang: str = "en",
    compat: SignalCompat = SignalCompat(),  # noqa: B008 - frozen dataclass, safe default
    js_parser: str = "esprima",
) -> dict[str, float | int | bool | None]:
    """All applicable quality signals of one file, keyed by reference signal name.

    ``filename`` is the full name incl. extension; ``ext`` has no dot; ``text`` should be
    decoded with universal newlines (as the reference read files in text mode). ``js_parser``:
    ``"esprima"`` (reference) or ``"tree-sitter"`` for the JavaScript AST signals.
    """
    return compute_signals_with_errors(
        text,
        program_lang=program_lang,
        doc_type=doc_type,
        ext=ext,
        filename=filename,
        size_bytes=size_bytes,
        lang=lang,
        compat=compat,
        js_parser=js_parser,
    )[0]


# ------------------------------------------------------------------------- thresholds
def _num(value: float | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}"


@dataclass(frozen=True)
class Rule:
    """One drop predicate: fires if value < lt, > gt, <= le, >= ge or == eq (any of them)."""

    signal: str
    lt: float | None = None
    gt: float | None = None
    le: float | None = None
    ge: float | None = None
    eq: float | bool | None = None
    random_drop: float | None = None
    off: bool = False

    def describe(self) -> str:
        """The drop condition in words, e.g. ``< 3 or > 10`` (``off`` when disabled)."""
        if self.off:
            return "off"
        parts = [f"{op} {_num(v)}" for op, v in (("<", self.lt), (">", self.gt), ("<=", self.le), (">=", self.ge),
                                                   ("==", self.eq)) if v is not None]
        text = " or ".join(parts)
        return text + (f" (random_drop {self.random_drop:g})" if self.random_drop is not None else "")

    def over(self, value: SignalValue) -> bool:
        """True if ``value`` meets the drop condition (before any random component)."""
        if value is None or self.off:
            return False
        if isinstance(value, float) and math.isnan(value):
            return False
        v = float(value)
        return (
            (self.lt is not None and v < self.lt)
            or (self.gt is not None and v > self.gt)
            or (self.le is not None and v <= self.le)
            or (self.ge is not None and v >= self.ge)
            or (self.eq is not None and v == float(self.eq))
        )


@dataclass(frozen=True)
class FilterThresholds:
    """Parsed threshold tables: ``configs[config_name][signal_name] -> Rule``."""

    configs: Mapping[str, Mapping[str, Rule]]
    source: str = "<dict>"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> FilterThresholds:
        configs: dict[str, dict[str, Rule]] = {}
        for cfg, table in data.items():
            if cfg not in CONFIG_NAMES:
                raise ThresholdConfigError(f"{source}: unknown config table [{cfg}]{did_you_mean(cfg, CONFIG_NAMES)} "
                                           f"(expected one of {', '.join(CONFIG_NAMES)})")
            if not isinstance(table, Mapping):
                raise ThresholdConfigError(f"{source}: [{cfg}] must be a table")
            rules: dict[str, Rule] = {}
            for sig, spec in table.items():
                where = f"{source}: [{cfg}] {sig}"
                if sig not in ALL_SIGNAL_NAMES:
                    raise ThresholdConfigError(f"{where}: unknown signal name {sig!r}{did_you_mean(sig, ALL_SIGNAL_NAMES)}")
                if not isinstance(spec, Mapping):
                    raise ThresholdConfigError(f"{where}: rule must be an inline table like {{ gt = 0.2 }}")
                bad = set(spec) - _RULE_KEYS
                if bad:
                    raise ThresholdConfigError(f"{where}: unknown rule key(s) {sorted(bad)}"
                                              f"{did_you_mean(sorted(bad)[0], _RULE_KEYS)}")
                if not spec.get("off") and not any(k in spec for k in ("lt", "gt", "le", "ge", "eq")):
                    raise ThresholdConfigError(f"{where}: rule has no comparison (lt/gt/le/ge/eq) and is not off")
                for k in ("lt", "gt", "le", "ge", "random_drop"):
                    if k in spec and (isinstance(spec[k], bool) or not isinstance(spec[k], int | float)):
                        raise ThresholdConfigError(f"{where}: {k} must be a number")
                rd = spec.get("random_drop")
                if rd is not None and not 0.0 <= rd <= 1.0:
                    raise ThresholdConfigError(f"{where}: random_drop must be in [0, 1]")
                rules[sig] = Rule(
                    signal=sig,
                    lt=spec.get("lt"),
                    gt=spec.get("gt"),
                    le=spec.get("le"),
                    ge=spec.get("ge"),
                    eq=spec.get("eq"),
                    random_drop=rd,
                    off=bool(spec.get("off", False)),
                )
            configs[cfg] = rules
        return cls(configs=configs, source=source)

    @classmethod
    def loads(cls, text: str, source: str = "<string>") -> FilterThresholds:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ThresholdConfigError(f"{source}: invalid TOML: {exc}") from exc
        return cls.from_dict(data, source=source)

    @classmethod
    def load(cls, path: str | Path | None = None) -> FilterThresholds:
        """Load a threshold file (default: the packaged ``filter_thresholds.toml``)."""
        p = Path(path) if path is not None else DEFAULT_THRESHOLDS_PATH
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ThresholdConfigError(f"{p}: cannot read the threshold file: {exc.strerror or exc}") from exc
        return cls.loads(text, source=str(p))

    def rules(self, config: str) -> Mapping[str, Rule]:
        try:
            return self.configs[config]
        except KeyError:
            raise ThresholdConfigError(f"{self.source}: no table [{config}]") from None


@lru_cache(maxsize=1)
def _default_thresholds() -> FilterThresholds:
    return FilterThresholds.load()


# ----------------------------------------------------------------------------- filter
@dataclass(frozen=True)
class FilterDecision:
    """Keep/drop outcome: the config used and the rules (signal names) that fired."""

    keep: bool
    config: str
    hits: list[str] = field(default_factory=list)


def select_config(program_lang: str, doc_type: str, lang: str) -> str:
    """Reference config choice (§2.4); ``"none"`` for excluded/unknown documents."""
    if doc_type == "text":
        return "zh" if lang == "zh" else "en"
    if doc_type in ("code", "data"):
        if program_lang in LANG_CONFIGS:
            return program_lang
        return "data" if doc_type == "data" else "others"
    return "none"


def seeded_uniform(seed: int, file_id: str, rule: str) -> float:
    """Stable uniform draw in [0, 1) from (seed, file_id, rule) - platform independent."""
    h = hashlib.blake2b(f"{seed}\x1f{file_id}\x1f{rule}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0**64


def apply_filters(
    signals: Mapping[str, SignalValue],
    *,
    program_lang: str,
    doc_type: str,
    lang: str,
    file_id: str,
    seed: int = 0,
    random_mode: RandomMode = "seeded",
    thresholds: FilterThresholds | None = None,
) -> FilterDecision:
    """Decide keep/drop: drop iff any enabled rule of the chosen config fires.

    Randomized rules (``random_drop = p``) fire when over threshold and: ``seeded`` - a
    stable hash draw of (seed, file_id, rule) is < p; ``strict`` - always; ``lenient`` - never.
    """
    if doc_type in ("excluded", "unknown"):
        return FilterDecision(keep=False, config="none", hits=[f"doc_type_{doc_type}"])
    config = select_config(program_lang, doc_type, lang)
    if config == "none":
        return FilterDecision(keep=False, config="none", hits=[f"doc_type_{doc_type}"])
    if not signals:
        return FilterDecision(keep=False, config=config, hits=["signals_missing"])
    if random_mode not in ("seeded", "strict", "lenient"):
        raise ValueError(f"random_mode must be seeded/strict/lenient, got {random_mode!r}")
    th = thresholds or _default_thresholds()
    hits: list[str] = []
    for name, rule in th.rules(config).items():
        if rule.off or name not in signals:
            continue
        if not rule.over(signals[name]):
            continue
        if rule.random_drop is not None:
            if random_mode == "lenient":
                continue
            if random_mode == "seeded" and seeded_uniform(seed, file_id, name) >= rule.random_drop:
                continue
        hits.append(name)
    return FilterDecision(keep=not hits, config=config, hits=hits)
