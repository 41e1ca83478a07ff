"""`scratchllm quantize` as a function: a run directory in, a quantized run directory out, with a report.

The output is a run like any other (config.toml, tokenizer.json, checkpoints/step-N) whose
state.json says `"kind": "quantized"` and how (bits, group size, method), so `scratchllm.load`,
`generate`, `chat` and the evaluator open it through `load_run` unchanged. The directory is
built under a temporary name and appears only when complete.

The report gives both weight files' sizes and the perplexity before and after on the same
tokens: `eval_text` if given, else the run's own held-out split (OUT/tokens/val*), else the
calibration text (then GPTQ is scored on what it fitted, which flatters it a little; say so).

Boundary: reading text, batching it, scoring and writing files. The codes themselves come from
inference/quantize.py; the formats from model/quant.py.

>>> r = quantize_run("runs/tiny", "runs/tiny-int4", QuantSpec(bits=4, group_size=128))   # doctest: +SKIP
>>> r.size_after / r.size_before, r.ppl_before, r.ppl_after                           # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from scratchllm.config import dumps_toml
from scratchllm.data.loader import val_windows, window_batches
from scratchllm.data.sources import read_texts
from scratchllm.errors import UserError
from scratchllm.inference.quantize import quantize_model
from scratchllm.model.quant import QuantizedLinear, QuantSpec, spec_state
from scratchllm.train.checkpoint import load_run, save_checkpoint
from scratchllm.train.step import evaluate, next_token_loss
from scratchllm.utils.atomic import atomic_directory, atomic_write_text

MAX_TEXT_BYTES = 4_000_000   # read at most this much calibration / evaluation text


@dataclass
class QuantizeReport:
    out: Path
    spec: QuantSpec
    size_before: int            # bytes of model.safetensors
    size_after: int
    ppl_before: float | None    # None when there was no text to score
    ppl_after: float | None
    eval_tokens: int
    eval_source: str

    def lines(self) -> list[str]:
        what = f"int{self.spec.bits}" + (f" g{self.spec.group_size}" if self.spec.group_size else "") + f" {self.spec.method}"
        out = [f"quantized -> {self.out} ({what})",
               f"weights: {self.size_before / 1e6:.2f} MB -> {self.size_after / 1e6:.2f} MB "
               f"({self.size_after / self.size_before:.1%})"]
        if self.ppl_before is not None:
            out.append(f"perplexity on {self.eval_tokens:,} tokens of {self.eval_source}: {self.ppl_before:.3f} -> "
                       f"{self.ppl_after:.3f} ({self.ppl_after / self.ppl_before - 1:+.2%})")
        return out


def text_windows(path: str, tokenizer, block_size: int, max_windows: int, what: str) -> torch.Tensor:
    """Non-overlapping [n, block_size+1] windows of a text file's tokens (documents joined by end-of-text)."""
    if not Path(path).exists():
        raise UserError(f"{what} file '{path}' does not exist; pass a text file (.txt, .jsonl, ...) that does")
    ids: list[int] = []
    sep = [tokenizer.eot_id] if tokenizer.eot_id is not None else []
    for text in read_texts([path], max_bytes=MAX_TEXT_BYTES):
        ids += sep + tokenizer.encode_ordinary(text)
    n = min(len(ids) // (block_size + 1), max_windows)
    if n == 0:
        raise UserError(f"{what} file '{path}' has {len(ids)} tokens, fewer than one window of "
                        f"{block_size + 1}; give it more text")
    return torch.tensor(ids[: n * (block_size + 1)]).view(n, block_size + 1)


def held_out_windows(run_dir: Path, config, max_windows: int) -> torch.Tensor | None:
    """The run's own validation windows, when its token directory is still there."""
    for token_dir in (run_dir / "tokens", Path(config.data.path or "")):
        if (token_dir / "meta.json").is_file() and any(token_dir.glob("val*")):
            return val_windows(token_dir, config.model.block_size, max_windows)
    return None


def perplexity(model: torch.nn.Module, windows: torch.Tensor, device: torch.device, batch_size: int = 8) -> float:
    """exp of the mean next-token loss over the windows (every target token counts once)."""
    scores = evaluate(model, window_batches(windows.to(device), batch_size), next_token_loss, device, "float32")
    return math.exp(scores["loss"])


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out '{out}' already exists and is not empty; choose a new directory or delete it")


def quantize_run(run_dir: str | Path, out: str | Path, spec: QuantSpec, calib: str | None = None,
                 eval_text: str | None = None, step: int | None = None, device: str = "cpu",
                 calib_windows: int = 128, eval_windows: int = 64) -> QuantizeReport:
    """Quantize a run's newest (or `step`) checkpoint into a new run directory `out`; see the module docstring."""
    run_dir, out, device = Path(run_dir), Path(out), torch.device(device)
    _check_out(out)
    if spec.method == "gptq" and not calib:
        raise UserError("--method gptq needs calibration text; pass --calib FILE (a few hundred KB of text like the training data)")
    run = load_run(run_dir, step=step, device=str(device))
    if any(isinstance(m, QuantizedLinear) for m in run.model.modules()):
        raise UserError(f"run '{run_dir}' is already quantized; quantize the full-precision run it was made from instead")
    if run.tokenizer is None:
        raise UserError(f"run '{run_dir}' has no tokenizer.json, so text cannot be encoded; copy the training tokenizer into it")
    block = run.config.model.block_size
    calib_ids = text_windows(calib, run.tokenizer, block, calib_windows, "calibration") if calib else None
    windows, source = None, ""
    if eval_text:
        windows, source = text_windows(eval_text, run.tokenizer, block, eval_windows, "--eval-text"), eval_text
    elif (windows := held_out_windows(run_dir, run.config, eval_windows)) is not None:
        source = "the run's held-out split"
    elif calib_ids is not None:
        windows, source = calib_ids[:eval_windows], f"{calib} (the calibration text itself)"
    ppl_before = perplexity(run.model, windows, device) if windows is not None else None
    calib_batches = None if calib_ids is None else list(calib_ids[:, :-1].to(device).split(8))
    model = quantize_model(run.model, spec, calib_batches)
    ppl_after = perplexity(model, windows, device) if windows is not None else None
    model.cpu()
    with atomic_directory(out) as tmp:
        atomic_write_text(tmp / "config.toml", dumps_toml(run.config))
        run.tokenizer.save(str(tmp / "tokenizer.json"))
        ckpt = save_checkpoint(tmp, run.step, model, state={**spec_state(spec), "source_run": str(run_dir),
                                                           "source_step": run.step})
        size_after = (ckpt / "model.safetensors").stat().st_size
    size_before = (run_dir / "checkpoints" / ckpt.name / "model.safetensors").stat().st_size
    return QuantizeReport(out, spec, size_before, size_after, ppl_before, ppl_after,
                          0 if windows is None else windows[:, 1:].numel(), source)
