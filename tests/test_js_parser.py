"""``js_parser``: esprima (reference) vs tree-sitter for the ``qsc_codejavascript_*`` AST signals,
on real npm files (tests/data/npm_js, provenance in its README) and through the Dagster graph."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from dagster import materialize

from opencoder_assets.core.filtering import compute_signals_with_errors
from opencoder_assets.core.signals import SignalCompat
from opencoder_assets.core.signals.document import CodeDocument
from opencoder_assets.definitions import code_assets
from tests.conftest import REFERENCE_DATA

NPM = Path(__file__).parent / "data" / "npm_js"
#: real npm files using syntax esprima 4.0.1 (ES2017) rejects -> the feature each one uses
MODERN = {
    "undici-redirect.js": "object rest + optional chaining",
    "agent-base-helpers.js": "for await",
    "arborist-case-insensitive-map.js": "private class fields",
    "sigstore-core-stream.js": "class fields",
}
#: real npm files both parsers accept: every JS signal must be equal
CLASSIC = ["iconv-lite-utf16.js", "cacache-get.js"]
AST_SIGNALS = [
    "qsc_codejavascript_cate_var_zero", "qsc_codejavascript_frac_lines_func_ratio",
    "qsc_codejavascript_num_statement_line", "qsc_codejavascript_score_lines_no_logic",
    "qsc_codejavascript_frac_words_legal_var_name", "qsc_codejavascript_frac_words_legal_func_name",
    "qsc_codejavascript_frac_words_legal_class_name",
]

#: every rule of the esprima collector, each in a form tree-sitter spells differently
EDGE_CASES = """'use strict';
;
var a = 1, b, c = -1, d = (2), e = function () { return; }, f = async function () { return (x); };
let g = function* () {}, h = () => 1, i = async () => 2, j = `t`, k = this, l = undefined, m = null;
const { p, q } = obj, [r, s] = arr;
function R() { for (const t of u) { return t + 1; } for (var w in o) { return typeof w; } }
for (let z = 0; z < 3; z++) {}
function F() { return !x; }
function* G() { yield 1; }
async function H() { return await y; }
class K {}
var L = class M {};
module.exports.n1 = function () {};
module.exports.n2 = () => 1;
module.exports.n3 = 5;
module.exports.n4 = { a: 1 };
module.exports[n5] = 'x';
module.exports['n6'] = 'y';
module.exports.n7 += 1;
exports.n8 = 1;
(function () { var inner = 1; })();
"""
MODULE_CASES = """import x from 'y';
import { z } from 'w';
export const A = 1;
export default class B {}
export function C() {}
"""


def _signals(text: str, parser: str, name: str = "f.js", compat: SignalCompat | None = None):
    return compute_signals_with_errors(text, program_lang="javascript", doc_type="code", ext="js", filename=name,
                                       size_bytes=len(text.encode()), compat=compat, js_parser=parser)


@pytest.mark.parametrize("name", sorted(MODERN))
def test_modern_npm_files_parse_only_under_tree_sitter(name):
    text = (NPM / name).read_text(encoding="utf-8")
    es, _ = _signals(text, "esprima", name)
    ts, ts_err = _signals(text, "tree-sitter", name)
    assert es["qsc_codejavascript_cate_ast"] == 0.0, MODERN[name]
    assert all(es[s] is None for s in AST_SIGNALS)
    assert ts["qsc_codejavascript_cate_ast"] == 1.0, MODERN[name]
    assert ts["qsc_codejavascript_num_statement_line"] > 0 and not ts_err
    # the signals that the esprima parse could not give now have values
    assert ts["qsc_codejavascript_score_lines_no_logic"] is not None


@pytest.mark.parametrize("name", CLASSIC)
def test_both_parsers_agree_on_real_npm_code(name):
    text = (NPM / name).read_text(encoding="utf-8")
    es, _ = _signals(text, "esprima", name)
    ts, _ = _signals(text, "tree-sitter", name)
    assert es["qsc_codejavascript_cate_ast"] == ts["qsc_codejavascript_cate_ast"] == 1.0
    assert {k: v for k, v in ts.items() if k.startswith("qsc_codejavascript")} == \
        {k: v for k, v in es.items() if k.startswith("qsc_codejavascript")}
    assert es["qsc_codejavascript_frac_lines_func_ratio"] > 0 and es["qsc_codejavascript_frac_words_legal_var_name"]


@pytest.mark.parametrize("text", [EDGE_CASES, MODULE_CASES], ids=["script", "module"])
def test_tree_sitter_collector_follows_every_esprima_rule(text):
    """Same name lists (as multisets) and counts as the esprima walk, on the cases where the two
    trees differ in shape: parentheses, async/generator/arrow functions, destructuring, for-of
    declarations, computed ``module.exports[...]``, ``+=``, import/export, class expressions."""
    from opencoder_assets.core.signals.javascript import _stats

    es = _stats(CodeDocument(text, program_lang="javascript", doc_type="code"))
    ts = _stats(CodeDocument(text, program_lang="javascript", doc_type="code", js_parser="tree-sitter"))
    assert es is not None and ts is not None
    for field in ("variables", "simple_variables", "functions", "classes"):
        assert sorted(map(str, getattr(ts, field))) == sorted(map(str, getattr(es, field))), field
    assert (ts.simple_returns, ts.imports) == (es.simple_returns, es.imports)
    assert _signals(text, "tree-sitter")[0] == _signals(text, "esprima")[0]


def test_reference_js_files_same_values_under_tree_sitter():
    raw = REFERENCE_DATA / "raw_code" / "javascript"
    files = sorted(raw.glob("*.js"))
    assert files
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert _signals(text, "tree-sitter", f.name)[0] == _signals(text, "esprima", f.name)[0], f.name


@pytest.mark.parametrize("text", ["if (a) {", "var x = [1, 2", "let x: number = 1;"],
                         ids=["missing", "error", "typescript"])
def test_tree_sitter_error_or_missing_node_is_no_ast(text):
    sig, _ = _signals(text, "tree-sitter")
    assert sig["qsc_codejavascript_cate_ast"] == 0.0
    assert sig["qsc_codejavascript_cate_var_zero"] is None


def test_tree_sitter_keeps_the_per_file_budget():
    text = (NPM / "cacache-get.js").read_text(encoding="utf-8")
    sig, err = _signals(text, "tree-sitter", "cacache-get.js", SignalCompat(js_ast_max_chars=len(text) - 1))
    assert sig["qsc_codejavascript_cate_ast"] is None
    assert "SignalBudgetExceeded" in err["qsc_codejavascript_cate_ast"] and "cacache-get.js" in err[
        "qsc_codejavascript_cate_ast"]


def test_unknown_parser_is_rejected_naming_the_file():
    with pytest.raises(ValueError, match=r"x\.js.*acorn"):
        CodeDocument("var a;", program_lang="javascript", doc_type="code", filename="x.js", js_parser="acorn")


def test_js_parser_setting_flows_through_the_asset_graph(tmp_path, pipeline_resources):
    """``quality_signals`` config ``js_parser``: esprima (default) nulls the ES2018 files' AST,
    tree-sitter parses them; the stored signals say so."""
    repos = tmp_path / "repos" / "npm"
    repos.mkdir(parents=True)
    for name in [*MODERN, *CLASSIC]:
        shutil.copyfile(NPM / name, repos / name)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"repos": [{"name": "npm", "stars": 1, "commit_time": "2024-01-01T00:00:00Z"}]}))
    res = pipeline_resources([tmp_path / "repos"], manifest, engine="inprocess")
    source = [a for a in code_assets if a.partitions_def is None]
    upto = {"raw_code", "preprocessed_code", "exact_deduped_code", "fuzzy_deduped_code", "transformed_code",
            "quality_signals"}
    steps = [a for a in code_assets if a.partitions_def is not None and a.key.to_user_string() in upto]
    assert materialize(source, resources=res).success
    sql = ("SELECT path, signals['qsc_codejavascript_cate_ast'] FROM quality_signals "
           "WHERE partition = 'javascript' ORDER BY path")
    parsed = {}
    for parser in ("esprima", "tree-sitter"):
        cfg = {} if parser == "esprima" else {"ops": {"quality_signals": {"config": {"js_parser": parser}}}}
        assert materialize(steps, resources=res, partition_key="javascript", run_config=cfg).success
        parsed[parser] = dict(res["metrics"].query(sql))
    assert set(parsed["esprima"]) == {*MODERN, *CLASSIC}
    assert {p for p, v in parsed["esprima"].items() if v == 1.0} == set(CLASSIC)
    assert {p for p, v in parsed["tree-sitter"].items() if v == 1.0} == {*MODERN, *CLASSIC}


@pytest.mark.parametrize("text", ["#!/usr/bin/env node\nvar a = 1;\n", "var a = <div>x</div>;\n", "return 1;\n"],
                         ids=["hashbang", "jsx", "top-level-return"])
def test_documented_differences_only_tree_sitter_parses(text):
    """docs/filtering.md "JavaScript parser": inputs esprima rejects and tree-sitter accepts
    besides ES2018+ syntax (tree-sitter checks syntax only, knows JSX and ``#!``)."""
    assert _signals(text, "esprima")[0]["qsc_codejavascript_cate_ast"] == 0.0
    assert _signals(text, "tree-sitter")[0]["qsc_codejavascript_cate_ast"] == 1.0
