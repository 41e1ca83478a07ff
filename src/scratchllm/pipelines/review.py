"""The report's post-mortem: "what went well" and "what did not", read off the run's own numbers.

Each rule looks at one figure against its yardstick and says one sentence, on the side it falls:
val bits per byte against the bigram baseline and the published GPT-2 124M figures; the gap
between train and val loss and a val loss that rose from its best (overfitting); epochs over the
train set (repeated data); the time budget cutting the schedule short; each benchmark against
chance (more than two standard errors above it or not); SFT's held-out loss before and after;
DPO's reward accuracy. Nothing here is judged by hand, so a rerun rewrites it.

>>> good, bad = review({"val_bpb": 1.2, "steps": 100, "max_steps": 100, "tokens": 10, "train_tokens": 100},
...                    {"bigram_bpb": 1.5, "unigram_bpb": 2.0}, [])
>>> good[0]
'val bits per byte 1.200 is 20% below the bigram baseline (1.500): the model learned more than word pairs.'
"""

from __future__ import annotations

from typing import Any

from scratchllm.eval.report import PUBLISHED

OVERFIT_GAP = 0.05        # val bpb more than 5% above train bpb
ROSE_FROM_BEST = 0.01     # final val bpb more than 1% above the best one logged


def _pretraining(p: dict, baselines: dict, metrics: list[dict], good: list, bad: list) -> None:
    bpb, bigram = p["val_bpb"], baselines["bigram_bpb"]
    gain = 1 - bpb / bigram
    line = f"val bits per byte {bpb:.3f} is {abs(gain):.0%} {'below' if gain > 0 else 'above'} the bigram baseline ({bigram:.3f})"
    (good if gain > 0 else bad).append(line + (": the model learned more than word pairs." if gain > 0 else
                                               ": it did not yet beat counting pairs; train longer or check the lr."))
    vals = [r["val_bpb"] for r in metrics if r.get("val_bpb") is not None]
    if len(vals) > 1 and vals[-1] > min(vals) * (1 + ROSE_FROM_BEST):
        bad.append(f"val bits per byte rose from its best {min(vals):.3f} to {vals[-1]:.3f}: a sign of overfitting.")
    train_bpb = p.get("train_bpb")
    if train_bpb and bpb > train_bpb * (1 + OVERFIT_GAP):
        bad.append(f"val bpb {bpb:.3f} is {bpb / train_bpb - 1:.0%} above the last train bpb {train_bpb:.3f}: "
                   "the model fits the train set better than held-out text.")
    epochs = p["tokens"] / max(p["train_tokens"], 1)
    if epochs > 1:
        bad.append(f"training saw the train set {epochs:.1f} times: repeated data, more of it would help.")
    else:
        good.append(f"every training token was new ({epochs:.2f} epochs of the train set): no repeated data.")
    if p.get("max_steps") and p["steps"] < p["max_steps"]:
        bad.append(f"the time budget stopped training at step {p['steps']:,} of {p['max_steps']:,} "
                   "(the schedule finished on the clock).")


def _tasks(tasks: dict[str, Any], good: list, bad: list) -> None:
    for name, entry in tasks.items():
        chance, m = entry.get("chance"), entry["metrics"]
        metric = "acc_norm" if "acc_norm" in m and name == "hellaswag" else "acc"
        if chance is None or metric not in m:
            continue
        err = entry["stderr"].get(metric) or 0.0
        above = m[metric] - chance > 2 * err
        ref = [f"{model} {v:g}" for model, v, _ in PUBLISHED.get((name, metric, 0), [])]
        line = f"{name} {metric} {m[metric]:.3f} vs chance {chance:.3f}" + (f" (published: {', '.join(ref)})" if ref else "")
        (good if above else bad).append(line + (": above chance by more than two standard errors." if above else
                                                ": not distinguishable from chance."))


def review(pretrain: dict, baselines: dict, metrics: list[dict], tasks: dict | None = None,
           sft: dict | None = None, dpo: dict | None = None) -> tuple[list[str], list[str]]:
    """(what went well, what did not), one sentence each."""
    good: list[str] = []
    bad: list[str] = []
    _pretraining(pretrain, baselines, metrics, good, bad)
    _tasks(tasks or {}, good, bad)
    if sft and sft.get("base_val_loss") is not None and sft.get("val_loss") is not None:
        before, after = sft["base_val_loss"], sft["val_loss"]
        (good if after < before else bad).append(
            f"SFT took the held-out assistant-token loss from {before:.3f} to {after:.3f} "
            f"({'down' if after < before else 'up'} {abs(1 - after / before):.0%}).")
    if dpo and dpo.get("val_rewards/accuracies") is not None:
        acc = dpo["val_rewards/accuracies"]
        (good if acc > 0.5 else bad).append(f"DPO's held-out reward accuracy is {acc:.2f} (0.5 is a coin toss).")
    return good, bad
