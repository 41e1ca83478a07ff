"""`scratchllm serve`: one run behind an OpenAI-compatible HTTP API, with a web chat page at /.

    scratchllm serve --run runs/sft                         # http://127.0.0.1:8000
    scratchllm serve --run runs/sft --host 0.0.0.0 --port 8080 --api-key "$(openssl rand -hex 16)"
    SCRATCHLLM_API_KEY=secret scratchllm serve --run runs/base --max-batch 32 --max-queue 256
    scratchllm serve --run runs/big --draft-run runs/small --draft-k 4    # speculative for a lone request
"""

from __future__ import annotations

import os

from scratchllm.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="serve a run over an OpenAI-compatible HTTP API and a web chat page")
    p.add_argument("--run", required=True, help="run directory (from training, fine-tuning or import)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--api-key", default=None,
                   help="require 'Authorization: Bearer KEY' (default: env SCRATCHLLM_API_KEY, else none)")
    p.add_argument("--max-batch", type=int, default=8, help="sequences decoded together (default 8)")
    p.add_argument("--max-queue", type=int, default=64, help="requests that may wait; past it 429 (default 64)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds a request may run (default 300)")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20, help="largest request body (default 1 MiB)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser pages from this origin (repeatable; default: CORS off)")
    p.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="weights' dtype (default auto: bfloat16 on CUDA, float32 elsewhere)")
    p.add_argument("--draft-run", default=None, metavar="D",
                   help="a smaller run with the same tokenizer: a request decoding alone is decoded speculatively")
    p.add_argument("--draft-k", type=int, default=4, help="draft tokens proposed per round (default 4)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    # CLI speed: uvicorn, FastAPI and torch load only when a server starts.
    import uvicorn

    from scratchllm.serve.app import build_app, load_served
    from scratchllm.utils.device import resolve_device

    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port} is not a TCP port; give one in 1..65535")
    if args.max_batch < 1 or args.max_queue < 0 or args.timeout <= 0 or args.max_body_bytes < 1:
        raise UserError("--max-batch, --timeout and --max-body-bytes must be positive and --max-queue at least 0")
    if args.draft_k < 1:
        raise UserError(f"--draft-k {args.draft_k} must be at least 1 (draft tokens per round)")
    api_key = args.api_key or os.environ.get("SCRATCHLLM_API_KEY") or None
    served = load_served(args.run, str(resolve_device(args.device)), args.dtype, args.max_batch, args.max_queue,
                         args.timeout, draft_run=args.draft_run, draft_k=args.draft_k)
    app = build_app(served, api_key=api_key, max_body_bytes=args.max_body_bytes, cors_origins=args.cors_origin)
    url = f"http://{args.host}:{args.port}"
    auth = ' -H "Authorization: Bearer $SCRATCHLLM_API_KEY"' if api_key else ""
    mode = "chat" if served.chat else "completions (a base run: no chat)"
    print(f"serving '{args.run}' ({mode}) at {url}  (chat page: {url}/, API: {url}/v1, docs: {url}/docs)")
    body = ('{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 32}' if served.chat
            else '{"prompt": "Once upon a time", "max_tokens": 32}')
    route = "chat/completions" if served.chat else "completions"
    print(f"try: curl {url}/v1/{route} -H 'Content-Type: application/json'{auth} -d '{body}'", flush=True)
    # SIGTERM / Ctrl-C: uvicorn stops accepting, lets running requests finish for up to 10 s, then
    # closes them (their streams cancel their slots) and the lifespan stops the scheduler.
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=10)
    return 0
