"""The notebook corpus through Dagster: real notebooks in, percent-format documents out.

Real notebooks: the nbsphinx documentation (Debian ``python-nbsphinx-doc``, in
.ci/apt-packages.txt) ships each notebook twice, executed (outputs: PNG/SVG/LaTeX/HTML, streams,
tracebacks; some gzipped) and as its unexecuted source (same cells, no outputs). Rendered without
outputs the two copies are the same document, so exact dedup must keep one of each pair.
Hostile notebooks are written by the tests (docs/notebooks.md, "Untrusted input").
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from dagster import materialize

from opencoder_assets.assets.code import funnel_rows
from opencoder_assets.core.notebooks import MAX_JSON_CONTAINERS, NotebookError, render_notebook
from opencoder_assets.core.steps import STEP_NAMES
from opencoder_assets.definitions import code_assets, code_checks

NBSPHINX = Path("/usr/share/doc/python-nbsphinx/html")
#: executed copies in html/ (plain or gzipped) whose unexecuted source is html/_sources/<name>
PAIRS = ["custom-css", "hidden-cells", "allow-errors-per-cell", "configuring-kernels", "code-cells",
         "allow-errors", "gallery/cell-tag", "gallery/multiple-outputs"]
PARTITIONED = [a for a in code_assets if a.partitions_def is not None]
SOURCE_INDEX = [a for a in code_assets if a.partitions_def is None]
BLOB = "Z" * (5 * 1024 * 1024)  # a 5 MB output


def _need_nbsphinx() -> None:
    if not (NBSPHINX / "_sources" / "code-cells.ipynb").is_file():
        pytest.skip("python-nbsphinx-doc missing (Debian package, .ci/apt-packages.txt)")


def _executed(name: str) -> str:
    plain = NBSPHINX / f"{name}.ipynb"
    if plain.is_file():
        return plain.read_text(encoding="utf-8")
    with gzip.open(NBSPHINX / f"{name}.ipynb.gz", "rt", encoding="utf-8") as f:
        return f.read()


def _outputs(text: str) -> int:
    return sum(len(c.get("outputs", [])) for c in json.loads(text)["cells"])


R_NOTEBOOK = {
    "nbformat": 4, "nbformat_minor": 5,
    "metadata": {"kernelspec": {"display_name": "R", "language": "R", "name": "ir"},
                 "language_info": {"name": "R", "version": "4.2.2"}},
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Fuel economy\n", "\n", "A linear model of mpg."]},
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [
            {"output_type": "stream", "name": "stdout", "text": ["R_OUTPUT_MARKER\n"]}],
         "source": ["library(stats)\n", "data(mtcars)\n", "model <- lm(mpg ~ wt + hp, data = mtcars)\n",
                    "coefficients <- summary(model)$coefficients\n", "print(coefficients)\n",
                    "residual_error <- sigma(model)\n", "fitted_values <- predict(model, newdata = mtcars)\n",
                    "plot(mtcars$wt, mtcars$mpg, main = \"Weight against mileage\")\n",
                    "abline(lm(mpg ~ wt, data = mtcars), col = \"red\")\n",
                    "cat(\"residual standard error:\", residual_error, \"\\n\")\n"]},
    ],
}


def _hostile() -> dict[str, str]:
    """name -> file text of notebooks an attacker (or a broken exporter) could commit."""
    blob_nb = json.loads((NBSPHINX / "never-execute.ipynb").read_text(encoding="utf-8"))
    for cell in blob_nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                                "data": {"text/plain": [BLOB]}}]
    return {
        "invalid.ipynb": '{"cells": [ {"cell_type": "code", "source": "x = 1"',
        "deep.ipynb": '{"cells": ' + "[" * 200_000 + "]" * 200_000 + "}",
        "containers.ipynb": '{"cells": [], "metadata": {"x": [' + "{}," * (MAX_JSON_CONTAINERS + 10) + "{}]}}",
        "nonstring.ipynb": json.dumps({"cells": [{"cell_type": "code", "source": {"evil": True}, "outputs": []}],
                                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5}),
        "toplevel.ipynb": "[1, 2, 3]",
        "surrogate.ipynb": '{"cells": [{"cell_type": "markdown", "source": "ok"},'
                           ' {"cell_type": "code", "source": "s = \'\\ud800\'"}]}',
        "nul.ipynb": '{"cells": [{"cell_type": "code", "source": ["x = 1\\n", "y = \'\\u0000\'"]}]}',
        "empty.ipynb": json.dumps({"cells": [{"cell_type": "code", "source": ["  \n"], "outputs": []}],
                                   "metadata": {"kernelspec": {"language": "python"}}, "nbformat": 4,
                                   "nbformat_minor": 5}),
        "blob.ipynb": json.dumps(blob_nb),
    }


EXPECTED_DROPS = {
    "hostile/invalid.ipynb": ("invalid_notebook", "not JSON"),
    "hostile/deep.ipynb": ("invalid_notebook", "nested too deeply"),
    "hostile/containers.ipynb": ("invalid_notebook", f"over {MAX_JSON_CONTAINERS} JSON containers"),
    "hostile/nonstring.ipynb": ("invalid_notebook", "cells[0].source: dict, expected a string or a list of strings"),
    "hostile/toplevel.ipynb": ("invalid_notebook", "top level is a JSON list"),
    "hostile/surrogate.ipynb": ("invalid_notebook", "cells[1].source: surrogates not allowed at 5"),
    "hostile/nul.ipynb": ("invalid_notebook", "cells[0].source: NUL character at 11"),
    "hostile/empty.ipynb": ("empty_notebook", "1 cells, none with source text"),
}


@pytest.fixture()
def notebook_repos(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """repos/executed (outputs), repos/sources (no outputs), repos/hostile, repos/rstats."""
    _need_nbsphinx()
    root = tmp_path / "repos"
    files: dict[str, str] = {}
    for name in PAIRS:
        files[f"executed/{name}.ipynb"] = _executed(name)
        files[f"sources/{name}.ipynb"] = (NBSPHINX / "_sources" / f"{name}.ipynb").read_text(encoding="utf-8")
    files.update({f"hostile/{k}": v for k, v in _hostile().items()})
    files["rstats/mileage.ipynb"] = json.dumps(R_NOTEBOOK, indent=1)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    shutil.copyfile(NBSPHINX / "_sources" / "custom-css.ipynb", root / "sources" / "not-a-notebook.json")
    return root, files


def _content(res, step: str) -> dict[str, dict]:
    import pyarrow.parquet as pq

    out = {}
    for shard in res["storage"].shards(step, "jupyter"):
        for row in pq.read_table(shard).to_pylist():
            out[f"{row['repo']}/{row['path']}"] = row
    return out


def test_notebook_partition_end_to_end(notebook_repos, pipeline_resources):
    root, files = notebook_repos
    res = pipeline_resources([root], None, engine="inprocess", unit_rows=7)
    assert materialize(SOURCE_INDEX, resources=res).success
    result = materialize([*PARTITIONED, *code_checks], resources=res, partition_key="jupyter",
                         run_config={"ops": {"filtered_code": {"config": {"random_mode": "strict"}}}})
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations()), [
        c.check_name for c in result.get_asset_check_evaluations() if not c.passed]
    metrics, storage = res["metrics"], res["storage"]

    def decisions(step: str) -> dict[str, tuple]:
        rows = metrics.query("SELECT repo || '/' || path, decision, reason, detail, language FROM file_decisions "
                             "WHERE step = ? AND partition = 'jupyter'", [step])
        return {r[0]: r[1:] for r in rows}

    # every .ipynb (and only those) is in the partition
    raw = decisions("raw_code")
    assert set(raw) == set(files)
    assert all(lang == "jupyter notebook" for *_, lang in raw.values())

    # hostile notebooks: recorded drops naming the file and what was wrong
    pre = decisions("preprocessed_code")
    for rel, (reason, detail) in EXPECTED_DROPS.items():
        assert pre[rel][:2] == ("dropped", reason), (rel, pre[rel])
        assert detail in pre[rel][2], (rel, pre[rel])
    dropped = {rel for rel, d in pre.items() if d[0] == "dropped"}
    assert dropped == set(EXPECTED_DROPS)

    # cells extracted, outputs gone, kernel language recorded
    kept = _content(res, "preprocessed_code")
    for rel, row in kept.items():
        raw_text = files[rel]
        if rel.startswith("rstats/"):
            assert row["language"] == "r" and row["doc_type"] == "code"
            assert pre[rel][2].startswith("notebook kernel=r (kernelspec.language) code_cells=1 markdown_cells=1")
            assert "R_OUTPUT_MARKER" in raw_text and "R_OUTPUT_MARKER" not in row["content"]
            assert "# %%\nlibrary(stats)\n" in row["content"]
            continue
        assert row["language"] == "python" and pre[rel][3] == "python", rel
        assert pre[rel][2].startswith("notebook kernel=python (kernelspec.language) "), pre[rel]
        assert f"outputs_dropped={_outputs(raw_text)}" in pre[rel][2], (rel, pre[rel][2])
        assert row["content"].startswith("# %% [markdown]\n# ")
        assert '"cell_type"' not in row["content"] and '"outputs"' not in row["content"]
        assert row["size_bytes"] == len(row["content"].encode())
    code_cells = kept["executed/code-cells.ipynb"]["content"]
    executed_raw = files["executed/code-cells.ipynb"]
    assert "iVBORw0KGgo" in executed_raw and "iVBORw0KGgo" not in code_cells  # PNG output gone
    assert "# %%\n# %%bash\n# for i in 1 2 3\n" in code_cells  # a bash cell magic commented out
    assert "\n# %%\nprint('Hello, world!')\n6 * 7\n" in code_cells
    assert "# %% [markdown]\n# # Code Cells\n#\n# ## Code, Output, Streams\n" in code_cells
    # the 5 MB output: read past, never into the document
    blob = kept["hostile/blob.ipynb"]
    assert len(files["hostile/blob.ipynb"]) > 5_000_000
    assert "ZZZZ" not in blob["content"] and blob["size_bytes"] < 10_000

    # duplicates across notebooks: executed and unexecuted copies render the same, one survives
    exact = decisions("exact_deduped_code")
    for name in PAIRS:
        pair = [exact[f"executed/{name}.ipynb"], exact[f"sources/{name}.ipynb"]]
        assert sorted(d[0] for d in pair) == ["dropped", "kept"], (name, pair)
        assert any(d[1] == "exact_duplicate" and d[2].startswith("duplicate_of:") for d in pair)

    # Python rules for Python notebooks, the generic table for the R kernel
    filt = decisions("filtered_code")
    assert filt
    for rel, (_decision, _reason, detail, lang) in filt.items():
        expected = ("config=others", "r") if rel.startswith("rstats/") else ("config=python", "python")
        assert (detail.split()[0], lang) == expected, (rel, detail)
    rules = {d[1] for d in filt.values() if d[0] == "dropped"}
    assert rules and all(r.startswith("filter:qsc_") for r in rules)
    assert any("qsc_codepython_" in d[2] for d in filt.values())  # the Python-only rules ran
    assert any(d[0] == "kept" and d[3] == "python" for d in filt.values())
    assert filt["rstats/mileage.ipynb"][0] == "kept"

    # funnel: its own line per step, counts add up, notebook counters match the files
    rows = funnel_rows(storage, "jupyter")
    assert [r["step"] for r in rows] == STEP_NAMES
    assert rows[0]["files_in"] == len(files)
    for prev, row in zip(rows, rows[1:], strict=False):
        assert row["files_in"] == prev["files_kept"], (prev, row)
    for step in STEP_NAMES:
        n_in = {r["step"]: r["files_in"] for r in rows}[step]
        assert len(decisions(step)) == n_in, step
    extra = storage.manifest("preprocessed_code", "jupyter")["extra"]
    assert extra["notebooks.input"] == len(files)
    assert extra["notebooks.kept"] == len(kept) == len(files) - len(EXPECTED_DROPS)
    assert extra["notebooks.kernel.python"] == len(kept) - 1 and extra["notebooks.kernel.r"] == 1
    assert extra["notebooks.outputs_dropped"] == sum(_outputs(files[rel]) for rel in kept)
    assert extra["notebooks.rendered_bytes"] == sum(r["size_bytes"] for r in kept.values())
    assert extra["notebooks.code_cells"] == sum(r["content"].count("\n# %%\n") + r["content"].startswith("# %%\n")
                                               for r in kept.values())


def _nb(cells: list, metadata: dict | None = None, **top) -> str:
    return json.dumps({"cells": cells, "metadata": metadata or {}, "nbformat": 4, "nbformat_minor": 5, **top})


def _code(src) -> dict:
    return {"cell_type": "code", "source": src, "outputs": [], "metadata": {}}


@pytest.mark.parametrize(("metadata", "language", "kernel"), [
    ({"kernelspec": {"language": "python", "name": "python3"}}, "python", "python (kernelspec.language)"),
    ({"language_info": {"name": "julia"}}, "julia", "julia (language_info.name)"),
    ({"kernelspec": {"name": "julia-1.9", "display_name": "Julia 1.9"}}, "julia", "julia-1.9 (kernelspec.name)"),
    ({"kernelspec": {"name": "ir"}}, "r", "ir (kernelspec.name)"),
    ({"kernelspec": {"language": "C++17"}}, "cpp", "c++17 (kernelspec.language)"),
    ({"kernelspec": {"language": "brainfunk-dsl"}}, "jupyter notebook", "brainfunk-dsl (kernelspec.language)"),
    ({"kernelspec": {"language": ["python"]}, "language_info": {"name": "scala"}}, "scala",
     "scala (language_info.name)"),
    ({}, "python", "python (assumed)"),
    ("not a dict", "python", "python (assumed)"),
])
def test_kernel_language(metadata, language, kernel):
    doc = render_notebook(_nb([_code("x = 1\n")], metadata))
    assert doc.language == language
    assert doc.detail().startswith(f"notebook kernel={kernel} ")


def test_kernel_comment_syntax_and_magics():
    scala = render_notebook(_nb([{"cell_type": "markdown", "source": "Title"}, _code("val x = 1")],
                                {"kernelspec": {"language": "scala"}}))
    assert scala.text == "// %% [markdown]\n// Title\n\n// %%\nval x = 1\n"
    py = render_notebook(_nb([_code(["%matplotlib inline\n", "import os\n", "!ls -la\n", "os.path?\n",
                                     "x = 'why?'\n", "y = x  # done?\n"]),
                              _code("%%timeit\nsum(range(10))\n"), _code("%%html\n<b>hi</b>\n")]))
    assert py.text == ("# %%\n# %matplotlib inline\nimport os\n# !ls -la\n# os.path?\nx = 'why?'\ny = x  # done?\n\n"
                       "# %%\n# %%timeit\nsum(range(10))\n\n# %%\n# %%html\n# <b>hi</b>\n")
    # an R notebook keeps '%' and '!' lines: IPython syntax exists only in Python kernels
    r = render_notebook(_nb([_code("x <- 5 %% 3\n!TRUE")], {"kernelspec": {"language": "R"}}))
    assert r.text == "# %%\nx <- 5 %% 3\n!TRUE\n"


def test_nbformat3_worksheets():
    """Old notebooks: worksheets, ``input`` for code, heading cells with a level."""
    v3 = json.dumps({"nbformat": 3, "metadata": {"name": "old"}, "worksheets": [{"cells": [
        {"cell_type": "heading", "level": 2, "source": ["Setup"]},
        {"cell_type": "code", "language": "python", "input": ["import numpy as np\n", "np.zeros(3)"],
         "outputs": [{"output_type": "pyout", "text": ["array([0., 0., 0.])"]}]},
    ]}]})
    doc = render_notebook(v3)
    assert doc.text == "# %% [markdown]\n# ## Setup\n\n# %%\nimport numpy as np\nnp.zeros(3)\n"
    assert doc.detail() == ("notebook kernel=python (cell.language) code_cells=1 markdown_cells=1 raw_cells=0 "
                            "skipped_cells=0 outputs_dropped=1")


@pytest.mark.parametrize(("text", "detail"), [
    ('{"worksheets": {"cells": []}}', "worksheets: dict, expected a list"),
    ('{"cells": {"0": {}}}', "cells: dict, expected a list"),
    ('{"cells": ["x = 1"]}', "cells[0]: str, expected an object"),
    ('{"cells": [{"cell_type": "markdown", "source": ["a", 1]}]}',
     "cells[0].source: list with a non-string item, expected a string or a list of strings"),
    ('{"metadata": {}}', "no 'cells' (nbformat 4) or 'worksheets' (nbformat 3) key"),
    ('{"cells": [], "metadata": {"n": ' + "1" * 5000 + "}}", "not JSON: Exceeds the limit"),
])
def test_invalid_structures(text, detail):
    with pytest.raises(NotebookError) as err:
        render_notebook(text)
    assert err.value.reason == "invalid_notebook"
    assert err.value.detail.startswith(detail)
