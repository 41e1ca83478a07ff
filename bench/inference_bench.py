"""Inference speed on one GPU: our engine against transformers' `generate`, in the same process.

    python bench/inference_bench.py                      # CUDA, the gpt2-124m shape, random weights
    python bench/inference_bench.py --quick --device cpu # a tiny smoke run of every section

Sections (each prints one JSON line; --out writes them all):
- decode: batch 1, greedy, 32-token prompt, 256 new tokens: ours eager / CUDA graph / compiled +
  graph, transformers default and cache_implementation="static".
- batch: aggregate tokens/s at batch 1, 8, 32, 128 (CUDA graph), prompts of 32, 256 new each.
- continuous: 256 requests of mixed prompt lengths and budgets through the scheduler, against
  static batches of the same size in arrival order.
- prefill: tokens/s of one forward over 8 × 1024 tokens, and of the engine's slot prefill.
- profile: the compiled decode step's kernels under torch.profiler, by device time per step.
- speculative: a byte-level target (6 × 384) and draft (2 × 128) trained here for a few hundred
  steps on Python's own source files (random weights accept nothing), greedy: tokens/s and
  acceptance for the plain engine, a draft model, and n-gram lookup.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time

import torch

from scratchllm.data.builtin import builtin_documents
from scratchllm.inference.engine import Request, SamplingParams, generate, generate_batch
from scratchllm.inference.scheduler import Scheduler
from scratchllm.inference.slots import SlotBatch
from scratchllm.inference.speculative import speculative_generate
from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.train.config import resolve_run_config
from scratchllm.train.loop import train

GREEDY = SamplingParams(temperature=0)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeat=1):
    """(result of the last call, best seconds of `repeat` calls)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return out, best


def gpt2_shape(quick: bool) -> ModelConfig:
    if quick:
        return ModelConfig(n_layer=2, n_head=2, n_embd=32, vocab_size=512, block_size=512)
    return ModelConfig(n_layer=12, n_head=12, n_embd=768, vocab_size=50304, block_size=1024)


def bench_decode(model, device, n_new, quick):
    prompt = list(range(100, 132))
    rows = {}
    settings = {"ours eager": dict(), "ours CUDA graph": dict(cuda_graph=True),
                "ours compiled + CUDA graph": dict(cuda_graph=True, compile=True)}
    for name, kw in settings.items():
        if device.type != "cuda" and kw:
            continue
        try:
            run = lambda: generate_batch(model, [Request(prompt, n_new, GREEDY)], **kw)[0].generated
            timed(run, device)                                     # warm-up (capture, compile)
            out, s = timed(run, device, repeat=3)
            rows[name] = dict(tokens_per_s=len(out) / s, tokens=len(out))
            rows.setdefault("_reference", out)
            rows[name]["same_tokens_as_eager"] = out == rows["_reference"]
        except Exception as e:                                     # report, keep measuring the rest
            rows[name] = dict(error=f"{type(e).__name__}: {e}"[:300])
    rows.pop("_reference", None)
    if device.type == "cuda":
        rows.update(bench_replay(model, device, prompt, n_new))
    rows.update(bench_transformers(model.config, device, prompt, n_new, quick))
    return rows


@torch.inference_mode()
def bench_replay(model, device, prompt, n_new):
    """The decode step's graph replayed alone (no sampling, no host work): the GPU's share of a token."""
    rows = {}
    for name, kw in {"graph replay alone": {}, "compiled graph replay alone": dict(compile=True)}.items():
        slots = SlotBatch(model, 1, max_len=len(prompt) + n_new + 32, cuda_graph=True, **kw)
        slots.admit(0, Request(prompt, n_new + 8, GREEDY))
        slots.prefill(0)

        def replay():
            for _ in range(n_new):
                slots.step()
            slots.cache.lengths.fill_(len(prompt))
        timed(replay, device)
        _, s = timed(replay, device, repeat=3)
        rows[name] = dict(steps_per_s=n_new / s)
    return rows


@torch.inference_mode()
def bench_profile(model, device, prompt, n_steps=32, top=25):
    """Where a decode step's GPU time goes: the compiled step (no graph, so every kernel is seen) under
    torch.profiler; the `top` kernels by device time per step, with their count per step."""
    from torch.profiler import ProfilerActivity, profile   # bench-only: the profiler is not on any hot path

    slots = SlotBatch(model, 1, max_len=len(prompt) + n_steps + 64, compile=device.type == "cuda")
    slots.admit(0, Request(prompt, n_steps + 8, GREEDY))
    slots.prefill(0)
    for _ in range(3):
        slots.step()                                               # compile, then warm
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(n_steps):
            slots.step()
        sync(device)
    events = [e for e in prof.key_averages() if e.device_type.name == ("CUDA" if device.type == "cuda" else "CPU")]
    key = "device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events.sort(key=lambda e: getattr(e, key), reverse=True)
    total = sum(getattr(e, key) for e in events)
    return {"profile": dict(us_per_step=round(total / n_steps, 1), kernels=[
        dict(name=e.key[:90], per_step=round(e.count / n_steps, 2), us_per_step=round(getattr(e, key) / n_steps, 2))
        for e in events[:top]])}


def bench_transformers(cfg, device, prompt, n_new, quick):
    """transformers' generate on a GPT-2 of the same shape (random weights), default and static cache."""
    try:
        from transformers import GPT2Config, GPT2LMHeadModel   # optional peer: the bench runs without it
    except ImportError:
        return {"transformers": dict(error="not installed")}
    hf_cfg = GPT2Config(vocab_size=cfg.vocab_size, n_positions=cfg.block_size, n_embd=cfg.n_embd,
                        n_layer=cfg.n_layer, n_head=cfg.n_head, bos_token_id=0, eos_token_id=0)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    hf = GPT2LMHeadModel(hf_cfg).to(device=device, dtype=dtype).eval()
    ids = torch.tensor([prompt], device=device)
    rows = {}
    for name, kw in {"transformers default": {}, "transformers static cache": dict(cache_implementation="static")}.items():
        try:
            run = lambda: hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n_new,
                                      min_new_tokens=n_new, do_sample=False, pad_token_id=0, **kw)
            timed(run, device)
            out, s = timed(run, device, repeat=3)
            rows[name] = dict(tokens_per_s=(out.shape[1] - ids.shape[1]) / s)
        except Exception as e:
            rows[name] = dict(error=f"{type(e).__name__}: {e}"[:300])
    del hf
    return rows


def bench_batch(model, device, n_new, batches):
    rows = {}
    graph = device.type == "cuda"
    for b in batches:
        requests = [Request([(7 * i + j) % 1000 + 1 for j in range(32)], n_new, GREEDY) for i in range(b)]
        run = lambda: generate_batch(model, requests, cuda_graph=graph)
        timed(run, device)
        seqs, s = timed(run, device, repeat=2)
        rows[f"batch {b}"] = dict(tokens_per_s=sum(len(q.generated) for q in seqs) / s, seconds=s)
    return rows


def mixed_requests(n, max_prompt, max_new, seed=0):
    rng = random.Random(seed)
    return [Request([rng.randrange(1, 500) for _ in range(rng.randint(16, max_prompt))], rng.randint(16, max_new),
                    GREEDY) for _ in range(n)]


def bench_continuous(model, device, n_requests, n_slots, max_prompt, max_new):
    requests = mixed_requests(n_requests, max_prompt, max_new)
    graph = device.type == "cuda"
    cap = max_prompt + max_new

    def continuous():
        scheduler = Scheduler(model, n_slots=n_slots, max_len=cap, max_queue=n_requests, prefill_budget=4096,
                              cuda_graph=graph)
        handles = [scheduler.submit(r) for r in requests]
        while scheduler.step():
            pass
        return sum(len(h.tokens) for h in handles)

    def static():
        return sum(len(s.generated) for i in range(0, n_requests, n_slots)
                   for s in generate_batch(model, requests[i:i + n_slots], cuda_graph=graph))

    rows = {}
    for name, fn in {"continuous (scheduler)": continuous, "static batches, arrival order": static}.items():
        timed(fn, device)
        tokens, s = timed(fn, device)
        rows[name] = dict(tokens_per_s=tokens / s, seconds=s, tokens=tokens)
    return rows


@torch.inference_mode()
def bench_prefill(model, device, batch, length):
    ids = torch.randint(0, model.config.vocab_size, (batch, length), device=device)
    _, s = timed(lambda: model(ids), device, repeat=3)
    slots = SlotBatch(model, 1, max_len=length)
    request = Request(ids[0].tolist(), 1, GREEDY)

    def slot_prefill():
        slots.admit(0, request)
        slots.prefill(0)
        slots.release(0)

    timed(slot_prefill, device)
    _, s_slot = timed(slot_prefill, device, repeat=3)
    return {f"forward {batch} x {length}": dict(tokens_per_s=batch * length / s),
            f"engine slot prefill 1 x {length}": dict(tokens_per_s=length / s_slot)}


def corpus_bytes(max_bytes):
    data = bytearray()
    for doc in builtin_documents():
        data += doc.encode("utf-8")
        if len(data) >= max_bytes:
            break
    return torch.tensor(list(data[:max_bytes]), dtype=torch.long)


def train_byte_model(data, device, shape, steps, out_dir, quick):
    cfg = resolve_run_config("tiny-cpu", [
        "model.vocab_size=256", "model.block_size=256", f"model.n_layer={shape[0]}", f"model.n_head={shape[1]}",
        f"model.n_embd={shape[2]}", "train.batch_size=32", f"train.max_steps={steps}", "train.warmup_steps=20",
        "train.max_lr=2e-3", "train.min_lr=2e-4", f"train.eval_every={steps}", "train.eval_batches=2",
        f"train.log_every={steps}", "train.progress=false", f"train.device={device.type}",
        f"train.checkpoint_every=0", "train.max_minutes=0"])
    model = Transformer(cfg.model).to(device)
    g = torch.Generator().manual_seed(shape[2])

    def batches():
        while True:
            start = torch.randint(0, len(data) - 257, (32,), generator=g)
            windows = torch.stack([data[s:s + 257] for s in start.tolist()])
            yield windows[:, :-1], windows[:, 1:]

    train(model, cfg, batches(), out_dir, quiet=True)
    return model.eval()


def bench_speculative(device, steps, n_new, quick):
    data = corpus_bytes(200_000 if quick else 20_000_000)
    held_out = data[-20_000:].tolist()
    with tempfile.TemporaryDirectory() as tmp:
        target = train_byte_model(data[:-20_000], device, (2, 2, 32) if quick else (6, 6, 384), steps, f"{tmp}/t", quick)
        draft = train_byte_model(data[:-20_000], device, (1, 2, 16) if quick else (2, 2, 128), steps, f"{tmp}/d", quick)
    prompts = [held_out[i * 997:i * 997 + 64] for i in range(4)]
    plain = [list(generate(target, p, n_new, temperature=0)) for p in prompts]   # warm-up and the reference
    _, s_plain = timed(lambda: [list(generate(target, p, n_new, temperature=0)) for p in prompts], device)
    rows = {"target alone (eager)": dict(tokens_per_s=sum(map(len, plain)) / s_plain)}
    for name, drafter in {"draft model 2 x 128, k=4": draft, "n-gram lookup, k=4": "ngram"}.items():
        def run():
            streams = [speculative_generate(target, p, draft=drafter, k=4, max_new_tokens=n_new, temperature=0)
                       for p in prompts]
            return [list(s) for s in streams], streams
        run()
        (outs, streams), s = timed(run, device)
        proposed = sum(x.stats.proposed for x in streams)
        rows[name] = dict(tokens_per_s=sum(map(len, outs)) / s, speedup=s_plain / s, same_as_target=outs == plain,
                          acceptance=sum(x.stats.accepted for x in streams) / max(proposed, 1))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny sizes: check that every section runs")
    p.add_argument("--sections", default="decode,batch,continuous,prefill,speculative")
    p.add_argument("--spec-steps", type=int, default=600, help="training steps of each speculative model")
    p.add_argument("--out", default=None, help="also write the JSON lines here")
    args = p.parse_args()
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    torch.manual_seed(0)
    model = Transformer(gpt2_shape(args.quick)).to(device=device, dtype=dtype).eval()
    n_new = 16 if args.quick else 256
    sections = {
        "decode": lambda: bench_decode(model, device, n_new, args.quick),
        "batch": lambda: bench_batch(model, device, n_new, [1, 8] if args.quick else [1, 8, 32, 128]),
        "continuous": lambda: bench_continuous(model, device, 16 if args.quick else 256, 4 if args.quick else 64,
                                               32 if args.quick else 512, 16 if args.quick else 256),
        "prefill": lambda: bench_prefill(model, device, 2 if args.quick else 8, 64 if args.quick else 1024),
        "speculative": lambda: bench_speculative(device, 5 if args.quick else args.spec_steps, n_new, args.quick),
        "profile": lambda: bench_profile(model, device, list(range(100, 132))),
    }
    lines = []
    info = dict(device=torch.cuda.get_device_name() if device.type == "cuda" else "cpu", torch=torch.__version__)
    print(json.dumps(info), flush=True)
    for name in args.sections.split(","):
        t0 = time.perf_counter()
        rows = sections[name]()
        lines.append(json.dumps(dict(section=name, wall_s=round(time.perf_counter() - t0, 1), **rows)))
        print(lines[-1], flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write(json.dumps(info) + "\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
