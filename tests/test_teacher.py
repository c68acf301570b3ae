"""Teacher client tests against a real HTTP server speaking the OpenAI chat-completions protocol.

``TeacherServer`` is also imported by ``test_annealing_sft_assets.py``: a small deterministic
"model" whose answers depend only on the prompt (snippets, tests, textbooks, package Q&A), with
some generated tests deliberately wrong so verification visibly drops them.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from opencoder_assets.core.teacher import (
    PromptError,
    TeacherClient,
    TeacherError,
    TokenBucket,
    available_prompts,
    extract_code_blocks,
    load_prompt,
)

# name -> (function template, correct asserts, wrong asserts). ``{n}`` is a per-seed suffix.
_FUNCTIONS: list[tuple[str, str, str]] = [
    (
        "def binary_search_{n}(items: list[int], target: int) -> int:\n"
        '    """Index of target in the sorted list items, or -1."""\n'
        "    lo, hi = 0, len(items) - 1\n"
        "    while lo <= hi:\n"
        "        mid = (lo + hi) // 2\n"
        "        if items[mid] == target:\n"
        "            return mid\n"
        "        if items[mid] < target:\n"
        "            lo = mid + 1\n"
        "        else:\n"
        "            hi = mid - 1\n"
        "    return -1\n",
        "assert binary_search_{n}([1, 3, 5, 7], 5) == 2\nassert binary_search_{n}([], 1) == -1\n"
        "assert binary_search_{n}([2, 4], 3) == -1\n",
        "assert binary_search_{n}([1, 3, 5, 7], 5) == 3\n",
    ),
    (
        "def pair_with_sum_{n}(nums: list[int], target: int) -> tuple[int, int] | None:\n"
        '    """Indices (i, j), i < j, of the first pair summing to target, else None."""\n'
        "    seen: dict[int, int] = {{}}\n"
        "    for j, value in enumerate(nums):\n"
        "        if target - value in seen:\n"
        "            return seen[target - value], j\n"
        "        seen.setdefault(value, j)\n"
        "    return None\n",
        "assert pair_with_sum_{n}([2, 7, 11, 15], 9) == (0, 1)\nassert pair_with_sum_{n}([1, 2], 7) is None\n"
        "assert pair_with_sum_{n}([3, 3], 6) == (0, 1)\n",
        "assert pair_with_sum_{n}([2, 7, 11, 15], 9) == (1, 0)\n",
    ),
    (
        "def balanced_brackets_{n}(text: str) -> bool:\n"
        '    """True if every bracket in text is closed in the right order."""\n'
        "    pairs = {{')': '(', ']': '[', '}}': '{{'}}\n"
        "    stack: list[str] = []\n"
        "    for ch in text:\n"
        "        if ch in '([{{':\n"
        "            stack.append(ch)\n"
        "        elif ch in pairs:\n"
        "            if not stack or stack.pop() != pairs[ch]:\n"
        "                return False\n"
        "    return not stack\n",
        "assert balanced_brackets_{n}('([]{{}})')\nassert not balanced_brackets_{n}('(]')\n"
        "assert balanced_brackets_{n}('')\n",
        "assert balanced_brackets_{n}('(]')\n",
    ),
    (
        "def running_max_{n}(values: list[int]) -> list[int]:\n"
        '    """Prefix maxima of values."""\n'
        "    out: list[int] = []\n"
        "    for v in values:\n"
        "        out.append(v if not out else max(out[-1], v))\n"
        "    return out\n",
        "assert running_max_{n}([1, 3, 2, 5]) == [1, 3, 3, 5]\nassert running_max_{n}([]) == []\n",
        "assert running_max_{n}([1, 3, 2, 5]) == [1, 3, 2, 5]\n",
    ),
]


def _seed_hash(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def fake_model_answer(messages: list[dict[str, str]]) -> str:
    """Deterministic answers keyed on the prompt; ~1 in 3 test answers is wrong on purpose."""
    user = messages[-1]["content"]
    if "seed program" in user.lower():
        h = _seed_hash(user)
        template = _FUNCTIONS[h % len(_FUNCTIONS)][0]
        return f"Here is the function:\n\n```python\n{template.format(n=h % 10007)}```\n"
    m = re.search(r"test cases for the Python function `(\w+)`", user)
    if m:
        name = m.group(1)
        suffix = int(name.rsplit("_", 1)[1])
        idx = next(i for i, f in enumerate(_FUNCTIONS) if f[0].split("(")[0][4:].rsplit("_", 1)[0] in name)
        wrong = _seed_hash(name) % 3 == 0
        asserts = _FUNCTIONS[idx][2 if wrong else 1].format(n=suffix)
        return f"```python\n{asserts}```"
    if "textbook section" in user:
        code = user.split("```", 2)[1]
        first = next((ln.strip() for ln in code.splitlines()[1:] if ln.strip()), "")
        return (f"## Overview\n\nThis code starts with `{first[:60]}` and shows a classic technique.\n\n"
                "## Walkthrough\n\nWe iterate over the input once, keeping the state we need.\n\n"
                "## Complexity\n\nLinear time, constant extra memory.\n\n## Exercise\n\nRewrite it recursively.\n")
    m = re.search(r"Signature: `([\w.]+)", user)
    if m:
        qual = m.group(1)
        return (f"### Instruction\nHow do I call `{qual}` and what does it return?\n"
                f"### Response\nCall `{qual}` as documented; for example:\n\n```python\n# uses {qual}\n```\n")
    return "I can only help with code."


class TeacherServer:
    """``POST /v1/chat/completions`` on 127.0.0.1:<random port>, in a thread.

    ``fail_next``: a list of HTTP statuses to return (in order) before answering normally.
    """

    def __init__(self, api_key: str | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.paths: Counter[str] = Counter()
        self.fail_next: list[int] = []
        self.api_key = api_key
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                body = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", 0))
                request = json.loads(self.rfile.read(length))
                with outer._lock:
                    outer.paths[self.path] += 1
                    outer.requests.append(request)
                    fail = outer.fail_next.pop(0) if outer.fail_next else None
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                if outer.api_key and self.headers.get("Authorization") != f"Bearer {outer.api_key}":
                    return self._send(401, {"error": {"message": "bad key"}})
                if fail is not None:
                    return self._send(fail, {"error": {"message": "try later"}}, {"Retry-After": "0"})
                text = fake_model_answer(request["messages"])
                self._send(200, {
                    "id": "chatcmpl-test", "object": "chat.completion", "model": request["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": len(text) // 4, "total_tokens": 0},
                })

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def count(self) -> int:
        return len(self.requests)

    def __enter__(self) -> TeacherServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    with TeacherServer(api_key="sk-test") as srv:
        yield srv


def _client(server: TeacherServer, tmp_path: Path, **kw: Any) -> TeacherClient:
    opts: dict[str, Any] = {"api_key": "sk-test", "cache_path": tmp_path / "cache.sqlite",
                            "requests_per_minute": 60_000, "backoff_base_s": 0.01,
                            "default_params": {"temperature": 0.0}}
    opts.update(kw)
    return TeacherClient(server.base_url, "tiny-coder", **opts)


def test_packaged_prompts_load_and_render() -> None:
    assert {"snippet_synthesis", "test_generation", "textbook", "package_instruct"} <= set(available_prompts())
    p = load_prompt("snippet_synthesis")
    assert p.variables == {"language", "seed_code"}
    msgs = p.render(language="python", seed_code="class Solution:\n    pass\n")
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "class Solution" in msgs[1]["content"] and "${" not in msgs[1]["content"]
    assert load_prompt("test_generation").variables == {"entry_point", "function_code"}
    assert load_prompt("package_instruct").variables >= {"package", "version", "qualname", "signature", "doc"}


def test_prompt_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="needs variables \\['seed_code'\\]"):
        load_prompt("snippet_synthesis").render(language="go")
    with pytest.raises(PromptError, match="unknown prompt 'nope'.*available: .*textbook"):
        load_prompt("nope")
    (tmp_path / "textbook.txt").write_text("[user]\nExplain ${code} like a pirate.\n")
    (tmp_path / "broken.txt").write_text("[system]\nonly a system part\n")
    custom = load_prompt("textbook", tmp_path)
    assert custom.variables == {"code"} and custom.system is None
    assert load_prompt("test_generation", tmp_path).path.parent.name == "prompts"  # fallback
    with pytest.raises(PromptError, match="no \\[user\\] section"):
        load_prompt("broken", tmp_path)


def test_chat_protocol_and_cache(server: TeacherServer, tmp_path: Path) -> None:
    client = _client(server, tmp_path)
    a1 = client.prompt("snippet_synthesis", language="python", seed_code="def solution(a):\n    return a\n")
    assert not a1.cached and extract_code_blocks(a1.text, "python")[0].startswith("def ")
    req = server.requests[0]
    assert req["model"] == "tiny-coder" and req["temperature"] == 0.0 and req["messages"][0]["role"] == "system"
    assert server.paths["/v1/chat/completions"] == 1
    a2 = client.prompt("snippet_synthesis", language="python", seed_code="def solution(a):\n    return a\n")
    assert a2.cached and a2.text == a1.text and a2.key == a1.key and server.count == 1
    # Different params -> different cache key -> a new request.
    client.prompt("snippet_synthesis", {"temperature": 0.7}, language="python", seed_code="def solution(a):\n    return a\n")
    assert server.count == 2
    client.close()
    # A new client (a re-run) reuses the on-disk cache: resumability.
    again = _client(server, tmp_path)
    assert again.prompt("snippet_synthesis", language="python", seed_code="def solution(a):\n    return a\n").cached
    assert server.count == 2 and again.stats["cache_hits"] == 1


def test_retries_on_429_and_5xx(server: TeacherServer, tmp_path: Path) -> None:
    client = _client(server, tmp_path, cache_path=None)
    server.fail_next = [429, 503, 500]
    answer = client.chat([{"role": "user", "content": "hello"}])
    assert answer.text == "I can only help with code."
    assert client.stats["retries"] == 3 and client.stats["requests"] == 4


def test_gives_up_and_fails_fast(server: TeacherServer, tmp_path: Path) -> None:
    client = _client(server, tmp_path, cache_path=None, max_retries=2)
    server.fail_next = [502, 502, 502, 502]
    with pytest.raises(TeacherError, match="gave up after 3 attempts; last error HTTP 502"):
        client.chat([{"role": "user", "content": "x"}])
    bad = _client(server, tmp_path, cache_path=None, api_key="wrong")
    before = server.count
    with pytest.raises(TeacherError, match="HTTP 401"):
        bad.chat([{"role": "user", "content": "x"}])
    assert server.count == before + 1  # 4xx other than 429: no retry
    dead = TeacherClient("http://127.0.0.1:9/v1", "m", max_retries=1, backoff_base_s=0.01, timeout_s=2)
    with pytest.raises(TeacherError, match="127.0.0.1:9.*ConnectionRefusedError"):
        dead.chat([{"role": "user", "content": "x"}])


def test_rate_limit_token_bucket(server: TeacherServer, tmp_path: Path) -> None:
    client = _client(server, tmp_path, cache_path=None, requests_per_minute=600, burst=1)
    start = time.monotonic()
    for i in range(6):
        client.chat([{"role": "user", "content": f"q{i}"}])
    assert time.monotonic() - start >= 0.45  # 600/min = one request per 0.1 s after the burst
    bucket = TokenBucket(60_000, burst=5)
    assert sum(bucket.acquire() for _ in range(5)) == 0.0


def test_concurrent_clients_share_cache(server: TeacherServer, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client = _client(server, tmp_path)
    prompts = [f"def solution_{i % 5}(): pass" for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda s: client.prompt("textbook", language="python", code=s), prompts))
    assert len({a.text for a in answers}) == 5
    assert 5 <= server.count <= 40 and len(client.cache or []) == 5
