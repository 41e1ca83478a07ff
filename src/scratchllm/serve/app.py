"""The HTTP server: `create_app(run_dir, ...)` builds a FastAPI app that serves one run.

It loads the run, starts its continuous-batching scheduler, and mounts the OpenAI routes
(`openai.py`), the health checks (/health alive, /ready loaded and warmed up, /metrics
Prometheus), and the chat page at / (`static/`). Around them, the door rules of a server that
faces the network: an optional API key (401), a body size limit (413), OpenAI's error shape for
every 4xx (a bad request is never a 5xx), 429 with Retry-After when the queue is full, and no
CORS unless origins are named. Running it (uvicorn, signals) is `cli.py`'s job.

>>> from fastapi.testclient import TestClient
>>> from scratchllm.serve.engine_bridge import ServedModel
>>> from scratchllm.model.config import ModelConfig
>>> from scratchllm.model.transformer import Transformer
>>> from scratchllm.tokenizer.bpe import Tokenizer
>>> tok = Tokenizer({bytes([i]): i for i in range(256)}, "gpt2", {"<|endoftext|>": 256})
>>> model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=257, block_size=32)).eval()
>>> with TestClient(build_app(ServedModel(model, tok, "tiny"))) as client:
...     client.post("/v1/completions", json={"prompt": "ab", "max_tokens": 3, "temperature": 0}).json()["usage"]
{'prompt_tokens': 2, 'completion_tokens': 3, 'total_tokens': 5}
"""

from __future__ import annotations

import asyncio
import hmac
import time
from contextlib import asynccontextmanager
from types import SimpleNamespace
from pathlib import Path

import torch
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from scratchllm.errors import UserError
from scratchllm.inference.scheduler import QueueFull
from scratchllm.serve.engine_bridge import ServedModel
from scratchllm.serve.metrics import ServeMetrics
from scratchllm.serve.openai import router as openai_router
from scratchllm.train.checkpoint import load_run
from scratchllm.train.finetune import is_chat_run
from scratchllm.viz.playground import playground_router

STATIC = Path(__file__).parent / "static"
OPEN_PATHS = ("/health", "/ready", "/metrics", "/", "/page-info")   # no API key needed


def error_body(message: str, type_: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict:
    """OpenAI's error shape."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _error(status: int, message: str, **kw) -> JSONResponse:
    headers = kw.pop("headers", None)
    return JSONResponse(error_body(message, **kw), status_code=status, headers=headers)


class DoorMiddleware:
    """Plain ASGI (so streams pass untouched): API key, body size limit, request counts and latency."""

    def __init__(self, app, api_key: str | None, max_body_bytes: int, metrics: ServeMetrics):
        self.app, self.api_key, self.max_body, self.metrics = app, api_key, max_body_bytes, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, started, status = scope["path"], time.perf_counter(), [500]

        async def send_counted(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            if self.api_key and not self._open(path) and not self._authorized(scope):
                return await _error(401, "missing or wrong API key; send the header 'Authorization: Bearer KEY'",
                                    type_="authentication_error", code="invalid_api_key")(scope, receive, send_counted)
            if scope["method"] in ("POST", "PUT", "PATCH"):
                body = await self._read_body(receive)
                if body is None:
                    return await _error(413, f"the request body is larger than {self.max_body} bytes; send a "
                                             "smaller request", code="request_too_large")(scope, receive, send_counted)
                receive = self._replay(body, receive)
            await self.app(scope, receive, send_counted)
        finally:
            route = path if path.startswith(("/v1/", "/tokenize", "/detokenize")) else "other"
            self.metrics.requests.labels(route=route, status=str(status[0])).inc()
            self.metrics.latency.labels(route=route).observe(time.perf_counter() - started)

    @staticmethod
    def _open(path: str) -> bool:
        return path in OPEN_PATHS or path.startswith("/static/")

    def _authorized(self, scope) -> bool:
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        return hmac.compare_digest(header.encode(), f"Bearer {self.api_key}".encode())

    async def _read_body(self, receive) -> bytes | None:
        """The whole body, or None once it passes the limit (read no further: the rest is never buffered)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    @staticmethod
    def _replay(body: bytes, receive):
        sent = False

        async def replayed():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()      # later: the client's disconnect, which streaming responses watch for
        return replayed


def _param(loc: tuple) -> str | None:
    names = [str(x) for x in loc if x != "body"]
    return ".".join(names) or None


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid request", "loc": ()}
        param = _param(tuple(first.get("loc", ())))
        where = f"'{param}': " if param else ""
        return _error(400, f"{where}{first['msg']}; see the OpenAI API reference for this field", param=param)

    @app.exception_handler(QueueFull)
    async def queue_full(request, exc: QueueFull):
        return _error(429, str(exc), type_="rate_limit_error", code="queue_full", headers={"Retry-After": "1"})

    @app.exception_handler(UserError)
    async def user_error(request, exc: UserError):
        return _error(400, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))


def build_app(served: ServedModel, api_key: str | None = None, max_body_bytes: int = 1 << 20,
              cors_origins: list[str] = (), extra_routers: dict = None) -> FastAPI:
    """The app around an already loaded `served` model; `extra_routers` maps a prefix to an APIRouter.

    The playground (`viz/playground.py`) over the served model is mounted at /playground.
    """
    @asynccontextmanager
    async def lifespan(app):
        served.start()
        warm = asyncio.create_task(asyncio.to_thread(served.warm_up))
        try:
            yield
        finally:
            served.stop()      # uvicorn has let in-flight requests finish (or cut them) before this
            warm.cancel()

    app = FastAPI(title="scratchllm", lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.served = served
    app.state.metrics = metrics = ServeMetrics(served.scheduler.pending, served.n_slots,
                                               served.scheduler.speculative_stats)
    _add_error_handlers(app)
    app.include_router(openai_router)
    # The playground reads the served model directly (forward passes for attention and the lens),
    # beside the scheduler's decoding; pages of other stages mount the same way.
    playground = SimpleNamespace(model=served.model, tokenizer=served.tokenizer, run_dir=served.name)
    routers = {"/playground": playground_router({served.name: playground}), **(extra_routers or {})}
    for prefix, router in routers.items():
        app.include_router(router, prefix=prefix)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready():
        if not served.ready:
            return _error(503, "the model is still warming up; retry in a moment", type_="server_error",
                          code="not_ready", headers={"Retry-After": "1"})
        return {"status": "ready", "model": served.name}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/page-info", include_in_schema=False)
    async def page_info() -> dict:
        return {"model": served.name, "chat": served.chat, "context": served.context, "auth": bool(api_key)}

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if cors_origins:          # off by default: a browser page elsewhere must not reach the model unasked
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["*"],
                           allow_headers=["*"])
    app.add_middleware(DoorMiddleware, api_key=api_key, max_body_bytes=max_body_bytes, metrics=metrics)
    return app


def _same_tokenizer(a, b) -> bool:
    return (a.vocab_size == b.vocab_size and a.special_tokens == b.special_tokens
            and all(a.decode_bytes([i]) == b.decode_bytes([i]) for i in range(a.vocab_size)))


def _load_draft(draft_run: str | Path, run, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """The draft model of `draft_run`; UserError unless it speaks the served run's tokenizer."""
    draft = load_run(draft_run, device=device)
    if draft.tokenizer is None or not _same_tokenizer(draft.tokenizer, run.tokenizer) or \
            draft.model.config.vocab_size != run.model.config.vocab_size:
        raise UserError(f"the draft run '{draft_run}' has another tokenizer or vocabulary than the served run, so "
                        "its tokens mean other things; use a draft trained with the served run's tokenizer.json")
    return draft.model.to(dtype).eval()


def load_served(run_dir: str | Path, device: str = "cpu", dtype: str = "auto", n_slots: int = 8,
                max_queue: int = 64, timeout_s: float = 300.0, chat: bool | None = None,
                draft_run: str | Path | None = None, draft_k: int = 4) -> ServedModel:
    """The run of `run_dir` ready to serve; `chat` defaults to whether it was fine-tuned on conversations.
    `draft_run` (same tokenizer, smaller) decodes a request that runs alone speculatively, `draft_k` a round."""
    run = load_run(run_dir, device=device)
    if run.tokenizer is None:
        raise UserError(f"run '{run_dir}' has no tokenizer.json, so text cannot be encoded; copy the tokenizer "
                        "the model was trained with into the run directory")
    if dtype == "auto":
        dtype = "bfloat16" if torch.device(device).type == "cuda" else "float32"
    run.model.to(getattr(torch, dtype)).eval()
    draft = None if draft_run is None else _load_draft(draft_run, run, device, getattr(torch, dtype))
    return ServedModel(run.model, run.tokenizer, name=Path(run_dir).resolve().name, n_slots=n_slots,
                       max_queue=max_queue, chat=is_chat_run(run_dir) if chat is None else chat, timeout_s=timeout_s,
                       draft=draft, draft_k=draft_k)


def create_app(run_dir: str | Path, *, device: str = "cpu", dtype: str = "auto", max_batch: int = 8,
               max_queue: int = 64, timeout_s: float = 300.0, api_key: str | None = None,
               max_body_bytes: int = 1 << 20, cors_origins: list[str] = (), chat: bool | None = None,
               extra_routers: dict = None, draft_run: str | Path | None = None, draft_k: int = 4) -> FastAPI:
    """A FastAPI app serving the run in `run_dir` (for embedding and tests; `scratchllm serve` runs one)."""
    served = load_served(run_dir, device, dtype, max_batch, max_queue, timeout_s, chat, draft_run, draft_k)
    return build_app(served, api_key, max_body_bytes, cors_origins, extra_routers)
