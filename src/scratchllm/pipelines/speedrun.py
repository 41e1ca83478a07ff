"""`scratchllm speedrun`: raw text to a trained, evaluated, fine-tuned model and its report, in one command.

    default (CPU):  tokens -> pretrain -> evaluate -> sft -> OUT/report.md
    capstone (GPU): tokenizer -> data -> pretrain -> evaluate -> sft [-> dpo] -> OUT/report.md

(pipelines/plan.py says what each pipeline runs and with which settings.) Every stage is one
`pipelines.stages.Stage`: run again, the command skips what is complete, resumes a pretraining
or fine-tune that was cut off from its last checkpoint, and reruns what a changed setting
affects. OUT is the pretrained (base) run itself, so `scratchllm generate --run OUT` works;
the other stages write next to it:

    OUT/                 the base run (config.toml, checkpoints/, metrics.jsonl, tokenizer.json, tokens/)
    OUT/data/            capstone: tokenizer.json (stage tokenizer), tokens/ (stage data: shards, manifest, report)
    OUT/eval/            results.json, report.md (benchmarks; stage evaluate)
    OUT/sft/  OUT/dpo/   the fine-tuned runs;  OUT/sft-data.json, OUT/dpo-pairs.json: what they trained on
    OUT/stages/          one marker per stage;  OUT/report.md, OUT/loss.png: the report

    scratchllm speedrun                                   # -> runs/speedrun/report.md
    scratchllm speedrun --preset capstone --out runs/capstone --dpo ../shared/data/preference/dpo_en_demo.json

(tests/pipelines/ run both end to end with tiny sizes; a run takes minutes, so the example here
only plans one.)

>>> [s for s in stage_names(make_plan("capstone", [], cuda=True), dpo=True)]
['tokenizer', 'data', 'pretrain', 'evaluate', 'sft', 'dpo']
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from scratchllm.align.dpo_run import DpoRunConfig, dpo
from scratchllm.config import apply_overrides, dumps_toml, to_dict
from scratchllm.data import preference
from scratchllm.data import chat
from scratchllm.data.chat import read_records
from scratchllm.data.stdlib_sft import stdlib_function_records
from scratchllm.data.tokenize import read_meta, tokens_per_byte
from scratchllm.errors import UserError
from scratchllm.pipelines import capstone as cap
from scratchllm.pipelines.evaluate import evaluate_base, sft_samples
from scratchllm.pipelines.plan import CAPSTONE_DATA, SFT_FILES, Plan, make_plan
from scratchllm.pipelines.report import write_report
from scratchllm.pipelines.stages import Stage, StageRunner, StopAfter, completed_stages, remove
from scratchllm.train import checkpoint as ckpt
from scratchllm.train.config import resolve_run_config
from scratchllm.train.finetune import FinetuneRunConfig, finetune
from scratchllm.train.pretrain import prepare_data, pretrain
from scratchllm.train.tracking import read_metrics
from scratchllm.tokenizer.special import render_conversation
from scratchllm.utils.atomic import atomic_write_text
from scratchllm.utils.device import resolve_device
from scratchllm.utils.outdir import check_output_dir, removed_on_failure

# What the speedrun writes into OUT besides the base run's own entries.
SPEEDRUN_ENTRIES = (*ckpt.RUN_ENTRIES, "stages", "data", "eval", "sft", "sft-data.json", "dpo", "dpo-pairs.json")
# The base run's entries every finished pretraining has, removed before a fresh attempt (OUT/tokens
# belongs to stage tokens; run_info.json is rewritten by each attempt).
PRETRAIN_OUTPUTS = ("checkpoints", "config.toml", "metrics.jsonl", "tokenizer.json")


def stage_names(plan: Plan, dpo: bool) -> list[str]:
    head = ["tokenizer", "data"] if plan.capstone else ["tokens"]
    return [*head, "pretrain", "evaluate", "sft", *(["dpo"] if dpo else [])]


def speedrun(out: str | Path = "runs/speedrun", data: str | None = None, preset: str | None = None,
             overrides: list[str] = (), progress: bool = True, force: bool = False, verbose: bool = False,
             sft: str | None = None, dpo_pairs: str | None = None, eval_data: str | None = None,
             until: str | None = None) -> Path | None:
    """Run (or continue) every stage into `out`; returns the path of `out/report.md`.

    `until`: stop once that stage is complete (returns None; the next call carries on).
    `data`: raw text (the capstone: a directory of raw books); `sft`: conversations (a file, or a
    directory holding plan.SFT_FILES); `dpo_pairs`: preference pairs (DPO runs only when given);
    `eval_data`: the benchmark files' directory. The capstone defaults each path to the shared data.
    """
    out = check_output_dir(out, SPEEDRUN_ENTRIES, force=force)
    if ckpt.list_steps(out) and not (out / "stages").is_dir():
        raise UserError(f"'{out}' already holds a run that speedrun did not make; pass another --out "
                        "(or delete that directory) to run the speedrun")
    plan = make_plan(preset, list(overrides), torch.cuda.is_available())
    if plan.capstone:
        data, sft, eval_data = (data or CAPSTONE_DATA["data"], sft or CAPSTONE_DATA["sft"],
                                eval_data or CAPSTONE_DATA["eval_data"])
        if not Path(data).exists():
            raise UserError(f"raw books '{data}' do not exist; pass a directory of Gutenberg .jsonl[.xz] files "
                            "with --data")
    check_inputs(plan, sft, dpo_pairs, eval_data)
    names = stage_names(plan, bool(dpo_pairs))
    if until is not None and until not in names:
        raise UserError(f"--until {until} is not a stage of this speedrun; choose one of {', '.join(names)}")
    cfg = resolve_run_config(plan.run_preset, plan.run_overrides)
    if plan.capstone:
        cfg.data.path = str(out / "data" / "tokens")
    elif data is not None:
        cfg.data.path = data
    # A failure before any stage finished leaves nothing behind; after one, what is done stays for the rerun.
    with removed_on_failure(out, keep=lambda d: bool(completed_stages(d)) or bool(ckpt.list_steps(d))):
        try:
            return _run(StageRunner(out, until=until), plan, cfg, out, data, sft, dpo_pairs, eval_data, progress,
                        verbose)
        except StopAfter:
            return None


def check_inputs(plan: Plan, sft: str | None, dpo_pairs: str | None, eval_data: str | None) -> None:
    """Everything a later stage needs, checked before the first one starts (minutes of training)."""
    for flag, path in (("--sft", sft), ("--dpo", dpo_pairs), ("--eval-data", eval_data)):
        if path is not None and not Path(path).exists():
            raise UserError(f"{flag} '{path}' does not exist; pass an existing path (or leave {flag} out)")
    if eval_data is not None and not Path(eval_data).is_dir():
        raise UserError(f"--eval-data '{eval_data}' is a file; pass the directory that holds the benchmark files")
    apply_overrides(FinetuneRunConfig(), plan.sft_overrides)   # a misspelt sft.* / dpo.* key fails now
    apply_overrides(DpoRunConfig(), plan.dpo_overrides)


def _run(runner: StageRunner, plan: Plan, cfg, out: Path, data, sft, dpo_pairs, eval_data, progress: bool,
         verbose: bool) -> Path:
    if plan.capstone:
        _data_stages(runner, plan, cfg, out, data, progress)
    else:
        runner.run(Stage("tokens", {"data": vars(cfg.data)}, lambda resume: _tokens(cfg, out, progress),
                         outputs=(out / "tokens",)))
    token_dir = out / "data" / "tokens" if plan.capstone else out / "tokens"
    if not tokens_per_byte(read_meta(token_dir)):
        raise UserError(f"'{token_dir}/meta.json' has no byte count for the val split, so bits per byte cannot be "
                        "reported; pass raw text with --data (speedrun tokenizes it) instead")
    pre_inputs = ("data",) if plan.capstone else ("tokens",)
    runner.run(Stage("pretrain", _pretrain_settings(cfg), lambda resume: _pretrain(cfg, out, token_dir, resume,
                                                                                      progress, verbose),
                     outputs=tuple(out / n for n in PRETRAIN_OUTPUTS), inputs=pre_inputs, resumable=True))
    runner.run(Stage("evaluate", {"eval": vars(plan.eval), "eval_data": eval_data, "capstone": plan.capstone},
                     lambda resume: evaluate_base(out, token_dir, eval_data, plan.eval, prose=plan.capstone or bool(data)),
                     outputs=(out / "eval",) if eval_data else (), inputs=("pretrain",)))
    sft_file = out / "sft-data.json"
    runner.run(Stage("sft", {"data": sft, "overrides": plan.sft_overrides},
                     lambda resume: _sft(out, sft, sft_file, plan.sft_overrides, resume),
                     outputs=(out / "sft", sft_file), inputs=("pretrain",), resumable=True))
    if dpo_pairs:
        runner.run(Stage("dpo", {"data": dpo_pairs, "overrides": plan.dpo_overrides},
                         lambda resume: _dpo(out, dpo_pairs, plan.dpo_overrides, resume),
                         outputs=(out / "dpo", out / "dpo-pairs.json"), inputs=("sft",), resumable=True))
    final = out / ("dpo" if dpo_pairs else "sft")
    samples = sft_samples(out, out / "sft", sft_file)
    return write_report(out, runner=runner, config_toml=dumps_toml(cfg), metrics=read_metrics(out / "metrics.jsonl"),
                        tokens_per_byte=tokens_per_byte(read_meta(token_dir)), sft_samples=samples,
                        device=_device_name(cfg.train.device), final_run=final)


def _data_stages(runner: StageRunner, plan: Plan, cfg, out: Path, data: str, progress: bool) -> None:
    recipe = cap.capstone_recipe(data, plan.prepare)
    tok_path = out / "data" / "tokenizer.json"
    runner.run(Stage("tokenizer", {"data": data, "prepare": vars(plan.prepare), "vocab_size": cfg.data.vocab_size,
                                   "bytes": cfg.data.tokenizer_bytes},
                     lambda resume: cap.train_books_tokenizer(recipe, cfg.data.vocab_size, cfg.data.tokenizer_bytes,
                                                              tok_path, progress),
                     outputs=(tok_path,)))
    runner.run(Stage("data", {"recipe": dumps_toml(recipe)},
                     lambda resume: cap.prepare_books(recipe, tok_path, out / "data" / "tokens", progress),
                     outputs=(out / "data" / "tokens",), inputs=("tokenizer",)))


def _pretrain_settings(cfg) -> dict:
    """What the base run depends on: the resolved config, less the progress bar switch (--no-progress)."""
    settings = to_dict(cfg)
    settings["train"].pop("progress", None)
    return settings


def _tokens(cfg, out: Path, progress: bool) -> dict:
    meta = read_meta(prepare_data(cfg, out, progress))
    return {"vocab_size": meta["vocab_size"], "train_tokens": meta["splits"]["train"]["tokens"],
            "val_tokens": meta["splits"]["val"]["tokens"]}


def _pretrain(cfg, out: Path, token_dir: Path, resume: bool, progress: bool, verbose: bool) -> dict:
    # force: OUT also holds the other stages' outputs, which pretrain's own check would call foreign.
    result, model, _, cfg = pretrain(cfg, out, resume=resume, progress=progress, token_dir=token_dir, force=True,
                                     verbose=verbose)
    if result.interrupted:
        print(f"training was stopped; run the same speedrun command again to continue it (or: "
              f"scratchllm train --out {out} --resume)")
        raise KeyboardInterrupt
    meta = read_meta(token_dir)
    return {**result.final, "steps": result.step, "tokens": result.tokens, "wall_s": result.wall_s,
            "max_steps": cfg.train.max_steps, "params": model.num_params(),
            "params_non_embedding": model.num_params(exclude_embeddings=True),
            "tokens_per_s": result.tokens / max(result.wall_s, 1e-9), "train_tokens": meta["splits"]["train"]["tokens"],
            "val_tokens": meta["splits"]["val"]["tokens"], "val_bytes": meta["splits"]["val"]["bytes"],
            "data": cfg.data.path or "built-in corpus (Python stdlib)"}


def write_sft_data(sft: str | None, run_dir: Path, path: Path) -> dict:
    """The SFT conversations that fit the base's context, as one JSON file: the stdlib pairs (no `sft`), a
    file's records, or a directory's SFT_FILES. A cut conversation would teach replies that never end."""
    if sft is None:
        records, source = stdlib_function_records(), "standard library docstring -> function pairs"
    else:
        src = Path(sft)
        files = [src / n for n in SFT_FILES if (src / n).is_file()] if src.is_dir() else [src]
        if not files:
            raise UserError(f"SFT directory '{sft}' holds none of {', '.join(SFT_FILES)}; pass a conversations file "
                            "(.json or .jsonl) with --sft")
        records, source = [r for f in files for r in read_records(f)], ", ".join(str(f) for f in files)
    run = ckpt.load_run(run_dir)
    block, fmt = run.model.config.block_size, chat.detect_format(records[0])
    kept = [r for r in records if len(render_conversation(run.tokenizer, chat.to_messages(r, fmt))[0]) <= block + 1]
    if len(kept) < 2:
        raise UserError(f"{len(kept)} of {len(records)} SFT conversations fit model.block_size={block}; "
                        "train the base with a larger model.block_size (128 or more) or pass shorter conversations")
    atomic_write_text(path, json.dumps(kept))
    return {"conversations": len(kept), "dropped_too_long": len(records) - len(kept), "source": source}


def _continues(run_dir: Path, resume: bool) -> bool:
    """Whether a cut-off fine-tune continues: only from a checkpoint; without one it starts afresh."""
    if resume and ckpt.list_steps(run_dir):
        return True
    remove(run_dir)
    return False


def _sft(out: Path, sft: str | None, sft_file: Path, overrides: list[str], resume: bool) -> dict:
    resume = _continues(out / "sft", resume) and sft_file.is_file()
    made = {} if resume else write_sft_data(sft, out, sft_file)
    result, figures = finetune(str(out), str(sft_file), "full", out / "sft", overrides, resume=resume, quiet=True)
    if result.interrupted:
        raise KeyboardInterrupt
    return {**made, "base_val_loss": figures.get("base_val_loss"), "val_loss": result.final.get("val_loss"),
            "steps": result.step, "tokens": result.tokens, "wall_s": result.wall_s}


def write_fitting_pairs(pairs: str, run_dir: Path, path: Path) -> dict:
    """The preference records whose prompt leaves a quarter of the context for the replies, as one JSON file.

    The shared sets hold prompts of up to ~13k characters (several thousand tokens), which DPO refuses
    one by one; a pipeline drops them and says how many."""
    run = ckpt.load_run(run_dir)
    records = read_records(pairs)
    fmt = preference.detect_format(records[0])
    limit = run.model.config.block_size * 3 // 4
    kept = [r for r in records
            if len(render_conversation(run.tokenizer, preference.to_pair(r, fmt).prompt, for_completion=True)[0]) <= limit]
    if not kept:
        raise UserError(f"no pair of '{pairs}' has a prompt of at most {limit} tokens; pass shorter preference pairs")
    atomic_write_text(path, json.dumps(kept))
    return {"pairs": len(kept), "dropped_long_prompts": len(records) - len(kept), "source": pairs}


def _dpo(out: Path, pairs: str, overrides: list[str], resume: bool) -> dict:
    pairs_file = out / "dpo-pairs.json"
    resume = _continues(out / "dpo", resume) and pairs_file.is_file()
    made = {} if resume else write_fitting_pairs(pairs, out / "sft", pairs_file)
    result = dpo(str(out / "sft"), str(pairs_file), out / "dpo", overrides, resume=resume, quiet=True)
    if result.interrupted:
        raise KeyboardInterrupt
    return {**made, **{k: v for k, v in result.final.items() if isinstance(v, (int, float))}, "steps": result.step,
            "wall_s": result.wall_s}


def _device_name(setting: str) -> str:
    device = resolve_device(setting)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type}, {torch.get_num_threads()} threads ({os.cpu_count()} cores)"
