"""Per-file budgets of the expensive parsers (esprima, BeautifulSoup, ast.parse).

Why: their cost is seconds and hundreds of MB per MB of input, so one hostile file could stall
or OOM a partition. Over budget, only the signals that need the parse become None with a
``SignalBudgetExceeded`` entry in ``signal_errors`` (naming the file); under budget every value
is identical to an unbudgeted run (reference parity is in test_signals_conformance.py).
"""

from __future__ import annotations

import random
import sysconfig
from pathlib import Path

from opencoder_assets.core.filtering import compute_signals_with_errors
from opencoder_assets.core.signals import SignalCompat

STDLIB = Path(sysconfig.get_paths()["stdlib"])
NO_BUDGET = SignalCompat(js_ast_max_chars=None, html_parse_max_chars=None, python_ast_max_chars=None)
JS = """import { x } from './x.js';
// a comment
export function addNumbers(a, b) { var total = a + b; console.log(total); return total; }
class Widget { constructor() { this.v = 1; } }
var simple = 3;
module.exports.helper = function () { return null; };
"""


def _signals(text: str, lang: str, ext: str, compat: SignalCompat, name: str = "") -> tuple[dict, dict]:
    return compute_signals_with_errors(
        text, program_lang=lang, doc_type="code", ext=ext, filename=name or f"f.{ext}",
        size_bytes=len(text.encode("utf-8")), compat=compat,
    )


def _html_text() -> str:
    for p in sorted(Path("/usr/share/doc").rglob("*.html")):
        text = p.read_text(encoding="utf-8", errors="replace")
        if len(text) > 5000:
            return text
    return "<html><body>" + "<div><p>Hello <b>world</b> text</p></div>\n" * 200 + "</body></html>"


def _over_budget(full: dict, budgeted: dict, errors: dict) -> set[str]:
    """Names whose value changed; each must be a None with a budget error, nothing else may differ."""
    changed = {k for k in full if full[k] != budgeted[k]}
    assert changed, "the budget did not apply"
    for name in changed:
        assert budgeted[name] is None and errors[name].startswith("SignalBudgetExceeded"), name
    assert set(errors) >= changed and all(e.startswith("SignalBudgetExceeded") for e in errors.values())
    return changed


def test_javascript_over_budget_skips_only_the_ast_signals() -> None:
    text = JS * 40
    full, full_err = _signals(text, "javascript", "js", NO_BUDGET)
    assert not full_err and full["qsc_codejavascript_cate_ast"] == 1.0
    small = SignalCompat(js_ast_max_chars=len(text) - 1)
    budgeted, errors = _signals(text, "javascript", "js", small, name="bundle.min.js")
    changed = _over_budget(full, budgeted, errors)
    assert all(n.startswith("qsc_codejavascript_") for n in changed)
    assert "qsc_codejavascript_frac_lines_print" not in changed  # needs no AST
    assert "bundle.min.js" in errors["qsc_codejavascript_cate_ast"]
    assert f"{len(text):,} chars" in errors["qsc_codejavascript_cate_ast"]
    # exactly at the budget: parsed, identical
    assert _signals(text, "javascript", "js", SignalCompat(js_ast_max_chars=len(text))) == (full, full_err)


def test_default_javascript_budget_applies_to_a_megabyte_line() -> None:
    """The production default (no compat passed, as quality_signals calls it) skips esprima."""
    unit = "function f(a,b){var c=a+b;if(c>2){return c*2}return a};"
    text = unit * (1_000_001 // len(unit) + 1)
    sig, errors = compute_signals_with_errors(
        text, program_lang="javascript", doc_type="code", ext="js", filename="min.js", size_bytes=len(text))
    assert sig["qsc_codejavascript_cate_ast"] is None
    assert errors["qsc_codejavascript_cate_ast"].startswith("SignalBudgetExceeded: min.js: esprima parse")
    assert sig["qsc_code_num_words"] is not None


def test_html_over_budget_skips_only_the_soup_signals() -> None:
    text = _html_text()
    full, full_err = _signals(text, "html", "html", NO_BUDGET)
    assert not full_err
    budgeted, errors = _signals(text, "html", "html", SignalCompat(html_parse_max_chars=1000))
    changed = _over_budget(full, budgeted, errors)
    assert changed == {"qsc_codehtml_cate_ast", "qsc_codehtml_frac_words_text", "qsc_codehtml_num_chars_text"}


def test_python_over_budget_falls_back_to_the_lexer_split() -> None:
    """Over the ast.parse budget the code/comment split still works (Pygments, as the reference)."""
    text = (STDLIB / "textwrap.py").read_text(encoding="utf-8")
    full, full_err = _signals(text, "python", "py", NO_BUDGET)
    assert not full_err
    budgeted, errors = _signals(text, "python", "py", SignalCompat(python_ast_max_chars=1000))
    changed = _over_budget(full, budgeted, errors)
    assert "qsc_codepython_cate_ast" in changed and "qsc_code_frac_chars_comments" in changed
    # the general code signals built on the code/comment split are unchanged
    for name in ("qsc_code_num_words", "qsc_code_frac_lines_dupe_lines", "qsc_code_frac_chars_alphabet"):
        assert budgeted[name] == full[name] and budgeted[name] is not None, name


def test_under_budget_every_value_is_unbudgeted() -> None:
    rng = random.Random(7)
    files = rng.sample(sorted(p for p in STDLIB.glob("*.py") if p.stat().st_size < 200_000), 15)
    for p in files:
        text = p.read_text(encoding="utf-8", errors="replace")
        assert _signals(text, "python", "py", SignalCompat()) == _signals(text, "python", "py", NO_BUDGET), p
    for text, lang, ext in ((JS * 5, "javascript", "js"), (_html_text(), "html", "html")):
        assert _signals(text, lang, ext, SignalCompat()) == _signals(text, lang, ext, NO_BUDGET), lang
