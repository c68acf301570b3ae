"""Hostility tests for the verification sandbox: every attack must fail and leave the host clean."""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from opencoder_assets.core.sandbox import Sandbox, SandboxLimits, namespaces_available

FAST = SandboxLimits(wall_time_s=4.0, cpu_time_s=2, memory_bytes=256 * 1024 * 1024,
                     max_file_bytes=256 * 1024, max_processes=16)
HAS_NS = namespaces_available(sys.executable)
needs_ns = pytest.mark.skipif(not HAS_NS, reason="needs root + unshare/setpriv (namespace isolation)")


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(FAST)


def _procs_of_uid(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("Uid:") and int(line.split()[1]) == uid:
                    pids.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return pids


def test_isolation_mode_is_namespaces_when_root(sandbox: Sandbox) -> None:
    if os.geteuid() == 0 and HAS_NS:
        assert sandbox.isolation == "namespaces"
    else:
        assert sandbox.isolation == "audit"


def test_passing_and_failing_candidates(sandbox: Sandbox) -> None:
    code = "def add_two(x: int) -> int:\n    return x + 2\n"
    assert sandbox.verify(code, "assert add_two(1) == 3\nassert add_two(-2) == 0").passed
    bad = sandbox.verify(code, "assert add_two(1) == 4")
    assert bad.status == "failed" and "AssertionError" in bad.stderr


def test_early_exit_zero_does_not_pass(sandbox: Sandbox) -> None:
    """sys.exit(0)/os._exit(0) before the tests run must not count as a pass (sentinel check)."""
    for exit_call in ("import sys\nsys.exit(0)", "import os\nos._exit(0)"):
        res = sandbox.verify(f"def f():\n    return 1\n{exit_call}\n", "assert f() == 2")
        assert res.returncode == 0 and not res.passed, res


def test_infinite_cpu_loop_is_stopped(sandbox: Sandbox) -> None:
    start = time.monotonic()
    res = sandbox.run("while True:\n    pass\n")
    assert res.status in ("cpu_limit", "timeout")
    assert time.monotonic() - start < FAST.wall_time_s + 3


def test_sleeping_forever_hits_wall_clock(sandbox: Sandbox) -> None:
    start = time.monotonic()
    res = sandbox.run("import time\ntime.sleep(3600)\n")
    assert res.status == "timeout"
    assert time.monotonic() - start < FAST.wall_time_s + 3


def test_fork_bomb_blocked_by_default(sandbox: Sandbox) -> None:
    res = sandbox.run("import os\nwhile True:\n    os.fork()\n")
    assert res.status == "failed" and "os.fork is not allowed" in res.stderr


@needs_ns
def test_fork_bomb_contained_by_nproc_and_pid_namespace(sandbox: Sandbox) -> None:
    """With process creation allowed, RLIMIT_NPROC (effective: the run's uid is not root) stops it."""
    limits = SandboxLimits(wall_time_s=4.0, cpu_time_s=2, max_processes=16, allow_subprocess=True)
    start = time.monotonic()
    res = sandbox.run("import os\nwhile True:\n    os.fork()\n", limits)
    assert not res.passed
    assert time.monotonic() - start < limits.wall_time_s + 3
    assert res.uid is not None and _procs_of_uid(res.uid) == []


@needs_ns
def test_setsid_escapee_dies_with_pid_namespace(sandbox: Sandbox) -> None:
    """A child that leaves the process group (setsid) still dies: PID 1 of its namespace is killed."""
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    time.sleep(3600)\n"
        "time.sleep(3600)\n"
    )
    res = sandbox.run(code, SandboxLimits(wall_time_s=2.0, allow_subprocess=True))
    assert res.status == "timeout"
    time.sleep(0.3)
    assert res.uid is not None and _procs_of_uid(res.uid) == []


def test_huge_output_is_capped(sandbox: Sandbox) -> None:
    res = sandbox.run("while True:\n    print('x' * 10000)\n")
    assert res.status == "output_limit"
    assert res.extra["stdout_bytes"] <= FAST.max_file_bytes
    assert len(res.stdout) < FAST.max_output_chars + 2000


def test_huge_file_in_work_dir_is_capped(sandbox: Sandbox) -> None:
    res = sandbox.run("with open('big.bin', 'wb') as f:\n    f.write(b'0' * (10 * 1024 * 1024))\n")
    assert not res.passed and "File too large" in res.stderr


@pytest.mark.parametrize(
    "attack",
    [
        "open(TARGET, 'w').write('pwned')",
        "import os\nfd = os.open(TARGET, os.O_WRONLY | os.O_CREAT)\nos.write(fd, b'pwned')",
        "open('inside.txt', 'w').write('x')\nimport os\nos.rename('inside.txt', TARGET)",
        "import os\nos.symlink(TARGET, 'link')\nopen('link', 'w').write('pwned')",
        "import os\nos.chdir(os.path.dirname(TARGET))\nopen(os.path.basename(TARGET), 'w').write('x')",
        "import pathlib\npathlib.Path(TARGET).write_text('pwned')",
        "import shutil\nopen('a.txt', 'w').write('x')\nshutil.copy('a.txt', TARGET)",
    ],
)
def test_writes_outside_work_dir_are_blocked(sandbox: Sandbox, tmp_path: Path, attack: str) -> None:
    """/tmp is world-writable, so the uid drop alone would not stop these: the audit hook does."""
    target = Path("/tmp") / f"sandbox-escape-{uuid.uuid4().hex}.txt"
    res = sandbox.run(f"TARGET = {str(target)!r}\n{attack}\n")
    assert not res.passed
    assert "not allowed" in res.stderr
    assert not target.exists()
    target.unlink(missing_ok=True)


def test_writes_inside_work_dir_are_allowed(sandbox: Sandbox) -> None:
    res = sandbox.run("import os\nos.mkdir('d')\nopen('d/x.txt', 'w').write('hi')\nprint(open('d/x.txt').read())")
    assert res.passed and res.stdout.strip() == "hi"


@needs_ns
def test_root_owned_files_unwritable_even_without_audit_hook(sandbox: Sandbox) -> None:
    """Second layer: the throw-away uid cannot write root-owned locations."""
    target = Path("/etc") / f"sandbox-escape-{uuid.uuid4().hex}"
    res = sandbox.run(f"open({str(target)!r}, 'w').write('x')", SandboxLimits(audit_hook=False))
    assert not res.passed and "Permission denied" in res.stderr
    assert not target.exists()


class _Listener:
    """A real TCP listener on 127.0.0.1 that counts accepted connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.accepted += 1
                conn.close()
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        self.sock.close()


def test_network_connection_to_localhost_fails(sandbox: Sandbox) -> None:
    listener = _Listener()
    try:
        # Sanity: the listener is reachable from outside the sandbox.
        socket.create_connection(("127.0.0.1", listener.port), timeout=2).close()
        time.sleep(0.3)
        before = listener.accepted
        assert before == 1
        code = f"import socket\ns = socket.socket()\ns.settimeout(2)\ns.connect(('127.0.0.1', {listener.port}))\nprint('connected')"
        res = sandbox.run(code)
        assert not res.passed and "connected" not in res.stdout
        res2 = sandbox.run(f"import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{listener.port}/', timeout=2)")
        assert not res2.passed
        time.sleep(0.3)
        assert listener.accepted == before
    finally:
        listener.close()


@needs_ns
def test_network_namespace_blocks_even_without_audit_hook(sandbox: Sandbox) -> None:
    listener = _Listener()
    try:
        code = f"import socket\ns = socket.socket()\ns.settimeout(2)\ns.connect(('127.0.0.1', {listener.port}))"
        res = sandbox.run(code, SandboxLimits(audit_hook=False))
        assert not res.passed and ("unreachable" in res.stderr.lower() or "refused" in res.stderr.lower())
        time.sleep(0.3)
        assert listener.accepted == 0
    finally:
        listener.close()


def test_memory_limit(sandbox: Sandbox) -> None:
    res = sandbox.run("x = bytearray(2 * 1024 ** 3)\n")
    assert not res.passed and "MemoryError" in res.stderr


def test_native_escape_hatches_blocked(sandbox: Sandbox) -> None:
    for code in ("import ctypes", "import _posixsubprocess", "import subprocess\nsubprocess.run(['true'])",
                 "import os\nos.system('true')"):
        res = sandbox.run(code)
        assert not res.passed and "not allowed" in res.stderr, code


def test_no_leftover_dirs_and_concurrent_runs(sandbox: Sandbox, tmp_path: Path) -> None:
    for p in (tmp_path, *tmp_path.parents):
        if str(p).startswith(tempfile.gettempdir() + "/"):
            p.chmod(p.stat().st_mode | 0o011)
    sb = Sandbox(FAST, tmp_root=str(tmp_path))
    pairs = [(f"def f():\n    return {i}\n", f"assert f() == {i if i % 3 else -1}") for i in range(9)]
    results = sb.verify_many(pairs, workers=3)
    assert [r.passed for r in results] == [i % 3 != 0 for i in range(9)]
    assert list(tmp_path.iterdir()) == []
