"""The Dagster UI in a real browser: materialize source_index, then raw_code[c] from the partition dialog.

Starts ``dagster dev`` on loopback (own process group, killed as a group: ``dagster dev`` ignores
a plain SIGTERM from a background job), drives Debian's headless Chromium with Playwright
(``playwright`` from PyPI, but never its own browser download), asserts the run succeeded and
the asset page shows the materialization metadata, and saves a screenshot: into
``$OPENCODER_ARTIFACTS`` when set (e.g. a CI artifacts dir), else the test's tmp dir --
never into the checkout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import INCLUDE

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("OPENCODER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: where the screenshot goes (kept after the run); unset: the test's tmp dir
ARTIFACTS_ENV = "OPENCODER_ARTIFACTS"

pytestmark = pytest.mark.timeout(300)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def _graphql(base: str, query: str) -> dict:
    req = urllib.request.Request(base + "/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _latest_run(base: str) -> dict | None:
    data = _graphql(base, "{ runsOrError(limit: 1) { ... on Runs { results { runId status tags { key value } } } } }")
    runs = data["data"]["runsOrError"]["results"]
    return runs[0] if runs else None


def _wait_run(base: str, previous: str | None, timeout: float = 120) -> dict:
    """The newest run that is not ``previous``, once finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = _latest_run(base)
        if run and run["runId"] != previous and run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            return run
        time.sleep(1)
    raise TimeoutError("run did not finish")


@pytest.fixture()
def dagster_dev(tmp_path: Path):
    """``dagster dev`` on a free loopback port with a tiny real corpus (C headers of this interpreter)."""
    data = tmp_path / "data"
    repo = data / "default_corpus" / "repos" / "cpython"
    (repo / "Include").mkdir(parents=True)
    for h in sorted(INCLUDE.glob("*.h"))[:12]:
        shutil.copyfile(h, repo / "Include" / h.name)
    (data / "default_corpus" / "manifest.json").write_text(json.dumps({"repos": [{"name": "cpython", "stars": 1}]}))
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "OPENCODER_DATA": str(data),
           "OPENCODER_METRICS_DB": str(data / "metrics.duckdb")}
    dagster = str(Path(sys.executable).parent / "dagster")
    log = open(tmp_path / "dagster_dev.log", "w")
    proc = subprocess.Popen([dagster, "dev", "-w", "workspace.yaml", "-p", str(port), "-h", "127.0.0.1"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(base + "/server_info", 150, proc)
        yield base, data
    finally:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


def _dismiss_onboarding(page) -> None:
    """The first visit shows a "Join the Dagster community" dialog; skip it if it appears."""
    try:
        page.get_by_role("button", name="Skip").click(timeout=5000)
    except Exception:  # noqa: BLE001 - not shown (e.g. already dismissed)
        pass


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed (apt package `chromium`, "
                    "listed in .ci/apt-packages.txt)")
def test_materialize_partition_from_ui(dagster_dev, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip package `playwright` not installed")
    base, data = dagster_dev
    shot = Path(os.environ.get(ARTIFACTS_ENV) or tmp_path) / "ui_raw_code_c.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        # Playwright gives the browser a fresh temporary profile itself
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)

            # 1. source_index (unpartitioned): the Materialize button launches a run directly
            page.goto(base + "/assets/source_index", wait_until="networkidle")
            _dismiss_onboarding(page)
            page.locator("button", has_text=re.compile(r"^\s*Materialize\s*$")).first.click()
            run = _wait_run(base, None)
            assert run["status"] == "SUCCESS", run
            page.goto(base + "/assets/source_index", wait_until="networkidle")
            sync_api.expect(page.get_by_text("partitions_with_files").first).to_be_visible(timeout=30_000)

            # 2. raw_code, partition c, from the partition dialog
            page.goto(base + "/assets/raw_code", wait_until="networkidle")
            _dismiss_onboarding(page)
            page.locator("button", has_text=re.compile(r"Materialize")).first.click()
            dialog = page.locator(".bp5-dialog", has_text="Launch runs to materialize raw_code")
            sync_api.expect(dialog).to_be_visible()
            dialog.get_by_text("Select a partition or create one").click()
            page.keyboard.type("c")
            page.locator(".dagster-popover").get_by_text("c", exact=True).first.click()
            dialog.get_by_text("Launch runs to materialize raw_code").click()  # close the picker
            sync_api.expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
            dialog.locator("button", has_text=re.compile(r"Launch")).last.click()
            run2 = _wait_run(base, run["runId"])
            assert run2["status"] == "SUCCESS", run2
            tags = {t["key"]: t["value"] for t in run2["tags"]}
            assert tags.get("dagster/partition") == "c"

            # 3. the asset page shows the materialization of partition c and its metadata
            page.goto(base + "/assets/raw_code?view=partitions&partition=c", wait_until="networkidle")
            sync_api.expect(page.get_by_text("kept_files").first).to_be_visible(timeout=30_000)
            sync_api.expect(page.get_by_text("drop_reasons").first).to_be_visible()
            sync_api.expect(page.locator("tr", has_text="kept_files").first).to_contain_text("12")  # 12 headers
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000, shot  # a real rendered page, not an empty file
            print(f"\nscreenshot: {shot}")
        finally:
            browser.close()
    # the run really wrote partition c
    assert (data / "corpus" / "raw_code" / "c" / "CURRENT").exists()
