"""The policy a preference or RL stage starts from: an SFT run's model, ready for the one loop.

DPO, GRPO and PPO all begin the same way: open the SFT run, insist on a BPE tokenizer (text
must be rendered), merge a LoRA SFT run (training fresh adapters on top of adapters is refused:
merge first), and wrap the model as the loop trains it — itself (`full`) or an adapter view
(`lora`, through `train/finetune.py`'s `adapt`), whose reference is the base with the adapters off.

>>> load_policy("runs/sft", "full", LoraConfig(), "GRPO")  # doctest: +SKIP
"""

from __future__ import annotations

from scratchllm.errors import UserError
from scratchllm.model.lora import LoraConfig, merge_lora
from scratchllm.tokenizer.bpe import Tokenizer
from scratchllm.train import checkpoint as ckpt
from scratchllm.train.finetune import FinetuneConfig, adapt, is_lora_run


def load_policy(sft: str, method: str, lora: LoraConfig, stage: str):
    """(tokenizer, the SFT model as the policy starts, the module the loop trains) for `stage` ("DPO", ...)."""
    run = ckpt.load_run(sft)
    if not isinstance(run.tokenizer, Tokenizer):
        raise UserError(f"SFT run '{sft}' has no BPE tokenizer.json; {stage} needs one to render text")
    model = run.model
    if is_lora_run(sft):
        if method == "lora":
            raise UserError(f"'{sft}' is a LoRA run; merge it first (scratchllm merge --run {sft} --out M) "
                            f"and run {stage} with LoRA on the merged run, or use {stage.lower()}.method=full")
        model = merge_lora(model)
    model.train()
    trainee = adapt(model, FinetuneConfig(method=method, base=sft, lora=lora))
    return run.tokenizer, model, trainee
