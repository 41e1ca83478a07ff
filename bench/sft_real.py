"""A real fine-tune on the CPU: a small Gutenberg base -> a chat model on Alpaca + identity.

1. `--prepare`: writes one Alpaca-format file from ../shared/data/sft/alpaca_en_demo.json and
   identity.json (its {{name}}/{{author}} placeholders are filled by finetune.placeholders).
2. `--method full|lora`: `scratchllm finetune` on it (the one loop; held-out split 5%), for a
   time budget; prints the held-out assistant-token loss of the base and of the result.
3. `--samples RUN...`: greedy replies of the base and of each run to held-out prompts (never
   trained on), as a markdown table for bench/RESULTS.md.

    python bench/sft_real.py --prepare --data ../shared/data/sft --out runs/sft-data.json
    python bench/sft_real.py --method full --base runs/base --data runs/sft-data.json --out runs/sft-full
    python bench/sft_real.py --samples runs/sft-full runs/sft-lora --base runs/base --data runs/sft-data.json
"""

import argparse
import json
from pathlib import Path

import scratchllm
from scratchllm.data.chat import load_conversations, read_records, split_heldout
from scratchllm.inference.chat import ChatSession
from scratchllm.train.finetune import FinetuneConfig, finetune


def prepare(data_dir: Path, out: Path) -> None:
    records = read_records(data_dir / "alpaca_en_demo.json") + read_records(data_dir / "identity.json")
    out.write_text(json.dumps(records))
    print(f"{len(records)} conversations -> {out}")


def run(args) -> None:
    lr = {"full": 1e-3, "lora": 3e-3}[args.method]
    overrides = [f"train.max_minutes={args.minutes}", "train.max_steps=100000", "train.batch_size=8",
                 f"train.max_lr={lr}", f"train.min_lr={lr / 10}", "train.eval_every=100", "train.eval_batches=8",
                 "train.checkpoint_every=200", "train.progress=false", "finetune.lora.r=16", "finetune.lora.alpha=32"]
    result, figures = finetune(args.base, args.data, args.method, args.out, overrides)
    final = result.final
    print(json.dumps({"method": args.method, "steps": result.step, "tokens": result.tokens,
                      "minutes": round(result.wall_s / 60, 1), "base_val_loss": round(figures["base_val_loss"], 4),
                      "val_loss": round(final.get("val_loss", float("nan")), 4),
                      "tokens_per_s": round(final.get("tokens_per_s", 0))}))


def samples(args) -> None:
    ft = FinetuneConfig()
    convs = load_conversations(args.data, placeholders=ft.placeholders)
    _, held = split_heldout(convs, ft.val_fraction, ft.split_seed)
    prompts = [c[0]["content"] for c in held if len(c[0]["content"]) < 120][: args.n]
    models = {"base": scratchllm.load(args.base)} | {Path(r).name: scratchllm.load(r) for r in args.samples}
    print("| prompt (held out) | " + " | ".join(models) + " |")
    print("|---" * (len(models) + 1) + "|")
    for prompt in prompts:
        cells = []
        for run in models.values():
            chat = ChatSession(run.model, run.tokenizer, max_new_tokens=args.max_new_tokens, temperature=0)
            cells.append("".join(chat.send(prompt)).replace("\n", " ").replace("|", "/").strip()[:160])
        print(f"| {prompt.replace(chr(10), ' ')} | " + " | ".join(cells) + " |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prepare", action="store_true")
    ap.add_argument("--method", choices=["full", "lora"])
    ap.add_argument("--samples", nargs="*")
    ap.add_argument("--base")
    ap.add_argument("--data")
    ap.add_argument("--out")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--n", type=int, default=6)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    args = ap.parse_args()
    if args.prepare:
        prepare(Path(args.data), Path(args.out))
    elif args.method:
        run(args)
    else:
        samples(args)


if __name__ == "__main__":
    main()
