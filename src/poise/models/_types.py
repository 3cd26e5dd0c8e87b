"""Typed requests and responses shared by every chat-model backend."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: The most tokens one answer may ask for (``max_tokens``): --max-tokens, a sweep file's
#: options.max_tokens and a built engine's configuration share it.
MAX_TOKENS = 32_768


class ChatMessage(BaseModel):
    """One message of a chat conversation."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class GenerateConfig(BaseModel):
    """Sampling parameters: everything here changes the output, so all of it is in the cache key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(512, ge=1, le=MAX_TOKENS)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    top_logprobs: int = Field(0, ge=0, le=20)
    # a JSON schema (as JSON text) the reply must follow: structured outputs on OpenAI-compatible
    # endpoints, a grammar on llama.cpp
    json_schema: str | None = None


class TopLogprob(BaseModel):
    model_config = ConfigDict(frozen=True)

    token: str
    logprob: float


class TokenLogprob(BaseModel):
    """The log-probability of one generated token, with the best alternatives if asked for."""

    model_config = ConfigDict(frozen=True)

    token: str
    logprob: float
    top: tuple[TopLogprob, ...] = ()


class Usage(BaseModel):
    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ChatResponse(BaseModel):
    """What a model returned for one request, with what it cost."""

    model_config = ConfigDict(frozen=True)

    text: str
    model: str
    finish_reason: str | None = None
    usage: Usage = Usage()
    latency_s: float = 0.0
    logprobs: tuple[TokenLogprob, ...] | None = None
    cached: bool = False
    cache_key: str | None = None
