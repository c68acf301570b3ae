"""Verification sandbox: run a candidate function plus its generated tests in a locked-down process.

Why a sandbox: synthetic snippets are written by an LLM and are only kept if their tests pass
(recipe §4.2), so we execute untrusted code at scale. The pipeline runs as root in CI, so
permission-based isolation alone is not enough. Layers (each proven by ``tests/test_sandbox.py``):

1. **Namespaces + unprivileged uid** (``isolation="namespaces"``, default when root and
   ``unshare``/``setpriv`` exist): ``unshare --fork --pid --net`` gives the program its own PID
   namespace (when its PID 1 dies every descendant dies, even ones that called ``setsid``) and an
   empty network namespace (no interface is up: every connection fails). ``setpriv`` then drops to
   a throw-away uid/gid (``uid_base + random``) with no capabilities, no supplementary groups and
   ``no_new_privs``, which also makes ``RLIMIT_NPROC`` effective (root ignores it) and scoped to this
   run only, and sets a parent-death ``SIGKILL`` so killing the launcher tears the namespace down.
2. **rlimits** set by the runner before any candidate code: ``RLIMIT_AS`` (memory), ``RLIMIT_CPU``,
   ``RLIMIT_NPROC`` (fork bombs), ``RLIMIT_FSIZE`` (huge files *and* huge stdout/stderr, which go to
   files, never to pipes the parent would have to drain), ``RLIMIT_NOFILE``, ``RLIMIT_CORE=0``.
3. **Audit hook** (PEP 578) installed by the runner: blocks sockets, process creation (unless
   ``allow_subprocess``), ``ctypes``/``_posixsubprocess`` imports, ``chdir`` out of the work dir and
   every write-like filesystem call (``open`` for writing, rename, remove, mkdir, symlink, chmod, ...)
   whose resolved path is outside the fresh temp work dir. This is the only layer when the
   namespace launcher is unavailable (``isolation="audit"``, e.g. non-root), where world-writable
   directories such as ``/tmp`` would otherwise be reachable.
4. **Wall clock**: the launcher runs in its own session; on timeout the whole process group is
   ``SIGKILL``-ed (and with namespaces the PID namespace dies with it).

Interpreter: ``python -I -S`` (isolated mode, no ``site``): no env vars, no user site, no
site-packages; candidates get the standard library only.

Pass criterion: exit status 0 *and* a per-run random sentinel printed by the runner after the tests
finished, so a snippet that calls ``sys.exit(0)``/``os._exit(0)`` before its tests does not pass.
(The sentinel protects against accidental early exits, not against code written to forge it: the
sandbox protects the host, the verdict is only as strong as the generated tests.)
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

Isolation = Literal["auto", "namespaces", "audit"]

SENTINEL_PREFIX = "__OPENCODER_SANDBOX_PASSED__"

#: The in-sandbox runner: rlimits, audit hook, then the candidate program. Kept as a string so it is
#: written next to (never inside) the work dir and executed with ``python -I -S``.
RUNNER_SOURCE = r'''
import os, resource, sys
cfg = __import__("json").loads(sys.argv[1])
nonce = sys.stdin.readline().strip()
sys.stdin.close()
for _name, _value in cfg["rlimits"].items():
    _lim = getattr(resource, _name)
    _hard_value = _value + 1 if _name == "RLIMIT_CPU" else _value
    try:
        resource.setrlimit(_lim, (_value, _hard_value))
    except (ValueError, OSError):
        _soft, _hard = resource.getrlimit(_lim)
        resource.setrlimit(_lim, (min(_value, _hard) if _hard != resource.RLIM_INFINITY else _value, _hard))
__import__("signal").signal(__import__("signal").SIGXCPU, lambda *_: os._exit(152))
WORK = os.path.realpath(os.getcwd())
_realpath, _join, _fspath = os.path.realpath, os.path.join, os.fspath
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_BLOCKED = {"socket.__new__", "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg",
            "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
            "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "ctypes.call_function",
            "sys.remote_exec", "os.add_dll_directory"}
if not cfg["allow_subprocess"]:
    _BLOCKED |= {"os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                 "subprocess.Popen", "pty.spawn", "os.kill", "os.killpg"}
_BLOCKED_IMPORTS = {"ctypes", "_ctypes", "_posixsubprocess", "_xxsubinterpreters", "_interpreters"}
_PATH_EVENTS = {"os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1),
                "os.link": (0, 1), "os.symlink": (0, 1), "os.chmod": (0,), "os.chown": (0,),
                "os.truncate": (0,), "os.utime": (0,), "os.mkfifo": (0,), "os.mknod": (0,),
                "os.chdir": (0,), "os.chroot": (0,), "os.setxattr": (0,), "os.removexattr": (0,),
                "shutil.rmtree": (0,), "os.lchown": (0,), "os.lchmod": (0,), "os.chflags": (0,)}


def _inside(path):
    if isinstance(path, int):
        return True
    try:
        p = _fspath(path)
        if isinstance(p, bytes):
            p = p.decode("utf-8", "surrogateescape")
        real = _realpath(_join(WORK, p)) if not p.startswith("/") else _realpath(p)
    except Exception:
        return False
    return real == WORK or real.startswith(WORK + "/")


def _hook(event, args):
    if event in _BLOCKED:
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "open":
        path, mode, flags = args[0], args[1], args[2] if len(args) > 2 else 0
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & _WRITE_FLAGS)
        if writing and not _inside(path):
            raise PermissionError(f"sandbox: writing {path!r} outside the work dir is not allowed")
    elif event in _PATH_EVENTS:
        for i in _PATH_EVENTS[event]:
            if i < len(args) and args[i] is not None and not _inside(args[i]):
                raise PermissionError(f"sandbox: {event} on {args[i]!r} outside the work dir is not allowed")
    elif event == "import" and args[0] in _BLOCKED_IMPORTS:
        raise ImportError(f"sandbox: import of {args[0]} is not allowed")


if cfg["audit_hook"]:
    sys.addaudithook(_hook)
with open("candidate.py", encoding="utf-8") as _f:
    _code = _f.read()
_globals = {"__name__": "__main__", "__file__": "candidate.py", "__builtins__": __builtins__}
del _f, _name, _value, _lim, _hard_value
exec(compile(_code, "candidate.py", "exec"), _globals)
sys.stdout.flush()
sys.stdout.write("\n" + cfg["sentinel"] + nonce + "\n")
sys.stdout.flush()
'''


@dataclass(frozen=True)
class SandboxLimits:
    """Per-run limits. ``max_file_bytes`` caps every file the program writes, stdout/stderr included."""

    wall_time_s: float = 10.0
    cpu_time_s: int = 5
    memory_bytes: int = 512 * 1024 * 1024
    max_file_bytes: int = 1024 * 1024
    max_output_chars: int = 8192
    max_processes: int = 16
    max_open_files: int = 64
    allow_subprocess: bool = False
    #: Only for proving the other layers in tests; refused outside namespace isolation.
    audit_hook: bool = True


@dataclass
class SandboxResult:
    """What happened. ``status``: passed, failed, timeout, cpu_limit, output_limit, killed, error."""

    status: str
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float
    isolation: str
    uid: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=4)
def namespaces_available(python: str) -> bool:
    """Probe once whether ``unshare --pid --net`` + ``setpriv`` work here (root in a normal kernel)."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"):
        return False
    try:
        proc = subprocess.run(
            ["unshare", "--fork", "--pid", "--net", "--kill-child", "--",
             "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--no-new-privs",
             "--", python, "-I", "-S", "-c", "import os; print(os.getuid())"],
            capture_output=True, timeout=20, text=True, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and proc.stdout.strip() == "65534"


class Sandbox:
    """Runs programs under :class:`SandboxLimits`; thread-safe (each run has its own dirs)."""

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        isolation: Isolation = "auto",
        python: str | None = None,
        uid_base: int = 200_000,
        tmp_root: str | None = None,
    ) -> None:
        self.limits = limits or SandboxLimits()
        self.python = python or sys.executable
        self.uid_base = uid_base
        self.tmp_root = tmp_root
        if isolation == "auto":
            isolation = "namespaces" if namespaces_available(self.python) else "audit"
        elif isolation == "namespaces" and not namespaces_available(self.python):
            raise RuntimeError("namespace isolation needs root plus util-linux unshare/setpriv")
        self.isolation: str = isolation
        if self.isolation == "namespaces":
            _check_traversable(Path(tmp_root or tempfile.gettempdir()))

    def _rlimits(self, limits: SandboxLimits) -> dict[str, int]:
        return {
            "RLIMIT_AS": limits.memory_bytes,
            "RLIMIT_CPU": limits.cpu_time_s,
            "RLIMIT_FSIZE": limits.max_file_bytes,
            "RLIMIT_NOFILE": limits.max_open_files,
            "RLIMIT_NPROC": limits.max_processes,
            "RLIMIT_CORE": 0,
        }

    def run(self, program: str, limits: SandboxLimits | None = None) -> SandboxResult:
        """Execute ``program`` (Python source) in a fresh temp work dir and report the outcome."""
        limits = limits or self.limits
        if limits.allow_subprocess and self.isolation != "namespaces" and os.geteuid() == 0:
            raise RuntimeError("allow_subprocess as root needs namespace isolation (root ignores RLIMIT_NPROC)")
        if not limits.audit_hook and self.isolation != "namespaces":
            raise RuntimeError("the audit hook is the only write/network guard without namespaces")
        nonce = secrets.token_hex(16)
        cfg = {"rlimits": self._rlimits(limits), "allow_subprocess": limits.allow_subprocess,
               "audit_hook": limits.audit_hook, "sentinel": SENTINEL_PREFIX}
        control = Path(tempfile.mkdtemp(prefix="ocsbx-ctl-", dir=self.tmp_root))
        work = Path(tempfile.mkdtemp(prefix="ocsbx-work-", dir=self.tmp_root))
        uid: int | None = None
        try:
            runner = control / "runner.py"
            runner.write_text(RUNNER_SOURCE, encoding="utf-8")
            (work / "candidate.py").write_text(program, encoding="utf-8")
            cmd = [self.python, "-I", "-S", str(runner), json.dumps(cfg)]
            if self.isolation == "namespaces":
                uid = self.uid_base + secrets.randbelow(1_000_000)
                os.chmod(control, 0o755)
                os.chmod(runner, 0o644)
                os.chown(work, uid, uid)
                os.chmod(work, 0o700)
                cmd = ["unshare", "--fork", "--pid", "--net", "--kill-child", "--",
                       "setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups",
                       "--no-new-privs", "--bounding-set=-all", "--inh-caps=-all", "--pdeathsig=KILL",
                       "--", *cmd]
            env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
            out_path, err_path = control / "stdout", control / "stderr"
            start = time.monotonic()
            with open(out_path, "wb") as out_f, open(err_path, "wb") as err_f:
                proc = subprocess.Popen(
                    cmd, cwd=work, env=env, stdin=subprocess.PIPE, stdout=out_f, stderr=err_f,
                    start_new_session=True, close_fds=True,
                )
                timed_out = False
                try:
                    assert proc.stdin is not None
                    try:
                        proc.stdin.write((nonce + "\n").encode())
                        proc.stdin.close()
                    except BrokenPipeError:
                        pass
                    rc = proc.wait(timeout=limits.wall_time_s)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    rc = None
                finally:
                    _kill_group(proc)
            duration = time.monotonic() - start
            stdout, out_size = _read_capped(out_path, limits.max_output_chars)
            stderr, err_size = _read_capped(err_path, limits.max_output_chars)
            sentinel = SENTINEL_PREFIX + nonce
            if timed_out:
                status = "timeout"
            elif rc == 0 and stdout.rstrip().endswith(sentinel):
                status = "passed"
            elif max(out_size, err_size) >= limits.max_file_bytes:
                status = "output_limit"
            elif rc is not None and rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU) or (
                rc == 1 and "sigprocmask" in stderr and duration >= limits.cpu_time_s
            ):
                status = "cpu_limit"
            elif rc is not None and (rc < 0 or rc > 128):
                status = "killed"
            else:
                status = "failed"
            stdout = stdout.replace(sentinel, "").rstrip("\n")
            return SandboxResult(status=status, returncode=rc, stdout=stdout, stderr=stderr,
                                 duration_s=duration, isolation=self.isolation, uid=uid,
                                 extra={"stdout_bytes": out_size, "stderr_bytes": err_size})
        except OSError as exc:
            return SandboxResult(status="error", returncode=None, stdout="", stderr=repr(exc),
                                 duration_s=0.0, isolation=self.isolation, uid=uid)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(control, ignore_errors=True)

    def verify(self, code: str, tests: str, limits: SandboxLimits | None = None) -> SandboxResult:
        """Run a candidate function followed by its tests; ``passed`` only if every test ran and passed."""
        return self.run(build_program(code, tests), limits)

    def verify_many(
        self, items: Iterable[tuple[str, str]], workers: int = 4, limits: SandboxLimits | None = None
    ) -> list[SandboxResult]:
        """Verify (code, tests) pairs concurrently (threads: each run is its own process)."""
        pairs: Sequence[tuple[str, str]] = list(items)
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            return list(pool.map(lambda p: self.verify(p[0], p[1], limits), pairs))


def _check_traversable(path: Path) -> None:
    """The throw-away uid must be able to reach its work dir: every ancestor needs ``o+x``."""
    path = path.resolve()
    for p in (path, *path.parents):
        if not p.stat().st_mode & 0o001:
            raise PermissionError(
                f"sandbox tmp_root {path}: {p} is not traversable by other users (needs o+x), "
                "so the unprivileged sandbox uid could not reach its work dir"
            )


def build_program(code: str, tests: str) -> str:
    """Candidate first, tests second, as one module (tests see the function's globals)."""
    return f"{code.rstrip()}\n\n\n# ---- generated tests ----\n{tests.rstrip()}\n"


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the program, then the launcher's whole process group.

    With namespaces the launcher's child is the namespace's PID 1: killing it first makes the kernel
    kill every process of the namespace (even ``setsid`` escapees) and lets ``unshare`` reap it, so
    no zombie is left for an init that may never reap (containers often run a non-reaping PID 1).
    """
    if proc.poll() is None:
        try:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        except OSError:
            children = []
        for child in children:
            try:
                os.kill(int(child), signal.SIGKILL)
            except (ProcessLookupError, PermissionError, ValueError):
                pass
        if children:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - kernel would have to ignore SIGKILL
        proc.kill()


def _read_capped(path: Path, max_chars: int) -> tuple[str, int]:
    size = path.stat().st_size if path.exists() else 0
    if not size:
        return "", 0
    with open(path, "rb") as f:
        head = f.read(max_chars * 4)
        text = head.decode("utf-8", "replace")
        if size > len(head):
            f.seek(max(len(head), size - 512))
            tail = f.read().decode("utf-8", "replace")
            text = text[:max_chars] + f"\n...[{size} bytes total]...\n" + tail
        elif len(text) > max_chars:
            text = text[:max_chars] + "..."
    return text, size
