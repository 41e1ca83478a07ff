"""The memory planner's exact figures (weights, gradients, AdamW state) against a real tiny model's bytes."""

import torch

from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.train.config import TrainConfig
from scratchllm.train.memory import activation_bytes, format_plan, plan_memory, shard_elements
from scratchllm.train.optim import make_optimizer

CFG = ModelConfig(vocab_size=64, block_size=8, n_layer=2, n_head=2, n_embd=16)


def nbytes(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


def test_planned_state_bytes_equal_measured():
    torch.manual_seed(0)
    model = Transformer(CFG)
    optimizer = make_optimizer(model, TrainConfig())
    x = torch.randint(0, CFG.vocab_size, (4, CFG.block_size))
    model(x).float().logsumexp(-1).mean().backward()
    optimizer.step()
    single = plan_memory(CFG, batch_size=4)[0]
    assert single.params_bytes == nbytes(model.parameters())
    assert single.grads_bytes == nbytes(p.grad for p in model.parameters())
    assert single.optimizer_bytes == nbytes(t for s in optimizer.state.values() for t in s.values())


def test_fsdp_shards_rows_and_ddp_replicates():
    plan = {r.layout: r for r in plan_memory(CFG, batch_size=4, gpus=3)}
    assert plan["ddp"].params_bytes == plan["single"].params_bytes
    shapes = [p.shape for p in Transformer(CFG).parameters()]
    # torch.chunk is how FSDP2 cuts dim 0: rank 0 holds the largest piece
    rank0 = sum(torch.empty(s).chunk(3)[0].numel() for s in shapes)
    assert plan["fsdp"].params_bytes == 4 * rank0 == 4 * shard_elements(shapes, 3)
    assert plan["fsdp"].params_bytes < plan["single"].params_bytes / 2


def test_activation_estimate_follows_the_formula_and_checkpointing_saves():
    plain, ckpt = activation_bytes(CFG, rows=4, dtype_bytes=2)
    s, b, h, L, V = 8, 4, 16, 2, 64
    assert plain == L * 34 * s * b * h + s * b * V * 6
    assert ckpt < plain
    table = format_plan(plan_memory(CFG, 4, 2), gpu_mem_gib=1e-6)
    assert table.splitlines()[2].endswith("no") and "fsdp" in table


def test_adamw8bit_state_planned_equals_measured():
    from scratchllm.train.adamw8bit import AdamW8bit, state_bytes

    cfg = ModelConfig(vocab_size=128, block_size=8, n_layer=2, n_head=4, n_embd=64)
    model = Transformer(cfg)
    model(torch.randint(0, 128, (2, 8))).logsumexp(-1).mean().backward()
    optimizer = AdamW8bit(model.parameters())
    optimizer.step()
    plan = plan_memory(cfg, batch_size=2, optimizer="adamw8bit")[0]
    assert plan.optimizer_bytes == state_bytes(optimizer)
    assert plan.optimizer_bytes < plan_memory(cfg, batch_size=2)[0].optimizer_bytes / 3


def test_pipeline_stage_holds_its_blocks_and_its_end_of_the_model():
    cfg = ModelConfig(vocab_size=64, block_size=8, n_layer=3, n_head=2, n_embd=16, tie_embeddings=False)
    model = Transformer(cfg)
    names = dict(model.named_parameters())
    first = [n for n in names if n.startswith(("tok_emb", "pos_emb", "blocks.0.", "blocks.1."))]  # 3 blocks: 2 + 1
    last = [n for n in names if n.startswith(("blocks.2.", "norm_f", "lm_head"))]
    stage_bytes = {tuple(s): 4 * sum(names[n].numel() for n in s) for s in (first, last)}
    plan = {r.layout: r for r in plan_memory(cfg, batch_size=4, gpus=2, pp=2, grad_accum=2)}
    assert plan["pp"].params_bytes in stage_bytes.values()
    assert plan["pp"].params_bytes < plan["single"].params_bytes


def test_tensor_parallel_activations_follow_korthikanti():
    plain, _ = activation_bytes(CFG, rows=4, dtype_bytes=2, tp=2)
    sp, _ = activation_bytes(CFG, rows=4, dtype_bytes=2, tp=2, sequence_parallel=True)
    s, b, h, L, V = 8, 4, 16, 2, 64
    assert plain == L * (10 + 24 // 2) * s * b * h + s * b * V * 6
    assert sp == L * 34 * s * b * h // 2 + s * b * V * 6
