"""The teacher LLM as a Dagster resource (any OpenAI-compatible chat-completions endpoint).

Why a resource: the same synthesis assets run against a local vLLM/llama.cpp/Ollama server in
development and a hosted model in production; only this config changes. The API key is read from
the environment variable named by ``api_key_env`` (never stored in run config).
"""

from __future__ import annotations

import os

from dagster import ConfigurableResource

from opencoder_assets.core.teacher import DEFAULT_MAX_RESPONSE_BYTES, TeacherClient
from resources.storage import DEFAULT_DATA_ROOT


class TeacherLLM(ConfigurableResource):
    """Connection, throttling and caching settings of the teacher model.

    ``base_url`` includes the API prefix, e.g. ``http://127.0.0.1:8000/v1`` (vLLM),
    ``http://127.0.0.1:11434/v1`` (Ollama), ``http://127.0.0.1:8080/v1`` (llama.cpp server).
    The bounds (``deadline_s``, ``max_response_bytes``, ``max_teacher_error_share``) are described in
    docs/security.md, "Teacher client".
    """

    base_url: str = os.environ.get("OPENCODER_TEACHER_URL", "http://127.0.0.1:8000/v1")
    model: str = os.environ.get("OPENCODER_TEACHER_MODEL", "Qwen/Qwen2.5-Coder-7B-Instruct")
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 120.0  # one attempt, wall clock
    deadline_s: float = 300.0  # one prompt, wall clock, across attempts, retries and backoff
    max_retries: int = 5
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES  # larger answers are an error, never cached
    max_teacher_error_share: float = 0.5  # an asset with more failed items fails instead of publishing
    requests_per_minute: float = 600.0
    cache_path: str = os.path.join(DEFAULT_DATA_ROOT, "teacher_cache.sqlite")
    temperature: float = 0.0
    max_tokens: int = 2048
    prompts_dir: str | None = None
    concurrency: int = 4

    def client(self) -> TeacherClient:
        """A fresh client (threads may share it; each run opens its own cache connection)."""
        return TeacherClient(
            self.base_url,
            self.model,
            api_key=os.environ.get(self.api_key_env) if self.api_key_env else None,
            timeout_s=self.timeout_s,
            deadline_s=self.deadline_s,
            max_retries=self.max_retries,
            max_response_bytes=self.max_response_bytes,
            max_error_share=self.max_teacher_error_share,
            requests_per_minute=self.requests_per_minute,
            cache_path=self.cache_path,
            default_params={"temperature": self.temperature, "max_tokens": self.max_tokens},
            prompts_dir=self.prompts_dir,
        )
