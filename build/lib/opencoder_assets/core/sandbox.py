"""Verification sandbox: run a candidate function plus its generated tests in a kernel-isolated process.

Why a sandbox: synthetic snippets are written by an LLM and are only kept if their tests pass
(recipe §4.2), so we execute untrusted code at scale, as root in CI. Isolation is enforced by the
kernel through bubblewrap (``isolation="bwrap"``, the default), never by anything the candidate could
switch off from inside its own interpreter. Each run gets (proven by ``tests/test_sandbox.py``, which
also runs every attack after switching the in-process audit hook off):

1. **Mount namespace with a minimal read-only root**: a tmpfs root (remounted read-only) holding only
   the interpreter binary, its stdlib dirs, the shared libraries they link (found with ``ldd``), the
   loader cache and (as root) ``setpriv``; a fresh ``/proc`` of the run's own PID namespace, a minimal
   ``/dev``, a private size-capped tmpfs ``/tmp`` and a private size-capped tmpfs work dir
   ``/sandbox`` (the only writable places; nothing of the host file system is writable or visible:
   no ``/etc``, no project tree, no host ``/tmp``, no Unix sockets).
2. **Namespaces**: new PID (host processes are invisible and unkillable; when the run's PID 1 exits
   or is killed every descendant dies, double-forked ``setsid`` ones included), network (no route to
   any host listener, TCP or abstract Unix socket), IPC, UTS and cgroup namespaces;
   ``--die-with-parent`` and ``--new-session``.
3. **Unprivileged throw-away uid, no capabilities**: as root, bwrap keeps only CAP_SETUID/SETGID/SETPCAP
   for ``setpriv``, which switches to ``uid_base + random`` (no groups), empties every capability set
   (bounding set included) and sets ``no_new_privs`` before the interpreter starts; the random uid
   makes ``RLIMIT_NPROC`` effective (root ignores it) and scoped to this run. As non-root, bwrap maps
   the caller's uid in a new user namespace and drops all capabilities (nested user namespaces off).
   **seccomp** (x86_64): no nested namespaces, mounts, io_uring, BPF, keyrings, modules
   (:func:`seccomp_program`).
4. **rlimits** set by the runner before any candidate code: ``RLIMIT_AS``, ``RLIMIT_CPU``,
   ``RLIMIT_NPROC`` (fork bombs), ``RLIMIT_FSIZE`` (huge files *and* stdout/stderr, which go to files,
   never to pipes the parent would have to drain), ``RLIMIT_NOFILE``, ``RLIMIT_CORE=0``.
5. **Wall clock**: on timeout the run's PID 1 is ``SIGKILL``-ed (the kernel then kills the whole PID
   namespace) and the launcher's process group too.
6. **Audit hook** (PEP 578, defence in depth only): blocks sockets, process creation, ``ctypes`` and
   writes outside the work dir. Candidate code can disable it (it lives in the same interpreter), so
   nothing above relies on it.

Where bwrap is missing or cannot create namespaces, :class:`Sandbox` raises
:class:`SandboxUnavailable` (synthesis refuses to run) unless the caller opts in to
``isolation="unsafe-audit-only"``: rlimits + audit hook in a plain child process. That mode is NOT a
security boundary (see docs/security.md).

Interpreter: ``python -I -S`` (isolated mode, no ``site``): no env vars, no site-packages; candidates
get the standard library only.

Only a fixed :class:`Verdict` (status from :data:`STATUSES`, exit code, wall time) may be recorded
anywhere (decisions, metrics store): never the program's own output, which is attacker-controlled.
``SandboxResult.stdout``/``stderr`` exist for tests and interactive debugging only.

Pass criterion: exit status 0 *and* a per-run random sentinel printed by the runner after the tests
finished, so a snippet that calls ``sys.exit(0)``/``os._exit(0)`` before its tests does not pass.
(The sentinel protects against accidental early exits, not against code written to forge it: the
sandbox protects the host, the verdict is only as strong as the generated tests.)
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

Isolation = Literal["bwrap", "unsafe-audit-only"]
ISOLATION_MODES: tuple[str, ...] = get_args(Isolation)
Status = Literal["passed", "failed", "timeout", "cpu_limit", "output_limit", "killed", "error"]
#: The only values a verdict's status can take (``error``: the sandbox itself could not start).
STATUSES: frozenset[str] = frozenset(get_args(Status))

SENTINEL_PREFIX = "__OPENCODER_SANDBOX_PASSED__"
#: Inside the sandbox: the private tmpfs work dir (cwd) and the read-only runner.
WORK_DIR = "/sandbox"
RUNNER_PATH = "/runner.py"
OPT_IN_HINT = (
    "install bubblewrap (Debian: apt-get install bubblewrap) on a kernel that allows namespaces, or opt "
    "in explicitly with isolation='unsafe-audit-only' (Dagster: the `isolation` field of the "
    "synthetic_snippets config), which is NOT a security boundary (docs/security.md)"
)

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


class SandboxUnavailable(RuntimeError):
    """Kernel isolation cannot be set up here, so untrusted code must not run (the caller refuses)."""


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
    #: Size caps of the private tmpfs work dir and ``/tmp`` (bwrap only): bound the host RAM a run can fill.
    work_dir_bytes: int = 64 * 1024 * 1024
    tmp_bytes: int = 16 * 1024 * 1024
    allow_subprocess: bool = False
    #: Only for proving the other layers in tests; refused without kernel isolation.
    audit_hook: bool = True


@dataclass(frozen=True)
class Verdict:
    """The only thing about a run that may be recorded: a fixed status, the exit code, the wall time.

    Why: stdout/stderr are written by the untrusted program; storing any of it would give code inside
    the sandbox a channel into the metrics store (and into whatever reads it).
    """

    status: Status
    returncode: int | None
    duration_s: float

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"sandbox verdict: unknown status {self.status!r} (expected one of {sorted(STATUSES)})")
        if self.returncode is not None and not isinstance(self.returncode, int):
            raise TypeError(f"sandbox verdict: returncode must be an int, got {type(self.returncode).__name__}")

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def detail(self) -> str:
        """Fixed-format text for a decision's ``detail`` column, e.g. ``status=failed exit=1 wall_s=0.041``."""
        rc = "none" if self.returncode is None else str(int(self.returncode))
        return f"status={self.status} exit={rc} wall_s={float(self.duration_s):.3f}"


@dataclass
class SandboxResult:
    """What happened. ``stdout``/``stderr`` are the program's own (capped) output: for tests and
    debugging only, never to be stored; record :attr:`verdict` instead."""

    status: Status
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

    @property
    def verdict(self) -> Verdict:
        return Verdict(self.status, self.returncode, round(self.duration_s, 3))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Root:
    """The read-only root of every bwrap run for one interpreter (computed once, then reused)."""

    executable: str
    #: Directories created (mode 0755, root-owned) on the tmpfs root, parents first.
    dirs: tuple[str, ...]
    #: (host source, sandbox path) pairs, bound read-only.
    binds: tuple[tuple[str, str], ...]
    #: ``setpriv`` path when running as root (it is bound too), else None.
    setpriv: str | None


_QUERY = ("import json, os, sys; print(json.dumps({'executable': os.path.realpath(sys.executable), "
          "'path': [os.path.realpath(p) for p in sys.path if os.path.isdir(p)]}))")
#: Sandbox paths that are mounted fresh each run: nothing of the host may be bound over them.
_FRESH_MOUNTS = ("/proc", "/dev", "/tmp", WORK_DIR, RUNNER_PATH)


def _shared_libraries(files: Sequence[str]) -> set[str]:
    """Every shared library (and the loader) that ``files`` link against, as ``ldd`` resolves them."""
    ldd = shutil.which("ldd", path="/usr/bin:/bin")
    if not ldd:
        raise SandboxUnavailable("sandbox: ldd (libc-bin) not found in /usr/bin:/bin, so the interpreter's "
                                 "shared libraries cannot be listed for the read-only root")
    proc = subprocess.run([ldd, *files], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"}, stdin=subprocess.DEVNULL)
    libs: set[str] = set()
    for raw in proc.stdout.splitlines():
        line = raw.strip()
        if "=>" in line:
            path = line.split("=>", 1)[1].strip().split(" (0x", 1)[0].strip()
        elif line.startswith("/") and " (0x" in line:
            path = line.split(" (0x", 1)[0].strip()
        else:
            continue
        if path.startswith("/") and os.path.isfile(path):
            libs.add(os.path.normpath(path))
    return libs


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


@lru_cache(maxsize=4)
def _root_for(python: str) -> _Root:
    """Interpreter binary + stdlib dirs + linked libraries (+ setpriv as root), as bwrap binds."""
    try:
        proc = subprocess.run([python, "-I", "-S", "-c", _QUERY], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})
        info = json.loads(proc.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        raise SandboxUnavailable(f"sandbox: cannot query interpreter {python}: {exc!r}") from exc
    exe = info["executable"]
    lib_dirs = sorted({p for p in info["path"] if p != "/"})
    setpriv = None
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin")
        if not setpriv:
            raise SandboxUnavailable("sandbox: setpriv (util-linux) not found: as root it drops the sandboxed "
                                     "program to a throw-away uid inside bwrap")
        setpriv = os.path.realpath(setpriv)
    extensions = sorted(str(f) for d in lib_dirs for f in Path(d).glob("*.so"))
    files = [exe, *([setpriv] if setpriv else []), *extensions]
    wanted = {exe, *lib_dirs, *_shared_libraries(files), *([setpriv] if setpriv else [])}
    if os.path.isfile("/etc/ld.so.cache"):
        wanted.add("/etc/ld.so.cache")
    bound_dirs = [d for d in lib_dirs]
    binds: list[tuple[str, str]] = []
    for path in sorted(wanted):
        if any(_under(path, fresh) for fresh in _FRESH_MOUNTS):
            raise SandboxUnavailable(f"sandbox: interpreter file {path} lies under {path.split('/')[1]!r}, "
                                     "which the sandbox mounts fresh; install Python elsewhere")
        if any(path != d and _under(path, d) for d in bound_dirs):
            continue  # already visible through a bound stdlib dir
        binds.append((path, path))
    dirs: set[str] = set()
    for _, dest in binds:
        parent = os.path.dirname(dest)
        while parent not in ("/", "") and not any(_under(parent, d) for d in bound_dirs if d != parent):
            if parent not in {b for _, b in binds}:
                dirs.add(parent)
            parent = os.path.dirname(parent)
    return _Root(executable=exe, dirs=tuple(sorted(dirs, key=lambda d: (d.count("/"), d))),
                 binds=tuple(binds), setpriv=setpriv)


# Seccomp (x86_64 only): refuse the syscalls that widen the kernel attack surface without being needed
# by stdlib Python: new namespaces (nested user namespaces would hand the program capabilities over
# a fresh set of kernel objects), mounts, keyrings, BPF, perf, io_uring, userfaultfd, kernel modules.
_AUDIT_ARCH_X86_64 = 0xC000003E
_X86_64_BLOCKED = {
    "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161,
    "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321, "perf_event_open": 298,
    "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
    "delete_module": 176, "open_by_handle_at": 304, "name_to_handle_at": 303, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "mount_setattr": 442, "acct": 163, "swapon": 167, "swapoff": 168, "reboot": 169,
    "settimeofday": 164, "clock_settime": 227, "adjtimex": 159, "quotactl": 179, "lookup_dcookie": 212,
    "vhangup": 153, "syslog": 103,
}
_X86_64_CLONE, _X86_64_CLONE3 = 56, 435
#: CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
_CLONE_NEW_MASK = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000


def seccomp_program() -> bytes | None:
    """A classic-BPF seccomp filter for ``bwrap --seccomp`` (None where the syscall table is not known).

    Blocked syscalls fail with EPERM; ``clone`` with a namespace flag fails with EPERM; ``clone3``
    (flags behind a pointer, not inspectable) fails with ENOSYS so libc falls back to ``clone``; any
    other architecture/ABI (x32, i386 via int 0x80) is killed.
    """
    import platform
    import struct

    if platform.machine() != "x86_64":
        return None
    ld_w_abs, jeq_k, jset_k, jge_k, ret_k = 0x20, 0x15, 0x45, 0x35, 0x06
    allow, kill = 0x7FFF0000, 0x80000000
    errno = lambda e: 0x00050000 | e  # noqa: E731 - SECCOMP_RET_ERRNO
    eperm, enosys = errno(1), errno(38)
    prog: list[tuple[int, int, int, int]] = [
        (ld_w_abs, 0, 0, 4),                      # A = arch
        (jeq_k, 1, 0, _AUDIT_ARCH_X86_64),
        (ret_k, 0, 0, kill),
        (ld_w_abs, 0, 0, 0),                      # A = syscall nr
        (jge_k, 0, 1, 0x40000000),                # x32 ABI
        (ret_k, 0, 0, kill),
    ]
    for nr in sorted(_X86_64_BLOCKED.values()):
        prog += [(jeq_k, 0, 1, nr), (ret_k, 0, 0, eperm)]
    prog += [(jeq_k, 0, 1, _X86_64_CLONE3), (ret_k, 0, 0, enosys),
             (jeq_k, 0, 3, _X86_64_CLONE),
             (ld_w_abs, 0, 0, 16),                # A = low 32 bits of args[0] (clone flags)
             (jset_k, 0, 1, _CLONE_NEW_MASK),
             (ret_k, 0, 0, eperm),
             (ret_k, 0, 0, allow)]
    return b"".join(struct.pack("<HBBI", *ins) for ins in prog)


_PROBES: dict[str, str | None] = {}
_PROBE_LOCK = threading.Lock()


class Sandbox:
    """Runs programs under :class:`SandboxLimits`; thread-safe (each run has its own dirs)."""

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        isolation: Isolation = "bwrap",
        python: str | None = None,
        uid_base: int = 200_000,
        tmp_root: str | None = None,
        bwrap: str | None = None,
    ) -> None:
        """``bwrap``: the bubblewrap binary (default: found in /usr/bin:/bin:/usr/local/bin)."""
        if isolation not in ISOLATION_MODES:
            raise ValueError(f"sandbox isolation {isolation!r}: expected one of {list(ISOLATION_MODES)}")
        self.limits = limits or SandboxLimits()
        self.python = python or sys.executable
        self.uid_base = uid_base
        self.tmp_root = tmp_root
        self.isolation: str = isolation
        self._root: _Root | None = None
        self._bwrap: str | None = None
        self._seccomp: bytes | None = None
        if isolation == "bwrap":
            where = bwrap or "/usr/bin:/bin:/usr/local/bin"
            self._bwrap = shutil.which(bwrap) if bwrap else shutil.which("bwrap", path=where)
            if not self._bwrap:
                raise SandboxUnavailable(f"sandbox: bwrap not found ({where}); {OPT_IN_HINT}")
            self._root = _root_for(self.python)
            self._seccomp = seccomp_program()
            self._probe()

    def _probe(self) -> None:
        """Run a trivial program once per interpreter: refuse now rather than fail every snippet later."""
        key = f"{self._bwrap}\0{self.python}"
        with _PROBE_LOCK:
            if key not in _PROBES:
                res = self.run("import os\nprint('uid', os.getuid())\n",
                               SandboxLimits(wall_time_s=30.0, cpu_time_s=10))
                expected = f"uid {res.uid}"
                _PROBES[key] = None if res.passed and res.stdout.strip() == expected else (
                    f"status={res.status} exit={res.returncode}: {res.stderr.strip()[-400:] or res.stdout[-200:]}")
            problem = _PROBES[key]
        if problem:
            raise SandboxUnavailable(f"sandbox: {self._bwrap} could not isolate {self.python} here ({problem}); "
                                     f"{OPT_IN_HINT}")

    def _rlimits(self, limits: SandboxLimits) -> dict[str, int]:
        return {
            "RLIMIT_AS": limits.memory_bytes,
            "RLIMIT_CPU": limits.cpu_time_s,
            "RLIMIT_FSIZE": limits.max_file_bytes,
            "RLIMIT_NOFILE": limits.max_open_files,
            "RLIMIT_NPROC": limits.max_processes,
            "RLIMIT_CORE": 0,
        }

    def _bwrap_argv(self, control: Path, uid: int, limits: SandboxLimits, cfg: dict,
                    seccomp_fd: int | None) -> list[str]:
        """The bwrap command line: see the module docstring for what each part is for."""
        root = self._root
        assert root is not None and self._bwrap is not None
        argv = [self._bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try", "--hostname", "sandbox", "--die-with-parent", "--new-session",
                # The program is the namespace's PID 1: bwrap's own init would report the exit code and
                # let bwrap return while the kernel is still killing the rest of the namespace.
                "--as-pid-1",
                *(["--seccomp", str(seccomp_fd)] if seccomp_fd is not None else []), "--clearenv", "--setenv", "LANG", "C.UTF-8",
                "--setenv", "HOME", WORK_DIR, "--setenv", "PATH", "/usr/bin:/bin"]
        if root.setpriv:  # root: no user namespace (it would map the program to uid 0); setpriv drops below
            argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                     "--cap-add", "CAP_SETPCAP"]
        else:
            argv += ["--unshare-user", "--disable-userns", "--uid", str(uid), "--gid", str(uid),
                     "--cap-drop", "ALL"]
        argv += ["--proc", "/proc", "--dev", "/dev",
                 "--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
                 "--perms", "1777", "--size", str(limits.work_dir_bytes), "--tmpfs", WORK_DIR]
        for d in root.dirs:
            argv += ["--perms", "0755", "--dir", d]
        for src, dest in root.binds:
            argv += ["--ro-bind", src, dest]
        argv += ["--ro-bind", str(control / "runner.py"), RUNNER_PATH,
                 "--ro-bind", str(control / "candidate.py"), f"{WORK_DIR}/candidate.py",
                 "--chdir", WORK_DIR, "--remount-ro", "/", "--"]
        if root.setpriv:
            argv += [root.setpriv, "--reuid", str(uid), "--regid", str(uid), "--clear-groups", "--no-new-privs",
                     "--bounding-set=-all", "--inh-caps=-all", "--"]
        return [*argv, root.executable, "-I", "-S", RUNNER_PATH, json.dumps(cfg)]

    def run(self, program: str, limits: SandboxLimits | None = None) -> SandboxResult:
        """Execute ``program`` (Python source) in a fresh work dir and report the outcome."""
        limits = limits or self.limits
        kernel = self.isolation == "bwrap"
        if not kernel and limits.allow_subprocess and os.geteuid() == 0:
            raise RuntimeError("allow_subprocess as root needs kernel isolation (root ignores RLIMIT_NPROC)")
        if not kernel and not limits.audit_hook:
            raise RuntimeError("the audit hook is the only write/network guard without kernel isolation")
        nonce = secrets.token_hex(16)
        cfg = {"rlimits": self._rlimits(limits), "allow_subprocess": limits.allow_subprocess,
               "audit_hook": limits.audit_hook, "sentinel": SENTINEL_PREFIX}
        control = Path(tempfile.mkdtemp(prefix="ocsbx-ctl-", dir=self.tmp_root))
        work: Path | None = None
        uid: int | None = None
        seccomp_fd: int | None = None
        try:
            (control / "runner.py").write_text(RUNNER_SOURCE, encoding="utf-8")
            out_path, err_path = control / "stdout", control / "stderr"
            env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
            if kernel:
                (control / "candidate.py").write_text(program, encoding="utf-8")
                uid = self.uid_base + secrets.randbelow(1_000_000) if os.geteuid() == 0 else os.getuid()
                if self._seccomp:
                    seccomp_fd, seccomp_w = os.pipe()
                    os.write(seccomp_w, self._seccomp)  # < 1 KiB: fits the pipe buffer
                    os.close(seccomp_w)
                cmd, cwd = self._bwrap_argv(control, uid, limits, cfg, seccomp_fd), control
            else:
                work = Path(tempfile.mkdtemp(prefix="ocsbx-work-", dir=self.tmp_root))
                (work / "candidate.py").write_text(program, encoding="utf-8")
                cmd = [self.python, "-I", "-S", str(control / "runner.py"), json.dumps(cfg)]
                cwd = work
                env["HOME"] = str(work)
            start = time.monotonic()
            with open(out_path, "wb") as out_f, open(err_path, "wb") as err_f:
                proc = subprocess.Popen(
                    cmd, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=out_f, stderr=err_f,
                    start_new_session=True, close_fds=True, pass_fds=() if seccomp_fd is None else (seccomp_fd,),
                )
                timed_out = False
                try:
                    assert proc.stdin is not None
                    try:
                        proc.stdin.write((nonce + "\n").encode())
                        proc.stdin.close()
                    except BrokenPipeError:
                        pass
                    rc = _wait(proc, limits.wall_time_s)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    rc = None
                finally:
                    _kill_group(proc)
            duration = time.monotonic() - start
            stdout, out_size = _read_capped(out_path, limits.max_output_chars)
            stderr, err_size = _read_capped(err_path, limits.max_output_chars)
            sentinel = SENTINEL_PREFIX + nonce
            status: Status
            if kernel and rc in (1, 126, 127) and not stdout and stderr.startswith(("bwrap: ", "setpriv: ")):
                status = "error"  # the launcher failed before the program started (a program faking this only
                # mislabels its own failure)
            elif timed_out:
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
            if seccomp_fd is not None:
                os.close(seccomp_fd)
            if work is not None:
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


def build_program(code: str, tests: str) -> str:
    """Candidate first, tests second, as one module (tests see the function's globals)."""
    return f"{code.rstrip()}\n\n\n# ---- generated tests ----\n{tests.rstrip()}\n"


def _wait(proc: subprocess.Popen, timeout: float) -> int:
    """``proc.wait(timeout)`` without its sleep-polling (steps of up to 50 ms, the main per-run latency):
    block on a pidfd, which becomes readable when the process exits."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # pragma: no cover - kernels before 5.3
        return proc.wait(timeout=timeout)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(max(0, int(timeout * 1000))):
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(fd)
    return proc.wait()


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the program, then the launcher's whole process group.

    With bwrap the launcher's child is the PID namespace's PID 1: killing it first makes the kernel
    kill every process of the namespace (even ``setsid`` escapees) and lets bwrap reap it, so no
    zombie is left for an init that may never reap (containers often run a non-reaping PID 1).
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
