"""`scratchllm align pairs`: build a preference set by sampling k replies per prompt and ranking them.

The seed's exercise: for each prompt, the run writes k replies (through the batched engine,
`inference/chat.reply_batch`, each with its own seed), one ranker scores them, and the best and
the worst become one {prompt, chosen, rejected} record, the layout `align dpo` and `align
reward` read. Exactly one ranker a call:

- a reward model (`align reward`): its scalar score. It must read the same tokens as the run:
  one with another tokenizer would score text it never saw, so it is refused.
- a judge endpoint (`eval/judge.py`, any OpenAI-compatible chat server): single-answer grading,
  1-10. Scored rather than pairwise because ranking k replies needs a score per reply: k calls a
  prompt instead of 2·k(k−1)/2 position-swapped comparisons (12 for k=4), and scores cannot be
  intransitive the way a tournament of pairwise verdicts can. A reply whose grade cannot be
  parsed is left out of its group.
- a rule file (`align/rules.py`): the sum of the weights of the rules a reply passes.

A prompt gives no pair when fewer than two of its replies were scored ("unscored"), or when the
best and the worst score the same or are the same text ("ties": all-equal groups are ties too);
both are counted in the summary. The file is written atomically, once every prompt is ranked.

>>> best_and_worst(["a", "b", "c"], [0.1, 0.9, -0.3])
('b', 'c')
>>> best_and_worst(["a", "b", "c"], [None, 5, None]) is None    # one scored reply: nothing to compare
True
>>> build_pairs("runs/sft", "prompts.jsonl", "pairs.jsonl", rules="rules.toml", k=4)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from scratchllm.align.rules import read_rules, score_reply
from scratchllm.errors import UserError
from scratchllm.eval.judge import Judge
from scratchllm.inference.chat import reply_batch
from scratchllm.inference.prompts_file import read_prompts_file
from scratchllm.model.heads import RewardModel
from scratchllm.train.checkpoint import load_run
from scratchllm.utils.atomic import atomic_write_jsonl

# A ranker scores the replies to one prompt; None marks a reply it could not score.
Ranker = Callable[[str, list[str]], list[float | None]]


def best_and_worst(replies: list[str], scores: list[float | None]) -> tuple[str, str] | None:
    """(highest-scored reply, lowest-scored reply), or None when fewer than two were scored, or
    the two tie or are the same text."""
    scored = [i for i, s in enumerate(scores) if s is not None]
    if len(scored) < 2:
        return None
    best = max(scored, key=lambda i: scores[i])
    worst = min(scored, key=lambda i: scores[i])
    if scores[best] == scores[worst] or replies[best].strip() == replies[worst].strip():
        return None
    return replies[best], replies[worst]


def same_tokens(a, b) -> bool:
    """Whether two tokenizers map text to the same ids (merges, split pattern, special tokens)."""
    return a.ranks == b.ranks and a.pattern == b.pattern and a.special_tokens == b.special_tokens


def reward_ranker(rm_dir, run_dir, tokenizer) -> Ranker:
    """Scores from the reward model run `rm_dir`, which must share the policy's `tokenizer`."""
    rm = load_run(rm_dir)
    if not isinstance(rm.model, RewardModel):
        raise UserError(f"'{rm_dir}' is not a reward model; train one with scratchllm align reward")
    if tokenizer is None or rm.tokenizer is None or not same_tokens(tokenizer, rm.tokenizer):
        raise UserError(f"the reward model '{rm_dir}' uses another tokenizer than '{run_dir}'; train the reward "
                        f"model from this run (scratchllm align reward --run {run_dir} ...)")
    return lambda prompt, replies: [rm.model.score(tokenizer, prompt, r) for r in replies]


def judge_ranker(judge: Judge) -> Ranker:
    """The judge's 1-10 grade of each reply (None when it gave none it could parse)."""
    return lambda prompt, replies: [judge.grade(prompt, r)["score"] for r in replies]


def rules_ranker(path) -> Ranker:
    rules = read_rules(path)
    return lambda prompt, replies: [score_reply(rules, r) for r in replies]


def _one_ranker(reward, judge, rules) -> None:
    given = [flag for flag, value in (("--reward", reward), ("--judge-endpoint", judge), ("--rules", rules))
             if value is not None]
    if len(given) != 1:
        what = "none" if not given else " and ".join(given)
        raise UserError(f"give exactly one ranker: --reward RM, --judge-endpoint URL or --rules FILE (got {what})")


def build_pairs(run_dir, prompts_path, out, *, reward=None, judge: Judge | None = None, rules=None, k: int = 4,
                max_new_tokens: int = 64, temperature: float = 1.0, seed: int = 0) -> dict:
    """Write `out` ({prompt, chosen, rejected} JSONL) ranked by exactly one of `reward` (a reward model
    run), `judge` or `rules` (a rule file); returns {"prompts", "pairs", "skipped", "ties", "unscored"}."""
    _one_ranker(reward, judge, rules)
    if k < 2:
        raise UserError(f"--k must be at least 2 (a pair needs two replies to compare), got {k}")
    # a rule file is read before the run loads: a bad file fails in a moment, not after loading a model
    ranker = rules_ranker(rules) if rules is not None else judge_ranker(judge) if judge is not None else None
    policy = load_run(run_dir)
    tok = policy.tokenizer
    ranker = ranker or reward_ranker(reward, run_dir, tok)   # the reward model checks the run's tokenizer
    prompts, _ = read_prompts_file(prompts_path, {})
    conversations = [[{"role": "user", "content": p}] for p in prompts for _ in range(k)]
    # each reply its own seed: k different samples, reproducible
    seeds = [seed * 1_000_003 + i for i in range(len(conversations))]
    replies = reply_batch(policy.model, tok, conversations, max_new_tokens, temperature, seeds=seeds)
    rows, ties, unscored = [], 0, 0
    for n, prompt in enumerate(prompts):
        group = replies[n * k:(n + 1) * k]
        scores = ranker(prompt, group)
        ranked = best_and_worst(group, scores)
        if ranked is None:
            if sum(s is not None for s in scores) < 2:
                unscored += 1
            else:
                ties += 1
            continue
        rows.append({"prompt": prompt, "chosen": ranked[0], "rejected": ranked[1]})
    atomic_write_jsonl(Path(out), rows)
    return {"prompts": len(prompts), "pairs": len(rows), "skipped": ties + unscored, "ties": ties,
            "unscored": unscored}
