"""Our eval harness against lm-evaluation-harness on the same model and the same items, in one run.

Our tasks are read from the ../shared/data/eval layouts; each one's requests (exactly the contexts
and continuations we score) are written as a local lm-eval task (JSONL + YAML), the run is exported
to Hugging Face format and lm-eval scores it with `--model hf`. Printed: a markdown table of every
metric, ours and lm-eval's, the difference in points, and each side's wall time.

    OMP_NUM_THREADS=2 python bench/eval_vs_lm_eval.py --run runs/tiny --data-dir ../shared/data/eval --limit 100
    OMP_NUM_THREADS=2 python bench/eval_vs_lm_eval.py --gpt2-random --data-dir ../shared/data/eval --limit 100

`--gpt2-random` builds a GPT-2-shaped tiny model with `transformers` (random weights, GPT-2's real
tokenizer from ../shared/data/tokenizer/gpt2) and imports it with `scratchllm import hf` first.
GSM8K and HumanEval (generation) run on our side only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import scratchllm  # noqa: E402
from scratchllm.eval.harness import evaluate_task  # noqa: E402
from scratchllm.eval.lm import LocalLM  # noqa: E402
from scratchllm.eval.tasks import load_task  # noqa: E402
from scratchllm.interop.hf import export_hf, import_hf  # noqa: E402

LL_TASKS = ["wikitext2", "lambada", "hellaswag", "arc_easy", "arc_challenge", "piqa", "winogrande", "mmlu"]
GEN_TASKS = ["gsm8k", "humaneval"]
HEAD = "task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {path}\ntest_split: test\n"
YAML = {
    "mc": HEAD + 'output_type: multiple_choice\ndoc_to_text: "{{{{ctx}}}}"\ndoc_to_choice: "{{{{choices}}}}"\n'
                 'doc_to_target: "{{{{gold}}}}"\nmetric_list:\n  - metric: acc\n  - metric: acc_norm\n',
    "partial": HEAD + 'output_type: multiple_choice\ndoc_to_text: "{{{{gold}}}}"\ndoc_to_choice: "{{{{options}}}}"\n'
                      'doc_to_target: "{{{{cont}}}}"\nmetric_list:\n  - metric: acc\n',
    "lambada": HEAD + 'output_type: loglikelihood\ndoc_to_text: "{{{{ctx}}}}"\ndoc_to_target: "{{{{cont}}}}"\n'
                      'metric_list:\n  - metric: perplexity\n  - metric: acc\n',
    "rolling": HEAD + 'output_type: loglikelihood_rolling\ndoc_to_text: ""\ndoc_to_target: "{{{{text}}}}"\n'
                      'metric_list:\n  - metric: word_perplexity\n  - metric: byte_perplexity\n'
                      '  - metric: bits_per_byte\n',
}


def lm_eval_rows(task):
    """(yaml kind, rows) reproducing our requests for lm-eval."""
    if task.kind == "rolling":
        return "rolling", [{"text": it.text} for it in task.items]
    if task.kind == "lambada":
        # lm-eval adds no delimiter to a plain loglikelihood target: the space stays in the data
        return "lambada", [{"ctx": it.context, "cont": it.continuation} for it in task.items]
    if task.items[0].partial:
        return "partial", [{"options": it.contexts, "cont": it.continuations[0][1:], "gold": it.gold}
                           for it in task.items]
    return "mc", [{"ctx": it.contexts[0], "choices": [c[1:] for c in it.continuations], "gold": it.gold}
                  for it in task.items]


def gpt2_random_run(tmp: Path, data_root: Path) -> Path:
    import torch
    import transformers

    from scratchllm.tokenizer.formats import export_hf as export_tokenizer
    from scratchllm.tokenizer.formats import import_gpt2

    gpt2 = data_root / "tokenizer" / "gpt2"
    tok = import_gpt2(gpt2 / "encoder.json", gpt2 / "vocab.bpe")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=50257, n_positions=256, n_embd=64, n_layer=2, n_head=4,
                                  bos_token_id=50256, eos_token_id=50256)
    hf_dir = tmp / "gpt2-random-hf"
    transformers.GPT2LMHeadModel(cfg).save_pretrained(hf_dir)
    export_tokenizer(tok, hf_dir / "tokenizer.json")
    return import_hf(hf_dir, tmp / "gpt2-random-run")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run")
    p.add_argument("--gpt2-random", action="store_true")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--mmlu-limit", type=int, default=2, help="items per MMLU subject")
    p.add_argument("--wikitext-limit", type=int, default=3, help="WikiText-2 articles (each thousands of tokens)")
    p.add_argument("--batch-size", type=int, default=16)
    args = p.parse_args()
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    tmp = Path(tempfile.mkdtemp(prefix="eval-bench-"))
    run_dir = gpt2_random_run(tmp, Path(args.data_dir).parent) if args.gpt2_random else Path(args.run)
    lm = LocalLM(scratchllm.load(run_dir), batch_size=args.batch_size)
    hf_dir = export_hf(run_dir, tmp / "hf")
    hflm = HFLM(pretrained=str(hf_dir), dtype="float32", batch_size=args.batch_size, device="cpu")
    tasks_dir = tmp / "tasks"
    tasks_dir.mkdir()
    rows = []
    for name in LL_TASKS + GEN_TASKS:
        limit = {"mmlu": args.mmlu_limit, "wikitext2": args.wikitext_limit}.get(name, args.limit)
        task = load_task(name, args.data_dir, 0, limit)
        ours = evaluate_task(lm, task, progress=False)
        theirs, their_s = {}, None
        if name in LL_TASKS:
            kind, items = lm_eval_rows(task)
            data = tasks_dir / f"bench_{name}.jsonl"
            data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items), encoding="utf-8")
            (tasks_dir / f"bench_{name}.yaml").write_text(YAML[kind].format(name=f"bench_{name}", path=data))
            start = time.perf_counter()
            out = lm_eval.simple_evaluate(model=hflm, tasks=[f"bench_{name}"],
                                          task_manager=TaskManager(include_path=str(tasks_dir)))
            their_s = time.perf_counter() - start
            theirs = {k.split(",")[0]: v for k, v in out["results"][f"bench_{name}"].items() if k.endswith(",none")}
        for metric, value in ours["metrics"].items():
            if metric.startswith("acc_") and metric not in ("acc_norm", "acc_bytes", "acc_macro"):
                continue
            other = theirs.get(metric)
            scale = 100 if metric.startswith(("acc", "exact", "pass")) else 1
            diff = "" if other is None else f"{(value - other) * scale:+.4f}"
            rows.append(f"| {name} | {metric} | {ours['n']} | {value:.4f} | "
                        f"{'' if other is None else f'{other:.4f}'} | {diff} | {ours['seconds']:.1f} | "
                        f"{'' if their_s is None else f'{their_s:.1f}'} |")
        print(rows[-1], file=sys.stderr, flush=True)
    print(f"model: {run_dir}\n")
    print("| task | metric | n | ours | lm-eval | diff (points; ppl: absolute) | ours s | lm-eval s |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
