"""The OpenAI-compatible routes: /v1/models, /v1/completions, /v1/chat/completions, /tokenize, /detokenize.

Request bodies are `schemas.py`'s models; responses are the OpenAI API's JSON shapes, so the
official `openai` client and lm-evaluation-harness's `local-completions` work unchanged.
Generation goes through the served model's scheduler (`engine_bridge.py`); log-probabilities
are a plain forward over prompt + completion, the distribution of the model itself (not of
the sampling filters), as vLLM reports them. Errors are raised as UserError (→ 400) or
QueueFull (→ 429) and shaped by `app.py`.

>>> [r.path for r in router.routes][:3]
['/v1/models', '/v1/completions', '/v1/chat/completions']
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from scratchllm.errors import UserError
from scratchllm.inference.text import encode_prompt
from scratchllm.serve.chat_format import chat_logprobs, chat_prompt, chat_stop_ids, logprob_content
from scratchllm.serve.engine_bridge import Piece, PieceStream, SamplingParams, ServedModel
from scratchllm.serve.schemas import ChatRequest, CompletionRequest, DetokenizeRequest, TokenizeRequest
from scratchllm.tokenizer.special import ENDOFTEXT

router = APIRouter()


def _served(request: Request) -> ServedModel:
    return request.app.state.served


def _sampling(body, index: int) -> SamplingParams:
    # n choices of one seeded request must differ from each other, yet repeat run to run.
    seed = None if body.seed is None else body.seed + index
    return SamplingParams(body.temperature, body.top_k or None, body.top_p, seed)


def _prompt_ids(served: ServedModel, prompt) -> list[list[int]]:
    """The prompt field's four forms (string, strings, ids, lists of ids) as lists of ids."""
    if isinstance(prompt, str):
        prompts = [prompt]
    elif prompt and all(isinstance(x, int) for x in prompt):
        prompts = [prompt]
    else:
        prompts = list(prompt)
    if not prompts:
        raise UserError("'prompt' is an empty list; give a string, a list of strings or a list of token ids")
    out = []
    for p in prompts:
        ids = encode_prompt(served.tokenizer, p) if isinstance(p, str) else list(p)
        bad = [i for i in ids if not 0 <= i < served.tokenizer.vocab_size]
        if bad:
            raise UserError(f"token id {bad[0]} is outside the vocabulary (0..{served.tokenizer.vocab_size - 1}); "
                            "send ids from this model's tokenizer (POST /tokenize)")
        served.check_prompt(ids)
        out.append(ids)
    return out


def _submit_all(served: ServedModel, jobs: list[tuple], logprobs: int | None = None) -> list[PieceStream]:
    """Submit every (ids, max_tokens, sampling, stops, stop_ids); if one is refused, cancel those already in."""
    streams: list[PieceStream] = []
    try:
        for ids, max_tokens, sampling, stops, stop_ids in jobs:
            streams.append(served.submit(ids, max_tokens, sampling, stops, stop_ids, logprobs))
    except Exception:
        for s in streams:
            s.cancel()
        raise
    return streams


async def _collect(stream: PieceStream, request: Request) -> Piece:
    """The whole continuation as one Piece; a client that hangs up meanwhile cancels it."""
    async def watch():
        while not await request.is_disconnected():
            await asyncio.sleep(0.05)
        stream.cancel()
    watcher = asyncio.create_task(watch())
    text, last = [], Piece("")
    try:
        async for piece in stream:
            text.append(piece.text)
            last = piece
    finally:
        watcher.cancel()
    return Piece("".join(text), last.tokens, last.finish_reason or "length", last.first_token_s, last.stop_id)


async def _merged(streams: list[PieceStream]) -> AsyncIterator[tuple[int, Piece]]:
    """(choice index, piece) of all streams as they come; leaving early cancels them all."""
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(i: int, stream: PieceStream):
        try:
            async for piece in stream:
                await queue.put((i, piece))
        finally:
            await queue.put((i, None))
    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    try:
        for _ in range(len(streams)):
            while (item := await queue.get())[1] is not None:
                yield item
    finally:
        for t in tasks:
            t.cancel()
        for s in streams:
            s.cancel()


def _sse(events: AsyncIterator[dict]) -> StreamingResponse:
    async def body():
        async for event in events:
            yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
        yield "data: [DONE]\n\n"
    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def _record(request: Request, pieces: list[Piece], prompt_tokens: int) -> None:
    metrics = request.app.state.metrics
    metrics.prompt_tokens.inc(prompt_tokens)
    metrics.completion_tokens.inc(sum(len(p.tokens) for p in pieces))
    for p in pieces:
        if p.first_token_s is not None:
            metrics.ttft.observe(p.first_token_s)


@router.get("/v1/models")
async def list_models(request: Request) -> dict:
    served = _served(request)
    return {"object": "list", "data": [{"id": served.name, "object": "model", "created": served.created,
                                        "owned_by": "scratchllm", "max_model_len": served.context}]}


def _completion_logprobs(served: ServedModel, prompt: list[int], tokens: list[int], top: int, echo: bool) -> dict:
    """OpenAI's completions `logprobs` object over the returned tokens (the prompt's too with echo).

    `tokens` ends with the stop id when one ended the completion: its text is not in the reply,
    but its log-prob is (as OpenAI and vLLM report it), so that with `max_tokens` 1 the entries
    are always prompt + 1, the count lm-evaluation-harness cuts its last entry from.
    """
    full = prompt + tokens
    scored = full[: served.context]         # a forward sees at most the context; the rest stays unscored
    values, best = served.token_logprobs(scored, top)
    values += [None] * (len(full) - len(scored))
    best += [[]] * (len(full) - len(best)) if top else []
    start = 0 if echo else len(prompt)
    tok = served.tokenizer
    strings = [tok.decode([t]) for t in full[start:]]
    offsets, at = [], 0
    for s in strings:
        offsets.append(at)
        at += len(s)
    tops = [({tok.decode([i]): v for i, v in b} if b else None) for b in best[start:]] if top else None
    return {"tokens": strings, "token_logprobs": values[start:], "top_logprobs": tops, "text_offset": offsets}


@router.post("/v1/completions")
async def completions(body: CompletionRequest, request: Request):
    served = _served(request)
    prompts = _prompt_ids(served, body.prompt)
    jobs = [(ids, body.max_tokens, _sampling(body, j), body.stops(), None) for ids in prompts for j in range(body.n)]
    rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
    shell = {"id": rid, "object": "text_completion", "created": created, "model": served.name}
    prompt_tokens = sum(len(p) for p in prompts)
    if body.max_tokens == 0:        # nothing to generate: the prompt alone (scored, with echo + logprobs)
        pieces = [Piece("", [], "length") for _ in jobs]
    else:
        # A stream's log-probs come with its tokens from the decode step; a whole reply's from one forward.
        streams = _submit_all(served, jobs, body.logprobs if body.stream else None)
        if body.stream:
            return _sse(_completion_chunks(request, streams, shell, prompts, body))
        pieces = list(await asyncio.gather(*(_collect(s, request) for s in streams)))
    _record(request, pieces, prompt_tokens)
    choices = []
    for i, (piece, (ids, *_)) in enumerate(zip(pieces, jobs)):
        text = (served.tokenizer.decode(ids) if body.echo else "") + piece.text
        logprobs = None
        if body.logprobs is not None:
            scored = piece.tokens + ([piece.stop_id] if piece.stop_id is not None else [])
            logprobs = await asyncio.to_thread(_completion_logprobs, served, ids, scored, body.logprobs, body.echo)
        choices.append({"index": i, "text": text, "logprobs": logprobs, "finish_reason": piece.finish_reason})
    return {**shell, "choices": choices, "usage": _usage(prompt_tokens, sum(len(p.tokens) for p in pieces))}


def _chunk_logprobs(tok, scored: list[tuple], at: int, top: int) -> tuple[dict, int]:
    """A stream chunk's completions `logprobs` for its (token, log-prob, best) triples, whose text starts at
    offset `at` of the choice's text; and the offset after them."""
    strings = [tok.decode([t]) for t, _, _ in scored]
    offsets = []
    for piece in strings:
        offsets.append(at)
        at += len(piece)
    tops = [{tok.decode([i]): v for i, v in best} for _, _, best in scored] if top else None
    return {"tokens": strings, "token_logprobs": [v for _, v, _ in scored], "top_logprobs": tops,
            "text_offset": offsets}, at


async def _completion_chunks(request: Request, streams, shell: dict, prompts, body) -> AsyncIterator[dict]:
    served, finals = _served(request), {}
    offsets = [0] * len(streams)          # where each choice's next token's text starts
    for i, stream in enumerate(streams):
        if body.echo:
            ids = stream.handle.request.prompt
            logprobs = None
            if body.logprobs is not None:
                logprobs = await asyncio.to_thread(_completion_logprobs, served, ids, [], body.logprobs, True)
                offsets[i] = sum(len(t) for t in logprobs["tokens"])
            yield {**shell, "choices": [{"index": i, "text": served.tokenizer.decode(ids), "logprobs": logprobs,
                                         "finish_reason": None}]}
    async for i, piece in _merged(streams):
        if piece.text or piece.finish_reason or piece.logprobs:
            logprobs = None
            if body.logprobs is not None:
                logprobs, offsets[i] = _chunk_logprobs(served.tokenizer, piece.logprobs, offsets[i], body.logprobs)
            yield {**shell, "choices": [{"index": i, "text": piece.text, "logprobs": logprobs,
                                         "finish_reason": piece.finish_reason}]}
        if piece.finish_reason:
            finals[i] = piece
    _record(request, list(finals.values()), sum(len(p) for p in prompts))


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatRequest, request: Request):
    served = _served(request)
    ids = chat_prompt(served, [{"role": m.role, "content": m.text()} for m in body.messages])
    budget = min(body.budget(served.context), served.context)
    jobs = [(ids, budget, _sampling(body, j), body.stops(), chat_stop_ids(served)) for j in range(body.n)]
    top = (body.top_logprobs or 0) if body.logprobs else None
    streams = _submit_all(served, jobs, top if body.stream else None)
    shell = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": served.name}
    if body.stream:
        return _sse(_chat_chunks(request, streams, {**shell, "object": "chat.completion.chunk"}, len(ids),
                                 top is not None))
    pieces = list(await asyncio.gather(*(_collect(s, request) for s in streams)))
    _record(request, pieces, len(ids))
    choices = []
    for i, piece in enumerate(pieces):
        logprobs = None
        if body.logprobs:
            logprobs = await asyncio.to_thread(chat_logprobs, served, ids, piece.tokens, body.top_logprobs or 0)
        choices.append({"index": i, "message": {"role": "assistant", "content": piece.text},
                        "logprobs": logprobs, "finish_reason": piece.finish_reason})
    return {**shell, "object": "chat.completion", "choices": choices,
            "usage": _usage(len(ids), sum(len(p.tokens) for p in pieces))}


async def _chat_chunks(request: Request, streams, shell: dict, prompt_tokens: int,
                       logprobs: bool) -> AsyncIterator[dict]:
    finals, tok = {}, _served(request).tokenizer
    for i in range(len(streams)):
        yield {**shell, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                     "logprobs": None, "finish_reason": None}]}
    async for i, piece in _merged(streams):
        # The reply's tokens only: the stop id that ends it is not part of the message.
        scored = piece.logprobs[:-1] if piece.stop_id is not None else piece.logprobs
        if piece.text or scored:
            entries = {"content": logprob_content(tok, scored)} if logprobs else None
            yield {**shell, "choices": [{"index": i, "delta": {"content": piece.text}, "logprobs": entries,
                                         "finish_reason": None}]}
        if piece.finish_reason:
            finals[i] = piece
            yield {**shell, "choices": [{"index": i, "delta": {}, "logprobs": None,
                                         "finish_reason": piece.finish_reason}]}
    _record(request, list(finals.values()), prompt_tokens * len(streams))


@router.get("/tokenizer_info")
async def tokenizer_info(request: Request) -> dict:
    """What a client needs to tokenize as the server does (vLLM's route; lm-eval's `tokenizer_backend=remote`).

    No bos_token: documents are conditioned on end-of-text, so an empty context starts from it,
    as `scratchllm eval` does it.
    """
    served = _served(request)
    tok = served.tokenizer
    return {"tokenizer_class": type(tok).__name__, "eos_token": ENDOFTEXT if ENDOFTEXT in tok.special_tokens else None,
            "bos_token": None, "pad_token": None, "chat_template": None, "model_max_length": served.context,
            "vocab_size": tok.vocab_size}


@router.post("/tokenize")
async def tokenize(body: TokenizeRequest, request: Request) -> dict:
    served = _served(request)
    ids = encode_prompt(served.tokenizer, body.prompt) if body.prompt else []
    return {"tokens": ids, "count": len(ids), "max_model_len": served.context}


@router.post("/detokenize")
async def detokenize(body: DetokenizeRequest, request: Request) -> dict:
    served = _served(request)
    bad = [i for i in body.tokens if not 0 <= i < served.tokenizer.vocab_size]
    if bad:
        raise UserError(f"token id {bad[0]} is outside the vocabulary (0..{served.tokenizer.vocab_size - 1}); "
                        "send ids from this model's tokenizer")
    return {"prompt": served.tokenizer.decode(body.tokens)}
