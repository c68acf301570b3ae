"""Hostility tests for the verification sandbox: real processes, real bwrap, real listeners.

Every attack runs twice: as written, and after ``BYPASS``, three lines that switch the in-process audit
hook off (the reviewer's finding). The attack must fail both ways: the kernel is the boundary, the
hook is defence in depth only. With ``CI=true`` a missing/broken bwrap FAILS these tests, never skips.
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import opencoder_assets.core.sandbox as sandbox_module
from opencoder_assets.core.sandbox import STATUSES, Sandbox, SandboxLimits, SandboxUnavailable, Verdict

CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
FAST = SandboxLimits(wall_time_s=4.0, cpu_time_s=2, memory_bytes=256 * 1024 * 1024,
                     max_file_bytes=256 * 1024, max_processes=16)
#: The reviewer's bypass: edit the runner's globals through ``sys.modules['__main__']``.
BYPASS = (
    "import sys\n"
    "_m = vars(sys.modules['__main__'])\n"
    "_m['_BLOCKED'].clear(); _m['_BLOCKED_IMPORTS'].clear(); _m['_PATH_EVENTS'].clear(); _m['_inside'] = lambda p: True\n"
)
PREFIXES = pytest.mark.parametrize("prefix", ["", BYPASS], ids=["hook_on", "hook_bypassed"])
VERDICT_DETAIL = re.compile(r"^status=[a-z_]+ exit=(-?\d+|none) wall_s=\d+\.\d{3}$")


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    try:
        return Sandbox(FAST)
    except SandboxUnavailable as exc:
        if CI:
            pytest.fail(f"CI=true but kernel isolation is unavailable (install bubblewrap): {exc}")
        pytest.skip(f"kernel isolation unavailable on this machine: {exc}")


@pytest.fixture(scope="module")
def unsafe() -> Sandbox:
    return Sandbox(FAST, isolation="unsafe-audit-only")


def _procs_of_uid(uid: int | None) -> list[int]:
    assert uid is not None and uid != os.getuid(), "leftover checks need a per-run uid (tests run as root)"
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


def _host_cmdlines_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _open_to_others(path: Path, mode: int) -> None:
    """Make ``path`` reachable by any uid (so a denial proves isolation, not file permissions)."""
    path.chmod(mode)
    for p in path.parents:
        if str(p).startswith(tempfile.gettempdir() + "/"):
            p.chmod(p.stat().st_mode | 0o005)


class _Listener:
    """A real stream listener (TCP on 127.0.0.1, Unix path or abstract Unix) counting accepted connections."""

    def __init__(self, family: int, address: Any) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(address)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.address = self.sock.getsockname() if family == socket.AF_INET else address
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

    def reachable_from_host(self) -> bool:
        with socket.socket(self.sock.family, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(self.address)
        deadline = time.monotonic() + 2
        while self.accepted < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.accepted == 1

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        self.sock.close()


# ---------------------------------------------------------------------------------------------------
# The bypass is real, and the unsafe mode is exactly as weak as documented.


def test_bypass_disables_the_audit_hook_in_unsafe_mode(unsafe: Sandbox, tmp_path: Path) -> None:
    """Proves BYPASS works, so the bwrap tests below exercise the kernel layers alone."""
    _open_to_others(tmp_path, 0o1777)
    target = tmp_path / f"pwned-{uuid.uuid4().hex}"
    attack = f"open({str(target)!r}, 'w').write('x')\nimport ctypes\nprint('ESCAPED')\n"
    blocked = unsafe.run(attack)
    assert not blocked.passed and "not allowed" in blocked.stderr and not target.exists()
    escaped = unsafe.run(BYPASS + attack)
    assert escaped.passed and "ESCAPED" in escaped.stdout and target.exists()
    assert escaped.isolation == "unsafe-audit-only"


# ---------------------------------------------------------------------------------------------------
# Refusal without kernel isolation.


def test_refuses_without_bwrap(tmp_path: Path) -> None:
    with pytest.raises(SandboxUnavailable, match=r"bwrap not found .*unsafe-audit-only"):
        Sandbox(FAST, bwrap=str(tmp_path / "no-such-bwrap"))


def test_refuses_when_bwrap_cannot_create_namespaces() -> None:
    """A real launcher that fails the way bwrap does without namespace support (exit 1, no sandbox)."""
    with pytest.raises(SandboxUnavailable, match=r"could not isolate .*status=failed exit=1.*unsafe-audit-only"):
        Sandbox(FAST, bwrap="/bin/false")


def test_launcher_failure_is_an_error_verdict(sandbox: Sandbox) -> None:
    """bwrap refusing its own arguments (tmpfs size 0) is ``error``, not a failed snippet."""
    res = sandbox.run("print(1)", SandboxLimits(tmp_bytes=0))
    assert res.status == "error" and res.stderr.startswith("bwrap: "), res


def test_unknown_isolation_is_rejected() -> None:
    with pytest.raises(ValueError, match="sandbox isolation 'namespaces'"):
        Sandbox(FAST, isolation="namespaces")  # type: ignore[arg-type]


def test_runs_unprivileged_without_capabilities(sandbox: Sandbox) -> None:
    res = sandbox.run("import os\nprint(os.getuid(), os.getgid(), os.getgroups())\n"
                      "print(''.join(l for l in open('/proc/self/status') if l.startswith(('Cap', 'NoNewPrivs', 'Seccomp:'))))")
    assert res.passed, res
    assert res.isolation == "bwrap" and res.uid not in (None, 0)
    assert res.stdout.splitlines()[0] == f"{res.uid} {res.uid} []"
    caps = dict(line.split(":\t") for line in res.stdout.splitlines()[1:] if ":\t" in line)
    assert {k: caps[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")} == dict.fromkeys(
        ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"), "0000000000000000")
    assert caps["NoNewPrivs"] == "1"
    if platform.machine() == "x86_64":
        assert caps["Seccomp"] == "2"  # filter mode


# ---------------------------------------------------------------------------------------------------
# Attacks: each must fail with the hook on AND with it bypassed.


@PREFIXES
def test_host_files_are_invisible(sandbox: Sandbox, tmp_path: Path, prefix: str) -> None:
    secret = tmp_path / "secret.key"
    token = uuid.uuid4().hex
    secret.write_text(f"KEY={token}\n")
    _open_to_others(secret, 0o644)
    project_file = Path(sandbox_module.__file__).resolve()
    project_line = project_file.read_text().splitlines()[0]
    # a real metrics store (DuckDB file) of a pipeline run, readable by anyone on the host
    from resources import MetricsStore

    store = MetricsStore(db_path=str(tmp_path / "metrics.duckdb"))
    store.record_failure("run-1", "refinecode_job", f"failure {token}")
    metrics_db = Path(store.db_path)
    assert metrics_db.is_file()
    _open_to_others(metrics_db, 0o644)
    readme = Path(__file__).resolve().parents[1] / "README.md"
    targets = ["/etc/passwd", str(project_file), str(secret), str(metrics_db), str(readme)]
    program = prefix + (
        "import os\n"
        f"for p in {targets!r}:\n"
        "    try:\n"
        "        data = open(p, 'rb').read().decode('latin-1')\n"
        "    except OSError as exc:\n"
        "        print('denied', type(exc).__name__)\n"
        "    else:\n"
        "        print('ESCAPED', p, data[:200])\n"
        "import json\nprint('root', json.dumps(sorted(os.listdir('/'))))\n"
    )
    res = sandbox.run(program)
    assert res.passed, res
    assert res.stdout.count("denied FileNotFoundError") == len(targets)  # the program really ran
    assert "ESCAPED" not in res.stdout and token not in res.stdout and project_line not in res.stdout
    assert "root:" not in res.stdout
    root = json.loads(res.stdout.split("root ", 1)[1])
    assert not {"home", "work", "var", "srv", "opt", "mnt", "run"} & set(root), root


@PREFIXES
def test_host_processes_are_invisible_and_unkillable(sandbox: Sandbox, prefix: str) -> None:
    marker = f"3600.{uuid.uuid4().int % 10**6:06d}"
    victim = subprocess.Popen(["sleep", marker])
    try:
        program = prefix + (
            "import os, signal\n"
            "seen = [p for p in os.listdir('/proc') if p.isdigit()]\n"
            "for p in seen:\n"
            "    try:\n"
            "        cmd = open(f'/proc/{p}/cmdline', 'rb').read()\n"
            "    except OSError:\n"
            "        continue\n"
            f"    if {marker!r}.encode() in cmd:\n"
            "        print('ESCAPED cmdline', p)\n"
            "print('pids', len(seen))\n"
            f"for target in ({victim.pid}, -1):\n"
            "    try:\n"
            "        os.kill(target, signal.SIGKILL)\n"
            "    except OSError as exc:\n"
            "        print('kill', target, type(exc).__name__)\n"
        )
        res = sandbox.run(program)
        assert "pids" in res.stdout, res  # the listing ran
        assert "ESCAPED" not in res.stdout
        assert int(res.stdout.split("pids ", 1)[1].split()[0]) <= 3  # bwrap's init, the runner (+ none else)
        time.sleep(0.2)
        assert victim.poll() is None, "a host process was killed from inside the sandbox"
        assert _host_cmdlines_with(marker) == [victim.pid]
    finally:
        victim.kill()
        victim.wait()


@PREFIXES
def test_host_unix_sockets_unreachable(sandbox: Sandbox, tmp_path: Path, prefix: str) -> None:
    path = tmp_path / "host.sock"
    on_disk = _Listener(socket.AF_UNIX, str(path))
    abstract = _Listener(socket.AF_UNIX, f"\0ocsbx-test-{uuid.uuid4().hex}")
    try:
        _open_to_others(path, 0o777)
        assert on_disk.reachable_from_host() and abstract.reachable_from_host()
        program = prefix + (
            "import socket\n"
            f"for addr in ({str(path)!r}, {abstract.address!r}):\n"
            "    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
            "    s.settimeout(2)\n"
            "    try:\n"
            "        s.connect(addr)\n"
            "        print('ESCAPED', repr(addr))\n"
            "    except OSError as exc:\n"
            "        print('refused', type(exc).__name__)\n"
        )
        res = sandbox.run(program)
        assert "ESCAPED" not in res.stdout
        time.sleep(0.3)
        assert (on_disk.accepted, abstract.accepted) == (1, 1)  # only the host's own sanity connections
    finally:
        on_disk.close()
        abstract.close()


@PREFIXES
def test_tcp_listener_on_localhost_unreachable(sandbox: Sandbox, prefix: str) -> None:
    listener = _Listener(socket.AF_INET, ("127.0.0.1", 0))
    try:
        assert listener.reachable_from_host()
        port = listener.address[1]
        program = prefix + (
            "import socket, urllib.request\n"
            "s = socket.socket()\n"
            "s.settimeout(2)\n"
            "try:\n"
            f"    s.connect(('127.0.0.1', {port}))\n"
            "    print('ESCAPED tcp')\n"
            "except OSError as exc:\n"
            "    print('refused', type(exc).__name__)\n"
            f"urllib.request.urlopen('http://127.0.0.1:{port}/', timeout=2)\n"
        )
        res = sandbox.run(program)
        assert not res.passed and "ESCAPED" not in res.stdout
        time.sleep(0.3)
        assert listener.accepted == 1
    finally:
        listener.close()


@PREFIXES
def test_world_writable_host_dirs_stay_untouched(sandbox: Sandbox, tmp_path: Path, prefix: str) -> None:
    _open_to_others(tmp_path, 0o1777)
    name = f"pwned-{uuid.uuid4().hex}"
    targets = [tmp_path / name, Path("/tmp") / name, Path("/dev/shm") / name, Path("/var/tmp") / name]
    program = prefix + (
        "import os\n"
        f"for t in {[str(t) for t in targets]!r}:\n"
        "    try:\n"
        "        os.makedirs(os.path.dirname(t), exist_ok=True)\n"
        "        open(t, 'w').write('pwned')\n"
        "        print('wrote', t)\n"  # may succeed on the private /tmp tmpfs: the host must not see it
        "    except OSError as exc:\n"
        "        print('denied', type(exc).__name__)\n"
    )
    try:
        res = sandbox.run(program)
        assert res.passed and len(res.stdout.splitlines()) == len(targets), res  # every attempt ran
        for t in targets:
            assert not t.exists(), f"{t} was written from inside the sandbox"
    finally:
        for t in targets:
            t.unlink(missing_ok=True)


@PREFIXES
@pytest.mark.parametrize("parent", ["exits", "hangs"])
def test_double_forked_child_does_not_survive(sandbox: Sandbox, prefix: str, parent: str) -> None:
    marker = f"ocsbx-survivor-{uuid.uuid4().hex}"
    program = prefix + (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(3600)', {marker!r}])\n"
        "    os._exit(0)\n"
        "time.sleep(0.5)\n"
        + ("time.sleep(3600)\n" if parent == "hangs" else "")
    )
    res = sandbox.run(program, SandboxLimits(wall_time_s=2.0))
    if prefix:  # with the hook on, the first fork is already refused
        assert res.status == ("timeout" if parent == "hangs" else "passed"), res
    # Checked right after the verdict, no grace period.
    assert _host_cmdlines_with(marker) == []
    assert _procs_of_uid(res.uid) == []


@PREFIXES
def test_fork_bomb_is_contained(sandbox: Sandbox, prefix: str) -> None:
    program = prefix + "import os\nwhile True:\n    os.fork()\n"
    res = sandbox.run(program)
    assert not res.passed
    assert ("BlockingIOError" if prefix else "os.fork is not allowed") in res.stderr, res
    assert _procs_of_uid(res.uid) == []


@PREFIXES
@pytest.mark.skipif(platform.machine() != "x86_64", reason="the seccomp filter covers x86_64 only (documented)")
def test_nested_namespaces_and_risky_syscalls_refused(sandbox: Sandbox, prefix: str) -> None:
    """seccomp: no nested user/mount namespaces, no io_uring/bpf/keyctl; fork and threads still work."""
    program = prefix + (
        "import ctypes, os, threading\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "for name, call in [('unshare_user', lambda: libc.unshare(0x10000000)),\n"
        "                   ('unshare_mount', lambda: libc.unshare(0x20000)),\n"
        "                   ('clone_newuser', lambda: libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0)),\n"
        "                   ('io_uring_setup', lambda: libc.syscall(425, 1, 0)),\n"
        "                   ('bpf', lambda: libc.syscall(321, 0, 0, 0)),\n"
        "                   ('keyctl', lambda: libc.syscall(250, 0, 0, 0, 0, 0))]:\n"
        "    rc = call()\n"
        "    print(name, 'ESCAPED' if rc >= 0 else ctypes.get_errno())\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(7)\n"
        "print('fork', os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
        "t = threading.Thread(target=print, args=('thread ok',))\n"
        "t.start()\n"
        "t.join()\n"
    )
    res = sandbox.run(program)
    assert "ESCAPED" not in res.stdout
    if prefix:
        assert res.passed, res
        assert res.stdout.splitlines() == ["unshare_user 1", "unshare_mount 1", "clone_newuser 1",
                                           "io_uring_setup 1", "bpf 1", "keyctl 1", "fork 7", "thread ok"]
    else:
        assert "import of ctypes is not allowed" in res.stderr


@PREFIXES
def test_huge_output_is_capped(sandbox: Sandbox, prefix: str) -> None:
    program = prefix + (
        "import resource\n"
        "try:\n"
        "    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
        "except (ValueError, OSError):\n"
        "    pass\n"
        "while True:\n"
        "    print('x' * 10000)\n"
    )
    res = sandbox.run(program)
    assert res.status == "output_limit"
    assert res.extra["stdout_bytes"] <= FAST.max_file_bytes
    assert len(res.stdout) < FAST.max_output_chars + 2000


@PREFIXES
def test_work_dir_and_tmp_are_size_capped_tmpfs(sandbox: Sandbox, prefix: str) -> None:
    limits = SandboxLimits(max_file_bytes=256 * 1024, work_dir_bytes=1024 * 1024, tmp_bytes=512 * 1024)
    program = prefix + (
        "import os\n"
        "for d in ('.', '/tmp'):\n"
        "    try:\n"
        "        for i in range(64):\n"
        "            with open(f'{d}/f{i}', 'wb') as f:\n"
        "                f.write(b'0' * 200_000)\n"
        "        print('filled', d)\n"
        "    except OSError as exc:\n"
        "        print('full', d, exc.errno)\n"
    )
    res = sandbox.run(program, limits)
    assert res.passed, res
    # ENOSPC (28); with the hook on, /tmp writes are refused by the hook before the kernel.
    assert res.stdout.splitlines() == ["full . 28", "full /tmp 28" if prefix else "full /tmp None"]


# ---------------------------------------------------------------------------------------------------
# Verdicts.


def test_passing_and_failing_candidates(sandbox: Sandbox) -> None:
    code = "def add_two(x: int) -> int:\n    return x + 2\n"
    good = sandbox.verify(code, "assert add_two(1) == 3\nassert add_two(-2) == 0")
    assert good.passed and good.verdict.passed and good.verdict.returncode == 0
    bad = sandbox.verify(code, "assert add_two(1) == 4")
    assert bad.status == "failed" and "AssertionError" in bad.stderr
    assert bad.verdict.status == "failed" and bad.verdict.returncode == 1


def test_verdict_carries_no_program_output(sandbox: Sandbox) -> None:
    marker = uuid.uuid4().hex
    code = "def f():\n    return 1\n"
    tests = (f"import sys\nsys.stderr.write({marker!r} * 3 + '\\n')\nprint({marker!r})\n"
             f"assert f() == 2, {marker!r}\n")
    res = sandbox.verify(code, tests)
    assert res.status == "failed" and marker in res.stderr  # the output was produced and captured
    verdict = res.verdict
    assert set(vars(verdict)) == {"status", "returncode", "duration_s"}
    assert marker not in repr(verdict) and marker not in verdict.detail()
    assert VERDICT_DETAIL.match(verdict.detail()) and verdict.detail().startswith("status=failed exit=1 ")
    with pytest.raises(ValueError, match="unknown status"):
        Verdict(marker, 1, 0.1)  # type: ignore[arg-type]
    assert {"passed", "failed", "timeout", "cpu_limit", "output_limit", "killed", "error"} == STATUSES


def test_early_exit_zero_does_not_pass(sandbox: Sandbox) -> None:
    """sys.exit(0)/os._exit(0) before the tests run must not count as a pass (sentinel check)."""
    for exit_call in ("import sys\nsys.exit(0)", "import os\nos._exit(0)"):
        res = sandbox.verify(f"def f():\n    return 1\n{exit_call}\n", "assert f() == 2")
        assert res.returncode == 0 and not res.passed, res


def test_infinite_cpu_loop_is_stopped(sandbox: Sandbox) -> None:
    res = sandbox.run("while True:\n    pass\n")
    assert res.status in ("cpu_limit", "timeout")


def test_sleeping_forever_hits_wall_clock(sandbox: Sandbox) -> None:
    res = sandbox.run("import time\ntime.sleep(3600)\n", SandboxLimits(wall_time_s=1.5))
    assert res.status == "timeout" and res.verdict.returncode is None


def test_memory_limit(sandbox: Sandbox) -> None:
    res = sandbox.run("x = bytearray(2 * 1024 ** 3)\n")
    assert not res.passed and "MemoryError" in res.stderr


def test_audit_hook_still_blocks_when_not_bypassed(sandbox: Sandbox) -> None:
    """Defence in depth: without the bypass the hook still stops these before the kernel has to."""
    for code in ("import ctypes", "import _posixsubprocess", "import os\nos.fork()",
                 "import socket\nsocket.socket()", "open('/tmp/x', 'w')"):
        res = sandbox.run(code)
        assert not res.passed and "not allowed" in res.stderr, code


def test_writes_inside_work_dir_are_allowed(sandbox: Sandbox) -> None:
    res = sandbox.run("import os\nos.mkdir('d')\nopen('d/x.txt', 'w').write('hi')\nprint(open('d/x.txt').read())")
    assert res.passed and res.stdout.strip() == "hi"


def test_no_leftover_dirs_and_concurrent_runs(tmp_path: Path) -> None:
    try:
        sb = Sandbox(FAST, tmp_root=str(tmp_path))
    except SandboxUnavailable as exc:
        if CI:
            pytest.fail(f"CI=true but kernel isolation is unavailable: {exc}")
        pytest.skip(str(exc))
    pairs = [(f"def f():\n    return {i}\n", f"assert f() == {i if i % 3 else -1}") for i in range(9)]
    results = sb.verify_many(pairs, workers=3)
    assert [r.passed for r in results] == [i % 3 != 0 for i in range(9)]
    assert len({r.uid for r in results}) == 9  # one throw-away uid per run
    assert list(tmp_path.iterdir()) == []


def test_timeout_kills_whole_tree(sandbox: Sandbox) -> None:
    """Several forked sleepers, hook bypassed: none is left once the timeout verdict is back."""
    res = sandbox.run(BYPASS + "import os, time\nfor _ in range(4):\n    os.fork()\ntime.sleep(3600)\n",
                      SandboxLimits(wall_time_s=1.0))
    assert res.status == "timeout"
    assert _procs_of_uid(res.uid) == []


# ---------------------------------------------------------------------------------------------------
# The asset path: a real Dagster run of synthetic_snippets against a real HTTP teacher.


def test_synthetic_snippets_store_only_fixed_verdicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Teacher code prints a marker (built at run time, so it is not in the code text) to stdout and
    stderr and fails its asserts with it: nothing the program printed may reach the metrics store."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from dagster import materialize

    sys.path.insert(0, str(Path(__file__).parent))
    import test_teacher

    from opencoder_assets.assets.annealing import synthetic_snippets
    from opencoder_assets.core.schema import CODE_SCHEMA, stable_file_id
    from resources import CorpusStorage, MetricsStore, PipelineSettings
    from resources.teacher import TeacherLLM

    if not CI:
        try:
            Sandbox(FAST)
        except SandboxUnavailable as exc:
            pytest.skip(str(exc))
    marker = uuid.uuid4().hex
    hidden = marker[::-1]  # the program prints hidden[::-1] == marker

    def answer(messages: list[dict[str, str]]) -> str:
        user = messages[-1]["content"]
        if "seed program" in user.lower():
            return ("```python\ndef leaky(x):\n    import sys\n"
                    f"    sys.stderr.write({hidden!r}[::-1] + '\\n')\n    print({hidden!r}[::-1])\n    return x\n```")
        return f"```python\nassert leaky(1) == 2, {hidden!r}[::-1]\n```"

    monkeypatch.setattr(test_teacher, "fake_model_answer", answer)
    monkeypatch.setenv("TEST_TEACHER_KEY", "sk-test")
    storage = CorpusStorage(root=str(tmp_path / "corpus"))
    metrics_path = tmp_path / "metrics.duckdb"
    seeds = [{"file_id": stable_file_id("test", "algos", f"s{i}.py"), "source": "test", "repo": "algos",
              "path": f"s{i}.py", "language": "python", "doc_type": "code", "ext": ".py", "size_bytes": 30,
              "sha256": None, "stars": 1, "commit_time": None, "content": f"# leetcode {i}\ndef f(): return {i}\n"}
             for i in range(3)]
    w = storage.writer("algorithmic_corpus", "python")
    pq.write_table(pa.Table.from_pylist(seeds, schema=CODE_SCHEMA), w.shard_path(0))
    w.commit()
    with test_teacher.TeacherServer(api_key="sk-test") as server:
        resources = {"storage": storage, "metrics": MetricsStore(db_path=str(metrics_path)),
                     "settings": PipelineSettings(),
                     "teacher": TeacherLLM(base_url=server.base_url, model="tiny-coder", api_key_env="TEST_TEACHER_KEY",
                                           cache_path=str(tmp_path / "teacher.sqlite"), requests_per_minute=60_000)}
        result = materialize([synthetic_snippets], resources=resources, run_config={
            "ops": {"synthetic_snippets": {"config": {"wall_time_s": 5.0, "cpu_time_s": 3}}}})
    assert result.success
    meta = {k: getattr(v, "value", v) for mat in result.asset_materializations_for_node("synthetic_snippets")
            for k, v in mat.metadata.items()}
    assert meta["sandbox_isolation"] == "bwrap" and meta["verification_statuses"] == {"failed": 3}
    assert marker not in repr(meta)

    with MetricsStore(db_path=str(metrics_path)).connect() as con:  # views over the published versions
        rows = con.execute("SELECT reason, detail FROM file_decisions WHERE step = 'synthetic_snippets'").fetchall()
        assert len(rows) == 3 and all(r == "verification_failed" and VERDICT_DETAIL.match(d) for r, d in rows), rows
        assert all(d.startswith("status=failed exit=1 ") for _, d in rows)
        tables = [t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        assert {"file_decisions", "step_runs"} <= set(tables)
        for table in tables:
            dump = repr(con.execute(f'SELECT * FROM "{table}"').fetchall())
            assert marker not in dump, f"program output leaked into metrics table {table}"
    for manifest in (tmp_path / "corpus").rglob("_MANIFEST.json"):
        assert marker not in manifest.read_text(), f"program output leaked into {manifest}"
    for parquet in (tmp_path / "corpus").rglob("*.parquet"):
        assert marker not in repr(pq.read_table(parquet).to_pylist()), f"program output leaked into {parquet}"
