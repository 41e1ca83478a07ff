"""Request bodies of the OpenAI-compatible API as pydantic models: what a field may hold, checked at the door.

Each field follows the OpenAI API's name and meaning; `top_k` is the one extension (vLLM has
it too). A body that breaks a rule is answered 400 with OpenAI's error shape by `app.py`,
before any model work. Responses are plain dicts built in `openai.py`. It knows shapes, not
models.

>>> CompletionRequest(model="m", prompt=[[1, 2], [3]], max_tokens=4).prompt
[[1, 2], [3]]
>>> ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}]).messages[0].text()
'hi'
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field

# Evaluation clients send token ids; people send text; either may come as a batch.
Prompt = Union[str, list[str], list[int], list[list[int]]]
Stop = Union[str, list[str], None]


class _Body(BaseModel):
    # Unknown fields (user, presence_penalty, ...) are accepted and ignored, as OpenAI's clients send them.
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    # Bounded so it fits the scheduler's int64 row tensor (a larger k is "off" for any vocabulary anyway).
    top_k: int = Field(0, ge=0, le=2**31 - 1, description="extension: sample among the k most likely tokens; 0 = off")
    n: int = Field(1, ge=1, le=16)
    stop: Stop = None
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    stream: bool = False

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class CompletionRequest(_Body):
    prompt: Prompt = Field(..., description="a string, a list of strings, a list of token ids, or a list of such lists")
    max_tokens: int = Field(16, ge=0)
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool = False


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: Union[str, list[dict]]

    def text(self) -> str:
        """The message's text; content parts of type "text" are joined (other parts cannot be read here)."""
        if isinstance(self.content, str):
            return self.content
        return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")


class ChatRequest(_Body):
    messages: list[ChatMessage] = Field(..., min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)

    def budget(self, default: int) -> int:
        return self.max_completion_tokens or self.max_tokens or default


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    prompt: str


class DetokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    tokens: list[int]
