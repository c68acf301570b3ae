"""Teacher LLM client: any OpenAI-compatible ``/chat/completions`` endpoint, cached and rate limited.

Why this shape:
- vLLM, llama.cpp server, Ollama, TGI and hosted APIs all speak the same chat-completions protocol,
  so one stdlib (``urllib``) client covers them; ``base_url`` includes the ``/v1`` prefix.
- Synthesis assets must be *resumable*: every answer is cached on disk (SQLite, WAL mode, safe for
  several threads/processes) under ``sha256(model, messages, params)``; a re-run after a crash or a
  config tweak only pays for prompts it has never sent.
- Teachers throttle: a token bucket keeps us under ``requests_per_minute``; 429/5xx/timeouts are
  retried with exponential backoff + jitter (honouring ``Retry-After``); other 4xx fail fast.
- The server and its answers are untrusted (docs/security.md, "Teacher client"): every failure of a
  request is a ``TeacherError`` naming the URL; one call has a wall-clock ``deadline_s`` across
  connects, reads and retries (enforced against slow-drip servers); bodies are capped at
  ``max_response_bytes``; only complete answers (a stop ``finish_reason``, non-empty text) are cached.
- Prompts are editable text files (``opencoder_assets/prompts/<name>.txt``) with ``[system]`` and
  ``[user]`` sections and ``${variable}`` placeholders (``string.Template``: code braces need no
  escaping).
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import hashlib
import http.client
import json
import math
import random
import re
import socket
import sqlite3
import ssl
import string
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"
_SECTION = re.compile(r"^\[(system|user)\]\s*$", re.MULTILINE)
_CODE_BLOCK = re.compile(r"```[ \t]*([A-Za-z0-9_+#.-]*)[^\n]*\n(.*?)```", re.DOTALL)

Message = dict[str, str]


class TeacherError(RuntimeError):
    """The teacher could not answer (non-retriable HTTP error, retries exhausted, deadline, bad payload).

    Every failure of a request surfaces as this type (or a subclass), naming the URL and the cause,
    so a synthesis asset can record one bad answer as one dropped item.
    """


class IncompleteAnswerError(TeacherError):
    """The teacher answered, but not completely (``finish_reason`` not a stop, or no content).

    Never cached, so the prompt is asked again next run.
    """


class TeacherOutageError(TeacherError):
    """Too many items of one asset failed at the teacher: publishing would replace good data with a gap."""


class PromptError(KeyError):
    """A prompt template is missing, malformed, or was rendered without a required variable."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class PromptTemplate:
    """One editable prompt: optional system message + user message with ``${var}`` placeholders."""

    name: str
    user: str
    system: str | None = None
    path: Path | None = None

    @property
    def variables(self) -> set[str]:
        found: set[str] = set()
        for text in (self.system or "", self.user):
            found.update(string.Template(text).get_identifiers())
        return found

    def render(self, **variables: Any) -> list[Message]:
        missing = sorted(self.variables - set(variables))
        if missing:
            raise PromptError(
                f"prompt {self.name!r} ({self.path}) needs variables {missing}; got {sorted(variables)}"
            )
        values = {k: str(v) for k, v in variables.items()}
        messages: list[Message] = []
        if self.system:
            messages.append({"role": "system", "content": string.Template(self.system).substitute(values)})
        messages.append({"role": "user", "content": string.Template(self.user).substitute(values)})
        return messages


def available_prompts(prompts_dir: str | Path | None = None) -> list[str]:
    return sorted(p.stem for p in Path(prompts_dir or PROMPTS_DIR).glob("*.txt"))


def load_prompt(name: str, prompts_dir: str | Path | None = None) -> PromptTemplate:
    """Load ``<prompts_dir>/<name>.txt``; a custom dir falls back to the packaged templates."""
    dirs = [Path(prompts_dir)] if prompts_dir else []
    dirs.append(PROMPTS_DIR)
    for d in dirs:
        path = d / f"{name}.txt"
        if path.is_file():
            return parse_prompt(name, path.read_text(encoding="utf-8"), path)
    raise PromptError(
        f"unknown prompt {name!r}: no {name}.txt in {[str(d) for d in dirs]}; "
        f"available: {sorted(set().union(*(available_prompts(d) for d in dirs if d.is_dir())))}"
    )


def parse_prompt(name: str, text: str, path: Path | None = None) -> PromptTemplate:
    """Split a template file into sections; lines before the first section starting with ``#`` are notes."""
    parts = _SECTION.split(text)
    if len(parts) == 1:
        return PromptTemplate(name=name, user=text.strip() + "\n", path=path)
    sections: dict[str, str] = {}
    for role, body in zip(parts[1::2], parts[2::2], strict=True):
        if role in sections:
            raise PromptError(f"prompt {name!r} ({path}) has two [{role}] sections")
        sections[role] = body.strip() + "\n"
    if "user" not in sections:
        raise PromptError(f"prompt {name!r} ({path}) has no [user] section")
    for role, body in sections.items():
        try:
            string.Template(body).substitute({k: "" for k in string.Template(body).get_identifiers()})
        except ValueError as exc:
            raise PromptError(f"prompt {name!r} ({path}) [{role}]: bad placeholder: {exc}") from exc
    return PromptTemplate(name=name, user=sections["user"], system=sections.get("system"), path=path)


def extract_code_blocks(text: str, language: str | None = None) -> list[str]:
    """Fenced code blocks of an answer (all, or those tagged ``language``/untagged)."""
    blocks = []
    for tag, body in _CODE_BLOCK.findall(text):
        if language is None or tag.lower() in ("", language.lower(), language.lower()[:2]):
            blocks.append(body.strip("\n") + "\n")
    return blocks


def cache_key(model: str, messages: Sequence[Mapping[str, str]], params: Mapping[str, Any]) -> str:
    payload = json.dumps(
        {"model": model, "messages": list(messages), "params": dict(params)},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class TokenBucket:
    """Thread-safe token bucket: ``rate_per_minute`` refill, ``burst`` capacity."""

    def __init__(self, rate_per_minute: float, burst: int | None = None) -> None:
        self.rate = max(rate_per_minute, 1e-9) / 60.0
        self.capacity = float(burst if burst is not None else max(1, int(rate_per_minute // 10)))
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self, max_wait_s: float | None = None) -> float | None:
        """Block until a token is available; returns the seconds waited.

        With ``max_wait_s``: ``None`` (and no token taken) when no token would be free in time,
        so a call with a deadline never sleeps past it.
        """
        waited = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1.0:
                    self.tokens -= 1.0
                    return waited
                delay = (1.0 - self.tokens) / self.rate
            if max_wait_s is not None and waited + delay > max_wait_s:
                return None
            time.sleep(delay)
            waited += delay


class ResponseCache:
    """SQLite store of raw chat-completion responses keyed by prompt hash (resumability)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._con = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False, isolation_level=None)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, created REAL, "
            "request TEXT, response TEXT)"
        )

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored response, or ``None`` (also for a row that is not a JSON object: re-ask)."""
        with self._lock:
            row = self._con.execute("SELECT response FROM responses WHERE key = ?", [key]).fetchone()
        if not row:
            return None
        try:
            value = json.loads(row[0])
        except (TypeError, ValueError, RecursionError):
            return None
        return value if isinstance(value, dict) else None

    def put(self, key: str, model: str, request: Mapping[str, Any], response: Mapping[str, Any]) -> None:
        with self._lock:
            self._con.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
                [key, model, time.time(), json.dumps(request, ensure_ascii=False),
                 json.dumps(response, ensure_ascii=False)],
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._con.execute("SELECT count(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._con.close()


@dataclass
class TeacherAnswer:
    text: str
    cached: bool
    key: str
    model: str
    finish_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)


#: ``finish_reason`` values meaning "the model ended its answer itself" (OpenAI/vLLM/llama.cpp/Ollama
#: say ``stop``; TGI says ``eos_token``/``stop_sequence``). Anything else (``length``,
#: ``content_filter``, ``tool_calls``, missing) is an incomplete answer: an error, never cached.
COMPLETE_FINISH_REASONS = frozenset({"stop", "eos_token", "stop_sequence"})
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
_READ_CHUNK = 64 * 1024
_ERROR_BODY_BYTES = 2048


class _AttemptFailed(Exception):
    """One attempt failed in a way worth retrying (transport error, 429/5xx, malformed 2xx body)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _DeadlineExceeded(Exception):
    """The call's wall-clock deadline passed during an attempt."""


def printable(data: bytes | str, limit: int = 300) -> str:
    """A short, single-line, terminal-safe excerpt of untrusted server text for error messages."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = text[:limit]
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 256 else "?" for ch in text)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or HTTP date); ``None`` if unusable.

    Negative, NaN/infinite or unparseable values are ignored (the caller backs off normally);
    a date in the past means "now" (0).
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        seconds = max(0.0, when.timestamp() - (time.time() if now is None else now))
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def parse_completion(raw: bytes) -> dict[str, Any]:
    """Decode and validate a chat-completions body; ``ValueError`` says what is wrong with it.

    Valid: a JSON object whose ``choices`` is a non-empty list, ``choices[0].message`` an object and
    its ``content`` a string or null (an empty/null answer is judged later as *incomplete*).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"body is not UTF-8 ({exc.reason} at byte {exc.start}): {printable(raw, 120)!r}") from None
    try:
        payload = json.loads(text)
    except RecursionError:
        raise ValueError("body is JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"body is not JSON ({exc.msg} at char {exc.pos}): {printable(text, 120)!r}") from None
    return validate_completion(payload)


def validate_completion(payload: Any) -> dict[str, Any]:
    """Check the shape of a decoded chat-completions response (see ``parse_completion``)."""
    if not isinstance(payload, dict):
        raise ValueError(f"body is a JSON {type(payload).__name__}, not an object: "
                         f"{printable(json.dumps(payload), 120)!r}")
    choices = payload.get("choices")
    if not isinstance(choices, list):
        raise ValueError(f"response without a choices list: {printable(json.dumps(payload), 200)!r}")
    if not choices:
        raise ValueError("response with an empty choices list")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise ValueError(f"choices[0] has no message object: {printable(json.dumps(choice), 200)!r}")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise ValueError(f"choices[0].message.content is a {type(content).__name__}, not a string")
    reason = choice.get("finish_reason")
    if reason is not None and not isinstance(reason, str):
        raise ValueError(f"choices[0].finish_reason is a {type(reason).__name__}, not a string")
    return payload


class TeacherClient:
    """Chat-completions client with cache, token bucket, retries and a per-call deadline; thread-safe.

    Bounds, all enforced against a misbehaving server (docs/security.md, "Teacher client"):
    ``deadline_s`` is the wall-clock limit of one call across rate-limit waits, connects, reads,
    retries and backoff; ``timeout_s`` limits one attempt; ``max_response_bytes`` caps a body.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        deadline_s: float = 300.0,
        max_retries: int = 5,
        requests_per_minute: float = 600.0,
        burst: int | None = None,
        cache_path: str | Path | None = None,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        default_params: Mapping[str, Any] | None = None,
        prompts_dir: str | Path | None = None,
        extra_headers: Mapping[str, str] | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_error_share: float = 0.5,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"teacher base_url {base_url!r} must be an http:// or https:// URL with a host")
        for name, value in (("timeout_s", timeout_s), ("deadline_s", deadline_s),
                            ("max_response_bytes", max_response_bytes)):
            if not value > 0:
                raise ValueError(f"teacher {name} must be > 0, got {value!r}")
        if not 0.0 <= max_error_share <= 1.0:
            raise ValueError(f"teacher max_error_share must be within [0, 1], got {max_error_share!r}")
        self._parts = parts
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self.max_retries = max_retries
        self.max_response_bytes = int(max_response_bytes)
        self.max_error_share = max_error_share
        self.bucket = TokenBucket(requests_per_minute, burst)
        self.cache = ResponseCache(cache_path) if cache_path else None
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.default_params = dict(default_params or {})
        self.prompts_dir = prompts_dir
        self.extra_headers = dict(extra_headers or {})
        self.stats: Counter[str] = Counter()
        self.last_error: str = ""
        self._stats_lock = threading.Lock()

    def _count(self, name: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[name] += n

    def _fail(self, message: str, cls: type[TeacherError] = TeacherError) -> TeacherError:
        """Count an error, remember it for the outage report, and build the exception."""
        self._count("errors")
        self.last_error = message
        return cls(message)

    def chat(self, messages: Sequence[Mapping[str, str]], **params: Any) -> TeacherAnswer:
        """One chat completion; served from the cache when this exact request was answered completely."""
        merged = {**self.default_params, **{k: v for k, v in params.items() if v is not None}}
        key = cache_key(self.model, messages, merged)
        if self.cache is not None:
            try:
                hit = self.cache.get(key)
            except sqlite3.Error as exc:
                raise self._fail(f"teacher cache {self.cache.path}: {exc}") from exc
            if hit is not None:
                try:
                    answer = self._answer(hit, key, cached=True)
                except TeacherError:
                    answer = None
                if answer is not None and self._complete(answer):
                    self._count("cache_hits")
                    return answer
                self._count("cache_invalid")  # e.g. an incomplete answer cached by an older version
        request = {"model": self.model, "messages": list(messages), **merged}
        response = self._post(request)
        answer = self._answer(response, key, cached=False)
        if not self._complete(answer):
            raise self._fail(
                f"{self.url}: incomplete answer (finish_reason={answer.finish_reason!r}, "
                f"{len(answer.text)} chars); not cached, asked again next run", IncompleteAnswerError)
        if self.cache is not None:
            try:
                self.cache.put(key, self.model, request, response)
            except sqlite3.Error as exc:
                raise self._fail(f"teacher cache {self.cache.path}: {exc}") from exc
        return answer

    @staticmethod
    def _complete(answer: TeacherAnswer) -> bool:
        return answer.finish_reason in COMPLETE_FINISH_REASONS and bool(answer.text.strip())

    def prompt(self, name: str, params: Mapping[str, Any] | None = None, **variables: Any) -> TeacherAnswer:
        """Render the named template with ``variables`` and ask the teacher."""
        messages = load_prompt(name, self.prompts_dir).render(**variables)
        return self.chat(messages, **dict(params or {}))

    def check_outage(self, step: str, failed: int, total: int) -> None:
        """Raise ``TeacherOutageError`` if more than ``max_error_share`` of ``total`` items failed.

        Why: a synthesis asset records each teacher failure as a dropped item; with the teacher down
        that would publish an (almost) empty version over the previous good one. Called before
        anything is published, so the failing run leaves the previous data and metrics untouched.
        """
        if total <= 0 or failed / total <= self.max_error_share:
            return
        raise TeacherOutageError(
            f"{step}: {failed}/{total} items ({failed / total:.0%}) failed at the teacher {self.url}, more than "
            f"max_teacher_error_share={self.max_error_share}; the previous version is kept. "
            f"Last error: {self.last_error[:300]}")

    def _answer(self, response: Mapping[str, Any], key: str, cached: bool) -> TeacherAnswer:
        try:
            validate_completion(response)
            choice = response["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise TeacherError(f"{self.url}: malformed chat-completions response: {printable(str(response))}") from exc
        usage = response.get("usage")
        return TeacherAnswer(text=text, cached=cached, key=key, model=str(response.get("model") or self.model),
                             finish_reason=choice.get("finish_reason"),
                             usage=dict(usage) if isinstance(usage, dict) else {})

    # ------------------------------------------------------------------ transport
    def _post(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """POST with retries inside one wall-clock deadline; every failure becomes a ``TeacherError``."""
        try:
            return self._post_with_retries(request)
        except TeacherError:
            raise
        except Exception as exc:  # the guarantee: nothing else escapes a request
            raise self._fail(f"{self.url}: unexpected {type(exc).__name__}: {printable(str(exc))}") from exc

    def _post_with_retries(self, request: Mapping[str, Any]) -> dict[str, Any]:
        try:
            body = json.dumps(request, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise self._fail(f"{self.url}: request is not JSON-serialisable: {exc}") from exc
        headers = {"Content-Type": "application/json", "Accept": "application/json", **self.extra_headers}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        self.bucket.acquire()  # the first token is our own throttling: the deadline starts after it
        start = time.monotonic()
        deadline = start + self.deadline_s
        last_error = "none"
        attempts = 0
        for attempt in range(self.max_retries + 1):
            if attempt and self.bucket.acquire(max_wait_s=max(0.0, deadline - time.monotonic())) is None:
                break  # no rate-limit token before the deadline
            attempts += 1
            self._count("requests")
            retry_after: float | None = None
            try:
                return self._attempt(body, headers, min(deadline, time.monotonic() + self.timeout_s))
            except _AttemptFailed as exc:
                last_error, retry_after = str(exc), exc.retry_after
            except _DeadlineExceeded as exc:
                last_error = str(exc)
            if attempt == self.max_retries:
                raise self._fail(f"{self.url}: gave up after {attempts} attempts; last error {last_error}")
            delay = min(self.backoff_max_s, self.backoff_base_s * 2**attempt) * (0.5 + random.random())
            if retry_after is not None:
                delay = min(self.backoff_max_s, retry_after)
            if time.monotonic() + delay >= deadline:
                break
            self._count("retries")
            time.sleep(delay)
        raise self._fail(f"{self.url}: deadline of {self.deadline_s:g}s exceeded after {attempts} attempt(s) "
                         f"({time.monotonic() - start:.1f}s); last error {last_error}")

    def _attempt(self, body: bytes, headers: Mapping[str, str], deadline: float) -> dict[str, Any]:
        """One request/response exchange that cannot outlive ``deadline`` (monotonic clock).

        Two bounds: before every blocking step the socket timeout is set to the time left, and a
        watchdog timer shuts the socket down at the deadline (covers a server dripping its status
        line and headers, where one recv per byte would otherwise reset the timeout).
        """
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _DeadlineExceeded("deadline reached before connecting")
        host, port = self._parts.hostname or "", self._parts.port
        path = self._parts.path + (f"?{self._parts.query}" if self._parts.query else "")
        conn: http.client.HTTPConnection
        if self._parts.scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=remaining, context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=remaining)
        expired = threading.Event()
        sockets: list[socket.socket] = []

        def kill() -> None:
            expired.set()
            for s in sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(remaining, kill)
        watchdog.daemon = True
        watchdog.start()
        response: http.client.HTTPResponse | None = None
        try:
            conn.connect()
            sock = conn.sock
            sockets.append(sock)
            if expired.is_set():  # fired between connect() and registering the socket
                kill()
            conn.request("POST", path, body=body, headers=dict(headers))
            self._set_timeout(sock, deadline)
            response = conn.getresponse()
            status = response.status
            if 200 <= status < 300:
                raw = self._read_body(response, sock, deadline, self.max_response_bytes)
                try:
                    return parse_completion(raw)
                except ValueError as exc:
                    raise _AttemptFailed(f"HTTP {status}: {exc}") from None
            detail = printable(self._read_body(response, sock, deadline, _ERROR_BODY_BYTES, truncate=True))
            if status == 429 or status >= 500:
                raise _AttemptFailed(f"HTTP {status}: {detail}", parse_retry_after(response.getheader("Retry-After")))
            if 300 <= status < 400:
                raise self._fail(f"{self.url}: HTTP {status} redirect to "
                                 f"{printable(response.getheader('Location') or '?')} (redirects are not followed)")
            raise self._fail(f"{self.url}: HTTP {status}: {detail}")
        except (_AttemptFailed, TeacherError):
            raise
        except _DeadlineExceeded:
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if expired.is_set() or time.monotonic() >= deadline:
                raise _DeadlineExceeded(f"attempt deadline reached while talking to the server "
                                        f"({type(exc).__name__})") from None
            raise _AttemptFailed(f"{type(exc).__name__}: {printable(str(exc))}") from None
        finally:
            watchdog.cancel()
            if response is not None:
                with contextlib.suppress(Exception):
                    response.close()
            with contextlib.suppress(Exception):
                conn.close()

    @staticmethod
    def _set_timeout(sock: socket.socket, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _DeadlineExceeded("attempt deadline reached")
        sock.settimeout(remaining)

    def _read_body(self, response: http.client.HTTPResponse, sock: socket.socket, deadline: float, cap: int,
                   truncate: bool = False) -> bytes:
        """Read the body in chunks, checking the deadline and the byte cap between chunks."""
        declared = response.getheader("Content-Length")
        if not truncate and declared and declared.strip().isdigit() and int(declared) > cap:
            raise self._fail(f"{self.url}: response of {int(declared)} bytes (Content-Length) exceeds "
                             f"max_response_bytes={cap}")
        chunks: list[bytes] = []
        total = 0
        while True:
            self._set_timeout(sock, deadline)
            chunk = response.read1(_READ_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > cap:
                if truncate:
                    chunks.append(chunk)
                    break
                raise self._fail(f"{self.url}: response exceeds max_response_bytes={cap} "
                                 f"(read {total} bytes so far)")
            chunks.append(chunk)
        if time.monotonic() >= deadline:  # the watchdog ended the body early
            raise _DeadlineExceeded("attempt deadline reached while reading the body")
        if not truncate and response.length:  # read1 returns b"" at a premature EOF instead of raising
            raise _AttemptFailed(f"HTTP {response.status}: body truncated: got {total} of "
                                 f"{total + response.length} bytes (Content-Length)")
        data = b"".join(chunks)
        return data[:cap] if truncate else data

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
