"""A run launched from the UI (GraphQL, as the launchpad does) vs the same run from the CLI.

Why: before the step kernel, a UI-launched ``refinecode_job`` for the demo's ``c`` partition took
3 min 42 s against 3.6 s from the CLI (one new Python process per step under the multiprocess
executor). Now both run the real ``refinecode_job`` (in-process executor, checks included); the
target is UI <= 2x CLI.

    python bench/bench_ui_vs_cli.py [--data DIR] [--partition c] [--repeat 2]

``--data`` must hold a prepared default corpus (``opencoder demo`` creates ``data/``); the bench
copies nothing and writes its runs under a temporary DAGSTER_HOME.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gql(base: str, query: str, variables: dict | None = None) -> dict:
    req = urllib.request.Request(base + "/graphql", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


LAUNCH = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""
STATUS = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status startTime endTime } } }"""


def ui_run(base: str, location: str, partition: str) -> float:
    params = {"selector": {"repositoryLocationName": location, "repositoryName": "__repository__",
                           "jobName": "refinecode_job"},
              "runConfigData": "{}",
              "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]}}
    t0 = time.perf_counter()
    out = _gql(base, LAUNCH, {"p": params})["data"]["launchRun"]
    if out["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(out)
    run_id = out["run"]["runId"]
    while True:
        st = _gql(base, STATUS, {"id": run_id})["data"]["runOrError"]
        if st["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            if st["status"] != "SUCCESS":
                raise RuntimeError(f"run {run_id}: {st['status']}")
            return time.perf_counter() - t0
        time.sleep(0.25)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT / "data"))
    ap.add_argument("--partition", default="c")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "OPENCODER_DATA": args.data,
           "OPENCODER_METRICS_DB": str(Path(args.data) / "metrics.duckdb")}
    subprocess.run([str(BIN / "opencoder"), "run", "--partitions", args.partition], env=env, cwd=ROOT,
                   check=True, capture_output=True)  # warm: index + caches, as after `opencoder demo`
    cli = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        subprocess.run([str(BIN / "opencoder"), "run", "--partitions", args.partition, "--select",
                        ",".join(["raw_code", "preprocessed_code", "exact_deduped_code", "fuzzy_deduped_code",
                                  "transformed_code", "quality_signals", "filtered_code", "refinecode_code"])],
                       env=env, cwd=ROOT, check=True, capture_output=True)
        cli.append(time.perf_counter() - t0)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([str(BIN / "dagster"), "dev", "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1",
                             "-p", str(port)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        location = None
        while time.monotonic() < deadline and location is None:
            try:
                data = _gql(base, "{ workspaceOrError { ... on Workspace { locationEntries { name "
                                  "locationOrLoadError { __typename } } } } }")
                for e in data["data"]["workspaceOrError"]["locationEntries"]:
                    if e["locationOrLoadError"] and e["locationOrLoadError"]["__typename"] == "RepositoryLocation":
                        location = e["name"]
            except OSError:
                pass
            time.sleep(1)
        if location is None:
            raise TimeoutError("dagster dev did not load the code location")
        ui = [ui_run(base, location, args.partition) for _ in range(args.repeat)]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
    best_cli, best_ui = min(cli), min(ui)
    print(f"partition {args.partition}: refinecode_job from the CLI  {', '.join(f'{t:.1f}s' for t in cli)}")
    print(f"partition {args.partition}: refinecode_job from the UI   {', '.join(f'{t:.1f}s' for t in ui)} "
          "(GraphQL launchRun -> SUCCESS, incl. the run worker process start)")
    print(f"UI / CLI = {best_ui / best_cli:.2f}x (target <= 2x; before the kernel: 222 s / 3.6 s = 62x)")


if __name__ == "__main__":
    main()
