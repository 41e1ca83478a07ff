"""Score tasks with a language model: one runner per task kind, each returning metrics and stderrs.

The model is anything with the three calls of `lm.LocalLM` (`loglikelihood`,
`loglikelihood_rolling`, `generate`), so a run and a server are evaluated by the same code.

Multiple choice (lm-eval's definitions): each option's log-likelihood ll_i; `acc` picks argmax
ll_i, `acc_norm` argmax ll_i / len(choice_i in characters), `acc_bytes` argmax ll_i / UTF-8 bytes.
Winogrande's options differ in context, not continuation, so only `acc` means anything there.
Ties go to the first option (numpy's argmax). MMLU also reports `acc_macro`, the mean of the
per-subject accuracies, and each subject as `acc_<subject>`.

>>> from scratchllm.eval.tasks.base import MCItem
>>> class Fixed:   # a fake model: one nat per character, so longer options score lower in total
...     def loglikelihood(self, pairs, progress=None):
...         return [(-float(len(c)), False) for _, c in pairs]
>>> item = MCItem(["Q"] * 2, [" a", " bbbb"], gold=1, choices=["a", "bbbb"])
>>> metrics, _ = score_mc(Fixed(), [item])
>>> metrics["acc"], metrics["acc_norm"]
(0.0, 1.0)
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Any, Callable

from tqdm import tqdm

from scratchllm.eval.answers import exact_match, extract_gsm8k
from scratchllm.eval.code_exec import humaneval_program, run_program
from scratchllm.eval.metrics import mean_stderr, pass_at_k, perplexities
from scratchllm.eval.tasks.base import Task

Progress = Callable[[int], None] | None


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))


def _summarise(per_item: dict[str, list[float]]) -> tuple[dict[str, float], dict[str, float | None]]:
    metrics, stderr = {}, {}
    for name, values in per_item.items():
        metrics[name], stderr[name] = mean_stderr(values)
    return metrics, stderr


def score_mc(lm, items, progress: Progress = None):
    pairs = [(c, x) for it in items for c, x in zip(it.contexts, it.continuations)]
    lls = [ll for ll, _ in lm.loglikelihood(pairs, progress)]
    per_item: dict[str, list[float]] = defaultdict(list)
    by_subject: dict[str, list[float]] = defaultdict(list)
    pos = 0
    for it in items:
        ll = lls[pos:pos + len(it.continuations)]
        pos += len(it.continuations)
        hit = float(_argmax(ll) == it.gold)
        per_item["acc"].append(hit)
        if it.subject:
            by_subject[it.subject].append(hit)
        if not it.partial:
            per_item["acc_norm"].append(float(_argmax([v / len(c) for v, c in zip(ll, it.choices)]) == it.gold))
            per_item["acc_bytes"].append(float(_argmax([v / len(c.encode()) for v, c in zip(ll, it.choices)]) == it.gold))
    metrics, stderr = _summarise(per_item)
    if by_subject:
        subject_acc = {s: sum(v) / len(v) for s, v in by_subject.items()}
        metrics["acc_macro"], stderr["acc_macro"] = sum(subject_acc.values()) / len(subject_acc), None
        for s, acc in sorted(subject_acc.items()):
            metrics[f"acc_{s}"], stderr[f"acc_{s}"] = acc, mean_stderr(by_subject[s])[1]
    return metrics, stderr


def score_rolling(lm, items, progress: Progress = None):
    total = sum(lm.loglikelihood_rolling([it.text for it in items], progress))
    metrics = perplexities(total, sum(it.words for it in items), sum(it.bytes for it in items))
    return metrics, {k: None for k in metrics}


def score_lambada(lm, items, progress: Progress = None):
    results = lm.loglikelihood([(it.context, it.continuation) for it in items], progress)
    metrics, stderr = _summarise({"acc": [float(g) for _, g in results]})
    metrics["perplexity"] = math.exp(-sum(ll for ll, _ in results) / len(results))
    stderr["perplexity"] = None
    return metrics, stderr


def score_generative(lm, task: Task, progress: Progress = None):
    outs = lm.generate([it.prompt for it in task.items], task.stop, task.max_new_tokens, 0.0, progress=progress)
    per_item: dict[str, list[float]] = defaultdict(list)
    for it, out in zip(task.items, outs):
        if task.answer == "gsm8k":
            want = extract_gsm8k(it.answer)
            per_item["exact_match"].append(float(extract_gsm8k(out) == want))
            per_item["exact_match_flexible"].append(float(extract_gsm8k(out, strict=False) == want))
        else:
            per_item["exact_match"].append(float(exact_match(out, it.answer)))
    return _summarise(per_item)


def score_code(lm, task: Task, progress: Progress = None, samples: int = 1, timeout: float = 10.0):
    """pass@k for k in 1, 10, 100 (those <= samples): greedy for one sample, temperature 0.8 for more."""
    temperature = 0.0 if samples == 1 else 0.8
    correct = []
    for i, it in enumerate(task.items):
        outs = lm.generate([it.prompt] * samples, task.stop, task.max_new_tokens, temperature, seed=i * samples)
        correct.append(sum(run_program(humaneval_program(it.prompt, o, it.answer, it.entry_point), timeout).passed
                           for o in outs))
        if progress:
            progress(1)
    per_item = {f"pass@{k}": [pass_at_k(samples, c, k) for c in correct] for k in (1, 10, 100) if k <= samples}
    return _summarise(per_item)


def _n_requests(task: Task) -> int:
    if task.kind == "mc":
        return sum(len(it.continuations) for it in task.items)
    return len(task.items)


def evaluate_task(lm, task: Task, progress: bool = True, samples: int = 1, timeout: float = 10.0) -> dict[str, Any]:
    """One task's entry of results.json."""
    start = time.perf_counter()
    total = None if task.kind == "rolling" else _n_requests(task)   # rolling counts windows, known only later
    with tqdm(total=total, desc=task.name, unit="req", disable=not progress, leave=False) as bar:
        if task.kind == "mc":
            metrics, stderr = score_mc(lm, task.items, bar.update)
        elif task.kind == "rolling":
            metrics, stderr = score_rolling(lm, task.items, bar.update)
        elif task.kind == "lambada":
            metrics, stderr = score_lambada(lm, task.items, bar.update)
        elif task.kind == "gen":
            metrics, stderr = score_generative(lm, task, bar.update)
        else:
            metrics, stderr = score_code(lm, task, bar.update, samples, timeout)
    return {"kind": task.kind, "metrics": metrics, "stderr": stderr, "n": len(task.items), "shots": task.shots,
            "chance": task.chance, "sha256": task.source_hash, "source": task.source,
            "seconds": round(time.perf_counter() - start, 3)}
