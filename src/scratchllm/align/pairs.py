"""`scratchllm align pairs`: build a preference set by sampling k replies per prompt and ranking them.

The seed's exercise: for each prompt, the run writes k replies (through the batched engine,
`inference/engine.py`, each with its own seed), a reward model (`align reward`) scores them, and
the best and the worst become one {prompt, chosen, rejected} record, the layout `align dpo` and
`align reward` read. Prompts whose k replies all score the same (or are all identical) give no
pair and are counted. The reward model must read the same tokens as the run: one with another
tokenizer would score text it never saw, so it is refused.

>>> best_and_worst(["a", "b", "c"], [0.1, 0.9, -0.3])
('b', 'c')
>>> build_pairs("runs/sft", "runs/rm", "prompts.jsonl", "pairs.jsonl", k=4)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from scratchllm.errors import UserError
from scratchllm.inference.engine import Request, SamplingParams, generate_batch
from scratchllm.inference.prompts_file import read_prompts_file
from scratchllm.model.heads import RewardModel
from scratchllm.tokenizer.special import render_conversation
from scratchllm.train.checkpoint import load_run
from scratchllm.utils.atomic import atomic_write_jsonl


def best_and_worst(replies: list[str], scores: list[float]) -> tuple[str, str] | None:
    """(highest-scored reply, lowest-scored reply), or None when they tie or are the same text."""
    best = max(range(len(replies)), key=lambda i: scores[i])
    worst = min(range(len(replies)), key=lambda i: scores[i])
    if scores[best] == scores[worst] or replies[best].strip() == replies[worst].strip():
        return None
    return replies[best], replies[worst]


def same_tokens(a, b) -> bool:
    """Whether two tokenizers map text to the same ids (merges, split pattern, special tokens)."""
    return a.ranks == b.ranks and a.pattern == b.pattern and a.special_tokens == b.special_tokens


def build_pairs(run_dir, rm_dir, prompts_path, out, k: int = 4, max_new_tokens: int = 64,
                temperature: float = 1.0, seed: int = 0) -> dict:
    """Write `out` ({prompt, chosen, rejected} JSONL); returns {"prompts", "pairs", "ties"}."""
    if k < 2:
        raise UserError(f"--k must be at least 2 (a pair needs two replies to compare), got {k}")
    policy, rm = load_run(run_dir), load_run(rm_dir)
    if not isinstance(rm.model, RewardModel):
        raise UserError(f"'{rm_dir}' is not a reward model; train one with scratchllm align reward")
    tok = policy.tokenizer
    if tok is None or rm.tokenizer is None or not same_tokens(tok, rm.tokenizer):
        raise UserError(f"the reward model '{rm_dir}' uses another tokenizer than '{run_dir}'; train the reward "
                        f"model from this run (scratchllm align reward --run {run_dir} ...)")
    prompts, _ = read_prompts_file(prompts_path, {})
    end = tok.special_tokens["<|assistant_end|>"]
    requests = []
    for p in prompts:
        ids, _ = render_conversation(tok, [{"role": "user", "content": p}], for_completion=True)
        for _ in range(k):   # each reply its own seed: k different samples, reproducible
            requests.append(Request(ids, max_new_tokens, SamplingParams(temperature, seed=seed * 1_000_003 + len(requests)),
                                    (end,)))
    seqs = generate_batch(policy.model, requests, vocab_size=tok.vocab_size)
    rows, ties = [], 0
    for n, prompt in enumerate(prompts):
        replies = [tok.decode(s.generated) for s in seqs[n * k:(n + 1) * k]]
        ranked = best_and_worst(replies, [rm.model.score(tok, prompt, r) for r in replies])
        if ranked is None:
            ties += 1
            continue
        rows.append({"prompt": prompt, "chosen": ranked[0], "rejected": ranked[1]})
    atomic_write_jsonl(Path(out), rows)
    return {"prompts": len(prompts), "pairs": len(rows), "ties": ties}
