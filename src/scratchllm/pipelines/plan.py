"""What a speedrun will do: its preset, its stages' settings, and where each `KEY=VALUE` goes.

Two pipelines share one command:

- the **default** (`tiny-cpu` on a CPU, or any training preset such as `small`): the built-in
  corpus (or `--data` text) -> tokenizer + tokens -> pretrain -> evaluate -> SFT on an offline
  instruction set made from the standard library (`data/stdlib_sft.py`) -> report. On 2 CPU
  cores it fits in 10 minutes: pretraining stops at 6, SFT at 1.5.
- the **capstone** (`--preset capstone`, what a CUDA machine gets by default): raw Gutenberg
  books -> tokenizer -> data prepare (clean, filter, dedup, held-out books) -> pretrain a
  gpt2-124m on ~100M tokens -> evaluate (held-out books, WikiText-2, HellaSwag, ARC, PIQA,
  LAMBADA) -> SFT on `--sft` conversations -> optional DPO on `--dpo` pairs -> report.

Overrides are routed by their first word: `sft.train.max_steps=50` goes to the SFT stage (as
`train.max_steps=50`), `dpo.*` to DPO, `eval.*` to the evaluation settings, `prepare.*` to the
capstone's data settings; anything else (`model.*`, `train.*`, `data.*`) to pretraining.

>>> p = make_plan("capstone", ["train.max_steps=20", "sft.train.max_steps=5", "eval.limit=10"], cuda=False)
>>> p.capstone, p.run_preset, p.run_overrides[-1], p.sft_overrides[-1], p.eval.limit
(True, 'gpt2-124m', 'train.max_steps=20', 'train.max_steps=5', 10)
>>> make_plan(None, [], cuda=False).run_preset
'tiny-cpu'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scratchllm.config import apply_overrides
from scratchllm.pipelines.capstone import PrepareSettings, prepare_settings

CAPSTONE = "capstone"
CPU_PRESET = "tiny-cpu"
# 6 of the 10 CPU minutes for pretraining: SFT, tokenizing and the report share the rest.
CPU_OVERRIDES = ["train.max_minutes=6.0"]
CPU_SFT = ["train.max_minutes=1.5", "train.max_steps=300", "train.batch_size=8", "train.max_lr=1e-3",
           "train.min_lr=1e-4", "train.eval_every=100", "train.eval_batches=4", "train.checkpoint_every=0",
           "train.log_every=10", "train.progress=false"]
# `--preset small` on a GPU, as before the capstone: all of the built-in corpus (~11 MB, ~3.5M
# tokens), which 800 steps see about 4 times.
SMALL_OVERRIDES = ["train.max_steps=800", "train.eval_every=100", "data.max_bytes=20000000"]
CAPSTONE_MODEL = "gpt2-124m"
# ~100M tokens: 400 steps of 16 x 1024 x 16 = 262,144 tokens. At ~420k tokens/s on one H200
# (bench/RESULTS.md) that is about 4 minutes of training; `max_minutes` caps it at 10 whatever
# the device. A short run wants a higher peak lr and a short warmup than nanoGPT's 600k steps.
CAPSTONE_OVERRIDES = ["train.batch_size=16", "train.grad_accum=16", "train.max_steps=400", "train.warmup_steps=40",
                      "train.max_lr=1.2e-3", "train.min_lr=1.2e-4", "train.eval_every=100", "train.eval_batches=40",
                      "train.checkpoint_every=100", "train.max_minutes=10.0", "data.vocab_size=32768",
                      "data.tokenizer_bytes=50000000"]
CAPSTONE_SFT = ["train.max_steps=300", "train.batch_size=16", "train.max_lr=1e-4", "train.min_lr=1e-5",
                "train.eval_every=50", "train.eval_batches=8", "train.checkpoint_every=100", "train.max_minutes=5.0",
                "train.progress=false"]
# Paths the capstone reads when none is given: the layout of the project's shared data, next to the checkout.
CAPSTONE_DATA = {"data": "../shared/data/pretrain/gutenberg", "sft": "../shared/data/sft",
                 "eval_data": "../shared/data/eval"}
SFT_FILES = ("alpaca_en_demo.json", "identity.json")   # what a --sft directory contributes (Alpaca format)
ROUTED = ("sft", "dpo", "eval", "prepare")


@dataclass
class EvalSettings:
    """`eval.KEY=VALUE`: which benchmark tasks run (where their files exist) and on how many items."""
    tasks: str = "wikitext2,hellaswag,arc_easy,arc_challenge,piqa,lambada"
    limit: int = 0          # first N items of each task (0: all of them)
    batch_size: int = 16


@dataclass
class Plan:
    capstone: bool
    run_preset: str
    run_overrides: list[str]
    sft_overrides: list[str]
    dpo_overrides: list[str]
    eval: EvalSettings = field(default_factory=EvalSettings)
    prepare: PrepareSettings = field(default_factory=PrepareSettings)


def route_overrides(overrides: list[str]) -> dict[str, list[str]]:
    """{"run": [...], "sft": [...], "dpo": [...], "eval": [...], "prepare": [...]}, each without its prefix."""
    routed: dict[str, list[str]] = {"run": [], **{k: [] for k in ROUTED}}
    for item in overrides:
        head, _, rest = item.partition(".")
        if head in ROUTED and rest:
            routed[head].append(rest)
        else:
            routed["run"].append(item)
    return routed


def make_plan(preset: str | None, overrides: list[str], cuda: bool) -> Plan:
    """The plan for `preset` (None: capstone with CUDA, tiny-cpu without) and the user's overrides."""
    preset = preset or (CAPSTONE if cuda else CPU_PRESET)
    routed = route_overrides(list(overrides))
    capstone = preset == CAPSTONE
    if capstone:
        run_preset, run_defaults, sft_defaults = CAPSTONE_MODEL, CAPSTONE_OVERRIDES, CAPSTONE_SFT
    else:
        run_preset, sft_defaults = preset, CPU_SFT
        run_defaults = {CPU_PRESET: CPU_OVERRIDES, "small": SMALL_OVERRIDES}.get(preset, [])
    return Plan(capstone=capstone, run_preset=run_preset, run_overrides=[*run_defaults, *routed["run"]],
                sft_overrides=[*sft_defaults, *routed["sft"]], dpo_overrides=["train.progress=false", *routed["dpo"]],
                eval=apply_overrides(EvalSettings(), routed["eval"]), prepare=prepare_settings(routed["prepare"]))
