"""`scratchllm viz KIND`: pictures of what a trained run does with a prompt, and the live playground.

    scratchllm viz tokens      --run runs/tiny --prompt "Hello world" --out tokens.png     (or .html)
    scratchllm viz attention   --run runs/tiny --prompt "Hello world" --out att.png --layer 1 --head 0
    scratchllm viz attention   --run runs/tiny --prompt "Once" --animate --out att.gif     (or .html)
    scratchllm viz logit-lens  --run runs/tiny --prompt "Hello world" --out lens.png
    scratchllm viz saliency    --run runs/tiny --prompt "Hello world" --target "," --out sal.png
    scratchllm viz inference   --run runs/tiny --prompt "Hello" --out steps.html
    scratchllm viz embeddings  --run runs/tiny --tokens " the" " and" --out emb.png
    scratchllm viz bigram      --run runs/charlm-bigram --out bigram.png
    scratchllm viz playground  --run runs/base [--run2 runs/sft] [--port 8000]
"""

from __future__ import annotations


def _common(p, prompt: bool = True) -> None:
    p.add_argument("--run", required=True, help="run directory (from training, speedrun or import)")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: the newest)")
    if prompt:
        p.add_argument("--prompt", required=True, help="the text the model reads")
    p.add_argument("--out", required=True, help="the picture to write; its suffix picks the format")


def register(subparsers) -> None:
    v = subparsers.add_parser("viz", help="pictures of a trained run: tokens, attention, logit lens, saliency ...")
    sub = v.add_subparsers(dest="kind", metavar="KIND", required=True)
    t = sub.add_parser("tokens", help="the prompt coloured by token, ids and bytes per token (.png/.html)")
    _common(t)
    t.set_defaults(func=_tokens)
    a = sub.add_parser("attention", help="layer x head grid of attention maps, one enlarged (.png/.html; "
                                         "--animate: .gif/.html)")
    _common(a)
    a.add_argument("--layer", type=int, default=0, help="layer of the enlarged (or animated) head (default 0)")
    a.add_argument("--head", type=int, default=0, help="the head (default 0)")
    a.add_argument("--animate", action="store_true", help="one frame a token while the model generates")
    a.add_argument("--max-new-tokens", type=int, default=8, help="with --animate: tokens to generate (default 8)")
    a.add_argument("--seed", type=int, default=0, help="with --animate: sampling seed (default 0)")
    a.set_defaults(func=_attention)
    lens = sub.add_parser("logit-lens", help="top next token of every layer and position (.png/.html)")
    _common(lens)
    lens.set_defaults(func=_lens)
    s = sub.add_parser("saliency", help="gradient x input and integrated gradients of a next-token logit")
    _common(s)
    s.add_argument("--target", default=None, help="the next token to explain (one token's text; "
                                                  "default: the model's own top prediction)")
    s.add_argument("--steps", type=int, default=32, help="integrated-gradients path steps (default 32)")
    s.set_defaults(func=_saliency)
    i = sub.add_parser("inference", help="a step-by-step HTML page of one generation")
    _common(i)
    i.add_argument("--max-new-tokens", type=int, default=5, help="steps to show (default 5)")
    i.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (default 0.8)")
    i.add_argument("--top-k", type=int, default=50, help="0 = off (default 50)")
    i.add_argument("--top-p", type=float, default=1.0, help="1 = off (default 1.0)")
    i.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    i.set_defaults(func=_inference)
    e = sub.add_parser("embeddings", help="token embeddings by PCA, nearest neighbours of chosen tokens")
    _common(e, prompt=False)
    e.add_argument("--tokens", nargs="*", default=[], metavar="TEXT", help="tokens to label (each one token's text)")
    e.add_argument("-k", type=int, default=5, help="neighbours a token (default 5)")
    e.set_defaults(func=_embeddings)
    b = sub.add_parser("bigram", help="the counting bigram table of a charlm bigram run as a heat map (.png)")
    b.add_argument("--run", required=True, help="run directory of `scratchllm charlm train --model bigram`")
    b.add_argument("--out", required=True, help="the .png to write")
    b.set_defaults(func=_bigram)
    g = sub.add_parser("playground", help="serve the live playground page for one run (or two side by side)")
    g.add_argument("--run", required=True, help="run directory")
    g.add_argument("--run2", default=None, help="a second run shown beside it (e.g. the chat model of a base)")
    g.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    g.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    g.set_defaults(func=_playground)


def _tokens(args) -> int:
    from scratchllm.viz.commands import viz_tokens  # CLI speed: torch loads only when a command runs
    viz_tokens(args.run, args.prompt, args.out, args.step)
    return _done(args.out)


def _attention(args) -> int:
    from scratchllm.viz.commands import viz_attention  # CLI speed
    viz_attention(args.run, args.prompt, args.out, args.layer, args.head, args.animate, args.max_new_tokens,
                  args.seed, args.step)
    return _done(args.out)


def _lens(args) -> int:
    from scratchllm.viz.commands import viz_logit_lens  # CLI speed
    viz_logit_lens(args.run, args.prompt, args.out, args.step)
    return _done(args.out)


def _saliency(args) -> int:
    from scratchllm.viz.commands import viz_saliency  # CLI speed
    viz_saliency(args.run, args.prompt, args.out, args.target, args.steps, args.step)
    return _done(args.out)


def _inference(args) -> int:
    from scratchllm.viz.commands import viz_inference  # CLI speed
    viz_inference(args.run, args.prompt, args.out, args.max_new_tokens, args.temperature, args.top_k or None,
                  args.top_p, args.seed, args.step)
    return _done(args.out)


def _embeddings(args) -> int:
    from scratchllm.viz.commands import viz_embeddings  # CLI speed
    viz_embeddings(args.run, args.tokens, args.out, args.k, args.step)
    return _done(args.out)


def _bigram(args) -> int:
    from scratchllm.viz.commands import viz_bigram  # CLI speed
    viz_bigram(args.run, args.out)
    return _done(args.out)


def _playground(args) -> int:
    # CLI speed: torch, FastAPI and uvicorn load only when the playground starts
    from pathlib import Path

    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import RedirectResponse

    from scratchllm.train.checkpoint import load_run
    from scratchllm.viz.playground import playground_router

    paths = [args.run] + ([args.run2] if args.run2 else [])
    names = [Path(p).resolve().name for p in paths]
    if len(set(names)) < len(names):       # two runs of the same name: number them instead
        names = [f"run{i + 1}" for i in range(len(paths))]
    runs = {name: load_run(p) for name, p in zip(names, paths)}
    app = FastAPI(title="scratchllm playground")
    app.include_router(playground_router(runs), prefix="/playground")
    app.add_api_route("/", lambda: RedirectResponse("/playground/"), include_in_schema=False)
    print(f"playground: http://{args.host}:{args.port}/playground/")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _done(out) -> int:
    print(f"wrote {out}")
    return 0
