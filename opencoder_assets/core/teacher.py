"""Teacher LLM client: any OpenAI-compatible ``/chat/completions`` endpoint, cached and rate limited.

Why this shape:
- vLLM, llama.cpp server, Ollama, TGI and hosted APIs all speak the same chat-completions protocol,
  so one stdlib (``urllib``) client covers them; ``base_url`` includes the ``/v1`` prefix.
- Synthesis assets must be *resumable*: every answer is cached on disk (SQLite, WAL mode, safe for
  several threads/processes) under ``sha256(model, messages, params)``; a re-run after a crash or a
  config tweak only pays for prompts it has never sent.
- Teachers throttle: a token bucket keeps us under ``requests_per_minute``; 429/5xx/timeouts are
  retried with exponential backoff + jitter (honouring ``Retry-After``); other 4xx fail fast.
- Prompts are editable text files (``opencoder_assets/prompts/<name>.txt``) with ``[system]`` and
  ``[user]`` sections and ``${variable}`` placeholders (``string.Template``: code braces need no
  escaping).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import random
import re
import sqlite3
import string
import threading
import time
import urllib.error
import urllib.request
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
    """The teacher could not answer (non-retriable HTTP error, retries exhausted, bad payload)."""


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

    def acquire(self) -> float:
        """Block until a token is available; returns the seconds waited."""
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
        with self._lock:
            row = self._con.execute("SELECT response FROM responses WHERE key = ?", [key]).fetchone()
        return json.loads(row[0]) if row else None

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


_RETRIABLE_EXC = (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException,
                  json.JSONDecodeError)


class TeacherClient:
    """Chat-completions client with cache, token bucket and retries; safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        requests_per_minute: float = 600.0,
        burst: int | None = None,
        cache_path: str | Path | None = None,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        default_params: Mapping[str, Any] | None = None,
        prompts_dir: str | Path | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.bucket = TokenBucket(requests_per_minute, burst)
        self.cache = ResponseCache(cache_path) if cache_path else None
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.default_params = dict(default_params or {})
        self.prompts_dir = prompts_dir
        self.extra_headers = dict(extra_headers or {})
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()

    def _count(self, name: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[name] += n

    def chat(self, messages: Sequence[Mapping[str, str]], **params: Any) -> TeacherAnswer:
        """One chat completion; served from the cache when this exact request was answered before."""
        merged = {**self.default_params, **{k: v for k, v in params.items() if v is not None}}
        key = cache_key(self.model, messages, merged)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self._count("cache_hits")
                return self._answer(hit, key, cached=True)
        request = {"model": self.model, "messages": list(messages), **merged}
        response = self._post(request)
        answer = self._answer(response, key, cached=False)
        if self.cache is not None:
            self.cache.put(key, self.model, request, response)
        return answer

    def prompt(self, name: str, params: Mapping[str, Any] | None = None, **variables: Any) -> TeacherAnswer:
        """Render the named template with ``variables`` and ask the teacher."""
        messages = load_prompt(name, self.prompts_dir).render(**variables)
        return self.chat(messages, **dict(params or {}))

    def _answer(self, response: Mapping[str, Any], key: str, cached: bool) -> TeacherAnswer:
        try:
            choice = response["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise TeacherError(f"malformed chat-completions response: {str(response)[:300]}") from exc
        return TeacherAnswer(text=text, cached=cached, key=key, model=str(response.get("model", self.model)),
                             finish_reason=choice.get("finish_reason"), usage=dict(response.get("usage") or {}))

    def _post(self, request: Mapping[str, Any]) -> dict[str, Any]:
        body = json.dumps(request, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json", **self.extra_headers}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last_error: str = ""
        for attempt in range(self.max_retries + 1):
            self.bucket.acquire()
            self._count("requests")
            retry_after: float | None = None
            try:
                req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    payload = json.loads(resp.read().decode("utf-8"))
                if "choices" not in payload:
                    raise TeacherError(f"{self.url}: response without choices: {str(payload)[:300]}")
                return payload
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode("utf-8", "replace")
                last_error = f"HTTP {exc.code}: {detail}"
                if exc.code != 429 and exc.code < 500:
                    self._count("errors")
                    raise TeacherError(f"{self.url}: {last_error}") from exc
                header = exc.headers.get("Retry-After") if exc.headers else None
                if header:
                    try:
                        retry_after = float(header)
                    except ValueError:
                        retry_after = None
            except _RETRIABLE_EXC as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            if attempt < self.max_retries:
                self._count("retries")
                delay = min(self.backoff_max_s, self.backoff_base_s * 2**attempt) * (0.5 + random.random())
                time.sleep(min(self.backoff_max_s, retry_after) if retry_after is not None else delay)
        self._count("errors")
        raise TeacherError(f"{self.url}: gave up after {self.max_retries + 1} attempts; last error {last_error}")

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
