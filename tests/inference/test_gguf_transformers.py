"""A second oracle for GGUF export, one that runs everywhere: Hugging Face transformers' own GGUF loader
(`from_pretrained(..., gguf_file=...)`, which un-permutes llama's q/k and splits gpt2's fused qkv as
llama.cpp lays them out) reads our files back into its GPT2 / Llama models, whose logits must then be
ours; its GGUF tokenizer converter must split text into our ids.

transformers maps gpt2's context_length to n_ctx, not n_positions (its default 1024), so the GPT-2
case uses block_size 1024."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from quant_helpers import TEXT, train_tiny

from scratchllm.inference.gguf import export_gguf
from scratchllm.inference.quantize import quantize_rtn
from scratchllm.model.config import ModelConfig
from scratchllm.model.quant import QuantSpec
from scratchllm.tokenizer.bpe import Tokenizer
from scratchllm.train.checkpoint import save_run_weights

pytest.importorskip("gguf")
transformers = pytest.importorskip("transformers")

SHAPES = {"gpt2": dict(n_layer=2, n_head=2, n_embd=64, block_size=1024),
          "llama": dict(n_layer=2, n_head=4, n_kv_head=2, n_embd=64, block_size=64, norm="rmsnorm",
                        position="rope", mlp="swiglu", bias=False, tie_embeddings=False, mlp_hidden=128)}
SAMPLES = ["the quick brown fox", "  two  spaces\n\nnew lines\ttabs", "numbers 12345 and 3.14159!",
           "Unicode: café, naïve, 日本語", "it's we'll they've don't", "a stitch in time saves nine."]


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer.train([TEXT + " ".join(SAMPLES)], vocab_size=300, pattern="gpt2",
                           special_tokens={"<|endoftext|>": 300})


@pytest.fixture(scope="module", params=sorted(SHAPES))
def exported(request, tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp(request.param)
    model = train_tiny(ModelConfig(vocab_size=320, **SHAPES[request.param]), steps=60, tokenizer=tokenizer)
    save_run_weights(root / "run", model, tokenizer)
    for gguf_type in ("f16", "q8_0", "q4_0"):
        export_gguf(root / "run", root / f"{gguf_type}.gguf", gguf_type)
    return root, model


def hf_model(root, gguf_type):
    return transformers.AutoModelForCausalLM.from_pretrained(str(root), gguf_file=f"{gguf_type}.gguf").eval()


def ids_of(tokenizer, start=0):
    return torch.tensor([tokenizer.encode_ordinary(TEXT[start:start + 400])[:60]])


@torch.no_grad()
def test_f16_file_computes_our_logits(exported, tokenizer):
    root, model = exported
    ids = ids_of(tokenizer)
    theirs = hf_model(root, "f16")(ids).logits
    # exactly what the file holds: our model with its matrices rounded to fp16
    rounded = copy.deepcopy(model)
    for p in rounded.parameters():
        if p.dim() == 2 and p is not getattr(rounded, "pos_emb", torch.nn.Embedding(1, 1)).weight:
            p.copy_(p.half().float())
    torch.testing.assert_close(theirs, rounded(ids), rtol=0, atol=2e-4)
    assert (theirs - model(ids)).abs().max() <= 1e-2 * max(1.0, model(ids).abs().max().item() / 10)


def _ppl(model, ids):
    logits = model(ids)
    logits = logits.logits if hasattr(logits, "logits") else logits
    return math.exp(F.cross_entropy(logits[0, :-1], ids[0, 1:]).item())


@torch.no_grad()
@pytest.mark.parametrize("gguf_type,spec,limit", [("q8_0", QuantSpec(8), 0.02), ("q4_0", QuantSpec(4, 32), 0.15)])
def test_block_types_score_close_to_our_own_quantization(exported, tokenizer, gguf_type, spec, limit):
    root, model = exported
    ids = ids_of(tokenizer, start=1000)
    theirs = _ppl(hf_model(root, gguf_type), ids)
    ours_q = _ppl(quantize_rtn(copy.deepcopy(model), spec), ids)
    assert abs(theirs / ours_q - 1) < limit and abs(theirs / _ppl(model, ids) - 1) < limit


def test_gguf_tokenizer_splits_like_ours(exported, tokenizer):
    root, _ = exported
    theirs = transformers.AutoTokenizer.from_pretrained(str(root), gguf_file="f16.gguf")
    for text in SAMPLES:
        assert theirs.encode(text, add_special_tokens=False) == tokenizer.encode_ordinary(text), text
