"""Teacher client tests against a real HTTP server speaking the OpenAI chat-completions protocol.

``TeacherServer`` is also imported by ``test_annealing_sft_assets.py``: a small deterministic
"model" whose answers depend only on the prompt (snippets, tests, textbooks, package Q&A), with
some generated tests deliberately wrong so verification visibly drops them.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from opencoder_assets.core.teacher import (
    IncompleteAnswerError,
    PromptError,
    TeacherClient,
    TeacherError,
    TokenBucket,
    available_prompts,
    cache_key,
    extract_code_blocks,
    load_prompt,
    parse_retry_after,
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


Behaviour = Callable[[BaseHTTPRequestHandler, dict[str, Any]], None]


def completion_body(content: Any, finish_reason: str | None = "stop") -> dict[str, Any]:
    return {"id": "chatcmpl-test", "object": "chat.completion", "model": "tiny-coder",
            "choices": [{"index": 0, "finish_reason": finish_reason,
                         "message": {"role": "assistant", "content": content}}]}


def raw_reply(status: int, body: bytes | dict[str, Any] | list[Any] | int, headers: dict[str, str] | None = None,
              content_type: str = "application/json", content_length: bool = True) -> Behaviour:
    """Answer with exactly these bytes (a dict/list/int is JSON-encoded); no Content-Length if asked."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()

    def act(h: BaseHTTPRequestHandler, request: dict[str, Any]) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        if content_length:
            h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    return act


def reset_connection() -> Behaviour:
    """Abort the TCP connection (RST) instead of answering."""
    def act(h: BaseHTTPRequestHandler, request: dict[str, Any]) -> None:
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.close()

    return act


def _drip(h: BaseHTTPRequestHandler, stopping: threading.Event, data: bytes, interval: float) -> None:
    """Send ``data`` one byte per ``interval`` seconds, then keep dripping spaces (max 60 s)."""
    end = time.monotonic() + 60
    i = 0
    while not stopping.is_set() and time.monotonic() < end:
        try:
            h.wfile.write(data[i:i + 1] if i < len(data) else b" ")
            h.wfile.flush()
        except OSError:
            return
        i += 1
        time.sleep(interval)


def drip_body(server: TeacherServer, interval: float = 0.2) -> Behaviour:
    """Proper headers, then a body that never ends arriving (one byte per ``interval``)."""
    def act(h: BaseHTTPRequestHandler, request: dict[str, Any]) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", "1000000")
        h.end_headers()
        _drip(h, server.stopping, b'{"choices": [', interval)

    return act


def drip_headers(server: TeacherServer, interval: float = 0.2) -> Behaviour:
    """The status line and headers themselves arrive one byte per ``interval``."""
    def act(h: BaseHTTPRequestHandler, request: dict[str, Any]) -> None:
        _drip(h, server.stopping, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: " + b"a" * 500,
              interval)

    return act


def answer_normally(h: BaseHTTPRequestHandler, request: dict[str, Any]) -> None:
    """The well-behaved answer of the fake model (``fake_model_answer``)."""
    text = fake_model_answer(request["messages"])
    body = completion_body(text)
    body["model"] = request["model"]
    body["usage"] = {"prompt_tokens": 10, "completion_tokens": len(text) // 4, "total_tokens": 0}
    raw_reply(200, body)(h, request)


def when_prompt_contains(needle: str, behaviour: Behaviour) -> Behaviour:
    """Misbehave only for prompts containing ``needle``; answer the others normally."""
    def act(h: BaseHTTPRequestHandler, request: dict[str, Any]) -> None:
        if any(needle in m.get("content", "") for m in request["messages"]):
            behaviour(h, request)
        else:
            answer_normally(h, request)

    return act


class TeacherServer:
    """``POST /v1/chat/completions`` on 127.0.0.1:<random port>, in a thread.

    ``fail_next``: a list of HTTP statuses to return (in order) before answering normally.
    ``script``: behaviours (see ``raw_reply``, ``drip_body``...) for the next requests, in order;
    ``always``: a behaviour for every request after that (a misbehaving server).
    """

    def __init__(self, api_key: str | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.paths: Counter[str] = Counter()
        self.fail_next: list[int] = []
        self.script: list[Behaviour] = []
        self.always: Behaviour | None = None
        self.stopping = threading.Event()
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
                    behaviour = outer.script.pop(0) if outer.script else outer.always
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                if outer.api_key and self.headers.get("Authorization") != f"Bearer {outer.api_key}":
                    return self._send(401, {"error": {"message": "bad key"}})
                if fail is not None:
                    return self._send(fail, {"error": {"message": "try later"}}, {"Retry-After": "0"})
                if behaviour is not None:
                    return behaviour(self, request)
                answer_normally(self, request)

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
        self.stopping.set()
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
    slow = TokenBucket(60, burst=1)  # one token per second
    assert slow.acquire() == 0.0
    assert slow.acquire(max_wait_s=0.2) is None  # would wait ~1 s: refuses instead (deadline-bound callers)
    assert slow.acquire(max_wait_s=5) is not None


def test_concurrent_clients_share_cache(server: TeacherServer, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client = _client(server, tmp_path)
    prompts = [f"def solution_{i % 5}(): pass" for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda s: client.prompt("textbook", language="python", code=s), prompts))
    assert len({a.text for a in answers}) == 5
    # no in-flight dedup: concurrent misses of one prompt may each post, so the first round's
    # count is exactly its uncached answers (>= 1 per prompt); the second round is all hits
    first = server.count
    assert first == sum(not a.cached for a in answers) == 40 - client.stats["cache_hits"] >= 5
    with ThreadPoolExecutor(8) as pool:
        again = list(pool.map(lambda s: client.prompt("textbook", language="python", code=s), prompts))
    assert all(a.cached for a in again) and server.count == first and len(client.cache or []) == 5



# ----------------------------------------------------------------------------- a misbehaving teacher
_HTML = b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"

#: name -> (behaviour, expected message regex, requests made with max_retries=1, error class)
MISBEHAVIOURS: dict[str, tuple[Behaviour, str, int, type[TeacherError]]] = {
    "retry_after_negative": (raw_reply(503, {"error": "busy"}, {"Retry-After": "-5"}), "HTTP 503", 2, TeacherError),
    "retry_after_nan": (raw_reply(503, {"error": "busy"}, {"Retry-After": "nan"}), "HTTP 503", 2, TeacherError),
    "non_utf8_body": (raw_reply(200, b'\xff\xfe{"choices": []}'), "body is not UTF-8", 2, TeacherError),
    "json_number": (raw_reply(200, 5), "body is a JSON int, not an object", 2, TeacherError),
    "json_list": (raw_reply(200, [1, 2]), "body is a JSON list, not an object", 2, TeacherError),
    "deep_json": (raw_reply(200, b"[" * 200_000), "nested too deeply|not JSON", 2, TeacherError),
    "missing_choices": (raw_reply(200, {"id": "x", "object": "chat.completion"}), "without a choices list", 2,
                        TeacherError),
    "empty_choices": (raw_reply(200, {"choices": []}), "empty choices list", 2, TeacherError),
    "choice_not_object": (raw_reply(200, {"choices": ["hi"]}), "no message object", 2, TeacherError),
    "content_not_string": (raw_reply(200, completion_body([{"type": "text"}])), "content is a list", 2, TeacherError),
    "content_null": (raw_reply(200, completion_body(None)), "incomplete answer \\(finish_reason='stop', 0 chars",
                     1, IncompleteAnswerError),
    "finish_length_empty": (raw_reply(200, completion_body("", "length")), "incomplete answer.*'length'", 1,
                            IncompleteAnswerError),
    "finish_length_text": (raw_reply(200, completion_body("def f(", "length")), "incomplete answer.*6 chars", 1,
                           IncompleteAnswerError),
    "no_finish_reason": (raw_reply(200, completion_body("hi", None)), "incomplete answer.*None", 1,
                         IncompleteAnswerError),
    "html_200": (raw_reply(200, _HTML, content_type="text/html"), "body is not JSON.*Bad Gateway", 2, TeacherError),
    "html_502": (raw_reply(502, _HTML, content_type="text/html"), "HTTP 502: <html>", 2, TeacherError),
    "truncated_body": (raw_reply(200, b'{"choices": [', {"Content-Length": "5000"}, content_length=False),
                       "body truncated: got 13 of 5000 bytes", 2, TeacherError),
    "connection_reset": (reset_connection(), "ConnectionResetError|RemoteDisconnected|BadStatusLine", 2,
                         TeacherError),
    "redirect": (raw_reply(302, b"", {"Location": "http://203.0.113.9/steal"}),
                 "HTTP 302 redirect to http://203.0.113.9/steal \\(redirects are not followed\\)", 1, TeacherError),
    "bad_request_with_escapes": (raw_reply(400, b"bad \x1b[31mred\x1b[0m\r\nX-Injected: 1"),
                                 r"HTTP 400: bad \\x1b\[31mred\\x1b\[0m\\x0d\\x0aX-Injected", 1, TeacherError),
}


@pytest.mark.parametrize("name", sorted(MISBEHAVIOURS))
def test_every_bad_answer_is_a_teacher_error(name: str, server: TeacherServer, tmp_path: Path) -> None:
    """Each way a server can answer badly is one TeacherError naming the URL and the cause; nothing cached."""
    behaviour, pattern, requests, cls = MISBEHAVIOURS[name]
    server.always = behaviour
    client = _client(server, tmp_path, max_retries=1, deadline_s=20)
    with pytest.raises(TeacherError, match=pattern) as err:
        client.chat([{"role": "user", "content": f"ask {name}"}])
    assert type(err.value) is cls
    assert str(err.value).startswith(f"{server.base_url}/chat/completions: ")
    assert server.count == requests  # retriable problems retried once, the others not at all
    assert client.cache is not None and len(client.cache) == 0


def test_recovers_after_bad_answers(server: TeacherServer, tmp_path: Path) -> None:
    """Transient garbage (bad Retry-After values, a reset, HTML, 500s) then a good answer: success, cached."""
    server.script = [raw_reply(503, {"error": "busy"}, {"Retry-After": "-5"}),
                     raw_reply(429, {"error": "slow"}, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
                     reset_connection(), raw_reply(200, _HTML, content_type="text/html"),
                     raw_reply(500, b"oops"), raw_reply(200, 5)]
    client = _client(server, tmp_path, max_retries=6)
    answer = client.chat([{"role": "user", "content": "hello"}])
    assert answer.text == "I can only help with code." and not answer.cached
    assert client.stats["retries"] == 6 and server.count == 7 and len(client.cache or []) == 1


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0 and parse_retry_after(" 0.5 ") == 0.5
    for bad in (None, "", "-5", "nan", "inf", "-inf", "soon", "1e999"):
        assert parse_retry_after(bad) is None, bad
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: now
    now = 1_700_000_000.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:40 GMT", now=now) == pytest.approx(20.0)


@pytest.mark.parametrize("kind", ["body", "headers"])
def test_deadline_holds_against_a_drip_server(kind: str, server: TeacherServer, tmp_path: Path) -> None:
    """One byte every 0.2 s forever: the call ends with a TeacherError at its deadline, not at timeout_s."""
    server.always = drip_body(server) if kind == "body" else drip_headers(server)
    client = _client(server, tmp_path, max_retries=3, timeout_s=30, deadline_s=2)
    start = time.monotonic()
    with pytest.raises(TeacherError, match="deadline of 2s exceeded after 1 attempt.*deadline reached") as err:
        client.chat([{"role": "user", "content": "drip"}])
    elapsed = time.monotonic() - start
    assert elapsed < 2 + 3, f"deadline 2 s, took {elapsed:.1f}s"  # correctness bound, not a speed test
    assert server.base_url in str(err.value) and len(client.cache or []) == 0


def test_attempt_timeout_and_deadline_across_retries(server: TeacherServer, tmp_path: Path) -> None:
    """``timeout_s`` bounds one attempt (then retried); ``deadline_s`` bounds retries and Retry-After waits."""
    server.always = drip_body(server)
    client = _client(server, tmp_path, max_retries=1, timeout_s=1, deadline_s=30)
    start = time.monotonic()
    with pytest.raises(TeacherError, match="gave up after 2 attempts; last error attempt deadline reached"):
        client.chat([{"role": "user", "content": "drip"}])
    assert time.monotonic() - start < 2 * 1 + 3 and server.count == 2
    server.always = raw_reply(503, {"error": "busy"}, {"Retry-After": "1"})
    client = _client(server, tmp_path, max_retries=50, deadline_s=2.5)
    start = time.monotonic()
    with pytest.raises(TeacherError, match="deadline of 2.5s exceeded after [23] attempt.*HTTP 503"):
        client.chat([{"role": "user", "content": "busy"}])
    assert time.monotonic() - start < 2.5 + 3 and server.count <= 2 + 3


def test_response_size_cap(server: TeacherServer, tmp_path: Path) -> None:
    """Bodies over max_response_bytes (declared or streamed without a length) fail once and are not cached."""
    client = _client(server, tmp_path, max_retries=3)
    assert client.max_response_bytes == 4 * 1024 * 1024
    server.always = raw_reply(200, completion_body("x" * (5 * 1024 * 1024)))
    with pytest.raises(TeacherError, match="response of 52\\d{5} bytes \\(Content-Length\\) exceeds "
                                           "max_response_bytes=4194304"):
        client.chat([{"role": "user", "content": "big"}])
    assert server.count == 1 and len(client.cache or []) == 0
    server.always = raw_reply(200, completion_body("y" * 300_000), content_length=False)
    small = _client(server, tmp_path, max_retries=3, max_response_bytes=100_000)
    with pytest.raises(TeacherError, match="exceeds max_response_bytes=100000 \\(read \\d+ bytes so far\\)"):
        small.chat([{"role": "user", "content": "streamed"}])
    assert server.count == 2 and len(small.cache or []) == 0
    server.always = raw_reply(200, completion_body("z" * 50_000), content_length=False)
    assert small.chat([{"role": "user", "content": "fits"}]).text == "z" * 50_000
    assert len(small.cache or []) == 1


def test_incomplete_answers_are_asked_again(server: TeacherServer, tmp_path: Path) -> None:
    """An empty/truncated answer is an error now and a fresh request next time; a complete one is cached."""
    messages = [{"role": "user", "content": "write code"}]
    server.script = [raw_reply(200, completion_body("", "length"))]
    client = _client(server, tmp_path)
    with pytest.raises(IncompleteAnswerError):
        client.chat(messages)
    assert len(client.cache or []) == 0
    answer = client.chat(messages)  # asked again, now complete
    assert not answer.cached and server.count == 2 and len(client.cache or []) == 1
    assert client.chat(messages).cached and server.count == 2
    # An incomplete answer cached by an older version is not served: the prompt is asked again.
    other = [{"role": "user", "content": "other"}]
    key = cache_key("tiny-coder", other, {"temperature": 0.0})
    assert client.cache is not None
    client.cache.put(key, "tiny-coder", {}, completion_body("", "length"))
    again = client.chat(other)
    assert not again.cached and again.text and server.count == 3 and client.stats["cache_invalid"] == 1
