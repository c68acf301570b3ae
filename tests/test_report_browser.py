"""The corpus report in a real browser: the asset page in the Dagster UI and the HTML file itself.

Same harness as tests/test_ui_browser.py (``dagster dev`` on loopback with a tiny real corpus, Debian's
Chromium driven by Playwright): launch the code pipeline for partition c (``refinecode_job``), press
Materialize on ``corpus_report`` in the UI, then check that the charts are rendered images (non-zero
natural size) and the tables are there -- on the asset page and in the report file. Screenshots go
to ``$OPENCODER_ARTIFACTS`` (default: the test's tmp dir), never into the repository.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.test_ui_browser import (  # noqa: F401 - dagster_dev is a fixture
    CHROMIUM,
    CHROMIUM_ARGS,
    _dismiss_onboarding,
    _graphql,
    _latest_run,
    _wait_run,
    dagster_dev,
)

pytestmark = pytest.mark.timeout(420)
ON_CI = os.environ.get("CI", "").lower() == "true"

_LAUNCH = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""


def _artifacts(tmp_path: Path) -> Path:
    out = Path(os.environ.get("OPENCODER_ARTIFACTS") or tmp_path / "artifacts")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _launch_job(base: str, job: str, partition: str) -> None:
    repo = _graphql(base, "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }")
    node = repo["data"]["repositoriesOrError"]["nodes"][0]
    import urllib.request

    params = {"selector": {"repositoryLocationName": node["location"]["name"], "repositoryName": node["name"],
                           "jobName": job},
              "runConfigData": {}, "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]}}
    req = urllib.request.Request(base + "/graphql", data=json.dumps({"query": _LAUNCH, "variables": {"p": params}}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        answer = json.loads(r.read())
    kind = answer["data"]["launchRun"]["__typename"]
    assert kind == "LaunchRunSuccess", answer


def _image_sizes(page, selector: str) -> list[tuple[int, int]]:
    """(naturalWidth, naturalHeight) of every image matching ``selector``, once all have loaded."""
    page.wait_for_function(f"Array.from(document.querySelectorAll({selector!r})).every(i => i.complete)")
    return [tuple(s) for s in page.eval_on_selector_all(selector, "els => els.map(i => [i.naturalWidth, i.naturalHeight])")]


@pytest.mark.skipif(not ON_CI and not Path(CHROMIUM).exists(),
                    reason=f"{CHROMIUM} not installed (apt package `chromium`, listed in .ci/apt-packages.txt)")
def test_report_in_the_ui_and_as_a_file(dagster_dev, tmp_path):  # noqa: F811 - the imported fixture
    if ON_CI:
        import playwright.sync_api as sync_api  # CI installs it: fail, never skip
    else:
        sync_api = pytest.importorskip("playwright.sync_api", reason="pip package `playwright` not installed")
    base, data = dagster_dev
    out = _artifacts(tmp_path)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)

            # 0. a fork with a near-copy (one line changed) of the largest header: one fuzzy-dedup cluster
            corpus = data / "default_corpus"
            largest = max((corpus / "repos" / "cpython" / "Include").glob("*.h"), key=lambda f: f.stat().st_size)
            lines = largest.read_text().splitlines(keepends=True)
            lines[len(lines) // 2] = "/* patched in the fork */\n"
            (corpus / "repos" / "fork" / "Include").mkdir(parents=True)
            (corpus / "repos" / "fork" / "Include" / largest.name).write_text("".join(lines))
            manifest = json.loads((corpus / "manifest.json").read_text())
            manifest["repos"].append({"name": "fork", "stars": 0})
            (corpus / "manifest.json").write_text(json.dumps(manifest))

            # 1. the data: source_index from its page, the code pipeline for c through refinecode_job
            page.goto(base + "/assets/source_index", wait_until="networkidle")
            _dismiss_onboarding(page)
            page.locator("button", has_text=re.compile(r"^\s*Materialize\s*$")).first.click()
            run = _wait_run(base, None)
            assert run["status"] == "SUCCESS", run
            _launch_job(base, "refinecode_job", "c")
            run = _wait_run(base, run["runId"], timeout=240)
            assert run["status"] == "SUCCESS", run

            # 2. corpus_report from its asset page
            page.goto(base + "/assets/corpus_report", wait_until="networkidle")
            _dismiss_onboarding(page)
            page.locator("button", has_text=re.compile(r"^\s*Materialize\s*$")).first.click()
            run = _wait_run(base, run["runId"])
            assert run["status"] == "SUCCESS", run

            # 3. the asset page: typed tables inline, each chart behind "[Show Markdown]" as an inline PNG
            page.goto(base + "/assets/corpus_report?view=events", wait_until="networkidle")
            sync_api.expect(page.get_by_text("report_url").first).to_be_visible(timeout=30_000)
            for key in ("funnel", "languages", "drop_reasons", "quality_signals", "dedup_clusters"):
                row = page.locator("tr", has=page.get_by_text(key, exact=True)).first
                sync_api.expect(row.locator("table").first).to_be_visible()
            sync_api.expect(page.locator("tr", has_text="files_kept").first).to_be_visible()
            page.screenshot(path=str(out / "ui_corpus_report.png"), full_page=True)
            charts = ("funnel_chart", "languages_chart", "drop_reasons_chart", "signal_histograms", "dedup_chart")
            for key in charts:
                row = page.locator("tr", has=page.get_by_text(key, exact=True)).first
                row.get_by_text("[Show Markdown]").click()
                dialog = page.locator(".bp5-dialog").last
                img = dialog.locator("img[src^='data:image/png']")
                sync_api.expect(img).to_be_visible()
                (w, h), = _image_sizes(page, ".bp5-dialog img[src^='data:image/png']")
                assert w > 300 and h > 100, (key, w, h)
                if key in ("funnel_chart", "signal_histograms"):
                    page.wait_for_timeout(800)  # the dialog fades in
                    page.screenshot(path=str(out / f"ui_corpus_report_{key}.png"))
                page.keyboard.press("Escape")
                sync_api.expect(page.locator(".bp5-dialog")).to_have_count(0)

            # 4. the HTML file linked from the metadata
            report = sorted((data / "corpus" / "corpus_report" / "__all__").glob("v-*/corpus_report.html"))[-1]
            page.goto(report.as_uri(), wait_until="load")
            sync_api.expect(page.locator("h1")).to_have_text("Corpus report")
            file_images = _image_sizes(page, "img")
            assert len(file_images) == 5 and all(w > 300 and h > 100 for w, h in file_images), file_images
            assert page.locator("h2").count() == 8
            assert page.locator("table[data-key]").count() >= 8
            kept = page.locator("table[data-key='languages'] tbody tr").first
            sync_api.expect(kept.locator("td").first).to_have_text("c")
            sync_api.expect(kept.locator("td").nth(2)).to_have_text(re.compile(r"^\d+$"))
            page.screenshot(path=str(out / "html_corpus_report.png"), full_page=True)
            page.locator("#signals").screenshot(path=str(out / "html_corpus_report_signals.png"))
            print(f"\nscreenshots: {out}")
        except BaseException:
            page.screenshot(path=str(out / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
