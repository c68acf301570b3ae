"""Under ``CI=true`` every kind of skip fails the run (tests/conftest.py hooks).

A real pytest subprocess runs a small test directory with ``tests.conftest`` loaded as a
plugin, once with ``CI=true`` and once without, and the JUnit report says what happened
to each test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CASES = {
    "test_kinds.py": """
        import sys
        import pytest

        def test_plain_skip():
            pytest.skip("tool missing")

        @pytest.mark.skipif(True, reason="condition true")
        def test_skipif():
            pass

        def test_importorskip_in_test():
            pytest.importorskip("no_such_module_opencoder_ci")

        @pytest.mark.skip_allowed_in_ci(reason="cannot run on any CI machine")
        def test_allowed():
            pytest.skip("allowed")

        @pytest.mark.xfail(reason="known", strict=True)
        def test_xfail():
            assert False

        def test_passes():
            assert True
    """,
    "test_module_skip.py": """
        import pytest
        pytest.importorskip("no_such_module_opencoder_ci")

        def test_never_runs():
            pass
    """,
}


def _run(tmp_path: Path, case: str, ci: str | None) -> dict[str, str]:
    """Outcome per test name (module name for a collection error) from the JUnit XML.
    One file per run: a collection error stops the whole session, as it should in CI."""
    (tmp_path / case).write_text(textwrap.dedent(CASES[case]))
    xml = tmp_path / f"report-{case}-{ci}.xml"
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(REPO)
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider",
         f"--junitxml={xml}", "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path / case)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    outcomes: dict[str, str] = {}
    for testcase in ET.parse(xml).getroot().iter("testcase"):
        kinds = [child for child in testcase if child.tag in ("failure", "error", "skipped")]
        outcome = kinds[0].tag if kinds else "passed"
        if outcome == "skipped" and kinds[0].get("type") == "pytest.xfail":
            outcome = "xfailed"
        outcomes[testcase.get("name") or ""] = outcome
    return outcomes


def test_skips_fail_under_ci_true(tmp_path: Path) -> None:
    out = _run(tmp_path, "test_kinds.py", "true")
    assert out == {
        "test_plain_skip": "failure",
        "test_skipif": "error",  # skipif acts in the setup phase: a failed setup is an error
        "test_importorskip_in_test": "failure",
        "test_allowed": "skipped",
        "test_xfail": "xfailed",
        "test_passes": "passed",
    }
    # a module skipped at import time is a collection error: its tests never silently vanish
    assert _run(tmp_path, "test_module_skip.py", "true") == {"test_module_skip": "error"}


def test_skips_stay_skips_without_ci(tmp_path: Path) -> None:
    out = _run(tmp_path, "test_kinds.py", None)
    assert out == {
        "test_plain_skip": "skipped",
        "test_skipif": "skipped",
        "test_importorskip_in_test": "skipped",
        "test_allowed": "skipped",
        "test_xfail": "xfailed",
        "test_passes": "passed",
    }
    assert _run(tmp_path, "test_module_skip.py", "false") == {"test_module_skip": "skipped"}
