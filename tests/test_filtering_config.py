"""Threshold TOML loading, editing and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from opencoder_assets.core.filtering import (
    DEFAULT_THRESHOLDS_PATH,
    FilterThresholds,
    ThresholdConfigError,
    apply_filters,
    select_config,
)

EXPECTED_COUNTS = {  # (keys, active) per config, recipe §1.4
    "en": (31, 26), "zh": (31, 26), "others": (33, 31), "data": (33, 28), "shell": (33, 28),
    "sql": (33, 31), "python": (41, 39), "c": (41, 36), "cpp": (41, 36), "csharp": (37, 35),
    "go": (38, 35), "html": (36, 28), "java": (41, 35), "javascript": (42, 36),
}


def test_default_thresholds_load() -> None:
    th = FilterThresholds.load()
    assert set(th.configs) == set(EXPECTED_COUNTS)
    for cfg, (keys, active) in EXPECTED_COUNTS.items():
        rules = th.rules(cfg)
        assert len(rules) == keys, cfg
        assert sum(not r.off for r in rules.values()) == active, cfg
    r = th.rules("python")["qsc_code_mean_word_length"]
    assert (r.lt, r.gt) == (2, 10)
    assert th.rules("go")["qsc_codego_cate_testfile"].random_drop == 0.8
    assert th.rules("data")["qsc_code_num_chars"].gt == 5000


def test_select_config() -> None:
    assert select_config("markdown", "text", "zh") == "zh"
    assert select_config("markdown", "text", "pt") == "en"
    assert select_config("python", "code", "en") == "python"
    assert select_config("sql", "code", "en") == "sql"
    assert select_config("json", "data", "en") == "data"
    assert select_config("php", "code", "en") == "others"
    assert select_config("csv", "excluded", "en") == "none"


def _edited(tmp_path: Path, old: str, new: str) -> FilterThresholds:
    text = DEFAULT_THRESHOLDS_PATH.read_text(encoding="utf-8")
    assert old in text
    p = tmp_path / "t.toml"
    p.write_text(text.replace(old, new, 1), encoding="utf-8")
    return FilterThresholds.load(p)


def test_editing_threshold_changes_decision(tmp_path: Path) -> None:
    signals = {"qsc_code_num_words": 25}
    kw = dict(program_lang="php", doc_type="code", lang="en", file_id="a.php")
    d = apply_filters(signals, **kw)
    assert not d.keep and d.hits == ["qsc_code_num_words"] and d.config == "others"
    th = _edited(tmp_path, "[others]\nqsc_code_frac_chars_replacement_symbols = { gt = 0.01 }\nqsc_code_num_words = { lt = 30 }",
                 "[others]\nqsc_code_frac_chars_replacement_symbols = { gt = 0.01 }\nqsc_code_num_words = { lt = 20 }")
    assert apply_filters(signals, thresholds=th, **kw).keep


def test_disabling_rule_with_off(tmp_path: Path) -> None:
    signals = {"qsc_codejavascript_cate_ast": 0.0}
    kw = dict(program_lang="javascript", doc_type="code", lang="en", file_id="a.js")
    assert not apply_filters(signals, **kw).keep
    th = _edited(tmp_path, "qsc_codejavascript_cate_ast = { eq = false }", "qsc_codejavascript_cate_ast = { off = true }")
    assert apply_filters(signals, thresholds=th, **kw).keep


def test_none_value_never_fires() -> None:
    d = apply_filters({"qsc_code_num_words": None}, program_lang="php", doc_type="code", lang="en", file_id="x")
    assert d.keep


def test_unknown_signal_name_raises_naming_key() -> None:
    with pytest.raises(ThresholdConfigError, match="qsc_code_num_wordz"):
        FilterThresholds.loads("[python]\nqsc_code_num_wordz = { lt = 30 }\n")


def test_unknown_config_and_rule_keys_raise() -> None:
    with pytest.raises(ThresholdConfigError, match="rust"):
        FilterThresholds.loads("[rust]\nqsc_code_num_words = { lt = 30 }\n")
    with pytest.raises(ThresholdConfigError, match="below"):
        FilterThresholds.loads("[python]\nqsc_code_num_words = { below = 30 }\n")
    with pytest.raises(ThresholdConfigError, match="must be a number"):
        FilterThresholds.loads('[python]\nqsc_code_num_words = { lt = "30" }\n')
    with pytest.raises(ThresholdConfigError, match="invalid TOML"):
        FilterThresholds.loads("[python\n")


def test_toml_is_not_evaluated() -> None:
    # a lambda string is just an invalid rule, never executed
    with pytest.raises(ThresholdConfigError):
        FilterThresholds.loads('[python]\nqsc_code_num_words = "lambda x: __import__(\'os\')"\n')
