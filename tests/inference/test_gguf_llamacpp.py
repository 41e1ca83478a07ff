"""The oracle for GGUF export: llama.cpp itself (through llama-cpp-python) loads our files, splits text into
the same token ids as our tokenizer, and computes the same logits (f16) or a perplexity close to our own
int8 / int4 of the same weights (q8_0 / q4_0).

llama-cpp-python builds llama.cpp from source at install time (`pip install 'scratchllm[gguf-test]'`);
without it these tests skip."""

import copy
import math

import numpy as np
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

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 'scratchllm[gguf-test]')")

SAMPLES = ["the quick brown fox", "  two  spaces\n\nnew lines\ttabs", "numbers 12345 and 3.14159!",
           "Unicode: café, naïve, 日本語, emoji 🙂", "it's we'll they've don't I'M", "a stitch in time saves nine."]
SHAPES = {"gpt2": dict(n_layer=2, n_head=2, n_embd=64, block_size=64),
          "llama": dict(n_layer=2, n_head=4, n_kv_head=2, n_embd=64, block_size=64, norm="rmsnorm",
                        position="rope", mlp="swiglu", bias=False, tie_embeddings=False, mlp_hidden=128)}


def tokenizer(pattern: str) -> Tokenizer:
    return Tokenizer.train([TEXT + " ".join(SAMPLES)], vocab_size=300, pattern=pattern,
                           special_tokens={"<|endoftext|>": 300})


def llama(path):
    return llama_cpp.Llama(model_path=str(path), n_ctx=64, n_threads=1, logits_all=True, verbose=False)


def llama_logits(llm, ids):
    llm.reset()
    llm.eval(ids)
    return np.array(llm.scores[: len(ids)])


@pytest.fixture(scope="module", params=sorted(SHAPES))
def exported(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    tok = tokenizer("gpt2")
    cfg = ModelConfig(vocab_size=320, **SHAPES[request.param])
    model = train_tiny(cfg, steps=80, tokenizer=tok)
    save_run_weights(root / "run", model, tok)
    files = {}
    for gguf_type in ("f16", "q8_0", "q4_0"):
        files[gguf_type] = root / f"m-{gguf_type}.gguf"
        export_gguf(root / "run", files[gguf_type], gguf_type)
    return model, tok, files


def test_f16_logits_match_ours(exported):
    model, tok, files = exported
    llm = llama(files["f16"])
    ids = tok.encode_ordinary(TEXT[:200])[:60]
    ours = model(torch.tensor([ids]))[0].detach().numpy()
    theirs = llama_logits(llm, ids)
    assert theirs.shape == ours.shape
    assert np.abs(theirs - ours).max() <= 1e-2 * max(1.0, np.abs(ours).max() / 10)
    assert (theirs.argmax(-1) == ours.argmax(-1)).mean() > 0.95


@pytest.mark.parametrize("pattern", ["gpt2", "gpt4", "o200k"])
def test_llamacpp_tokenizes_like_our_tokenizer(tmp_path, pattern):
    tok = tokenizer(pattern)
    save_run_weights(tmp_path / "run", train_tiny(ModelConfig(vocab_size=320, **SHAPES["gpt2"]), steps=1), tok)
    export_gguf(tmp_path / "run", tmp_path / "m.gguf")
    llm = llama(tmp_path / "m.gguf")
    for text in SAMPLES:
        assert llm.tokenize(text.encode(), add_bos=False, special=False) == tok.encode_ordinary(text), text


def _ppl(logits, ids):
    return math.exp(F.cross_entropy(torch.as_tensor(logits[:-1]), torch.tensor(ids[1:])).item())


@pytest.mark.parametrize("gguf_type,spec,limit", [("q8_0", QuantSpec(8), 0.02), ("q4_0", QuantSpec(4, 32), 0.15)])
def test_block_types_score_close_to_our_own_quantization(exported, gguf_type, spec, limit):
    model, tok, files = exported
    ids = tok.encode_ordinary(TEXT[1000:1400])[:64]
    theirs = _ppl(llama_logits(llama(files[gguf_type]), ids), ids)
    ours_fp = _ppl(model(torch.tensor([ids]))[0].detach().numpy(), ids)
    q = quantize_rtn(copy.deepcopy(model), spec)
    ours_q = _ppl(q(torch.tensor([ids]))[0].detach().numpy(), ids)
    assert abs(theirs / ours_q - 1) < limit and abs(theirs / ours_fp - 1) < limit
