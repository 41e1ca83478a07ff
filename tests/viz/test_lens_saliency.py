"""The logit lens and the attributions against what they must equal: the model's own output
distribution, transformers' ln_f + lm_head on its hidden states, completeness, sklearn's PCA."""

from __future__ import annotations

import pytest
import torch

from scratchllm.model.config import ModelConfig
from scratchllm.model.transformer import Transformer
from scratchllm.viz.embeddings import nearest, pca
from scratchllm.viz.logit_lens import lens_probs, lens_table
from scratchllm.viz.saliency import gradient_x_input, integrated_gradients

IDS = [5, 9, 2, 30, 7, 11]


@pytest.fixture(params=["gpt2", "llama-softcap"])
def model(request):
    torch.manual_seed(0)
    extra = {} if request.param == "gpt2" else dict(norm="rmsnorm", position="rope", mlp="swiglu", bias=False,
                                                    tie_embeddings=False, logit_softcap=15.0)
    m = Transformer(ModelConfig(n_layer=3, n_head=2, n_embd=32, vocab_size=64, block_size=16, **extra)).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(4.0)                                    # peaked, far from uniform (still smooth enough for IG)
    return m


def test_lens_at_the_last_layer_is_the_output_distribution(model):
    probs = lens_probs(model, IDS)
    assert probs.shape == (4, len(IDS), 64)
    with torch.no_grad():
        out = model(torch.tensor([IDS]))[0].softmax(-1)
    torch.testing.assert_close(probs[-1], out, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(probs[0], out, atol=1e-2)   # the embeddings alone predict something else
    table = lens_table(probs)
    assert table["final_ids"] == out.argmax(-1).tolist()
    assert table["final_prob"][-1] == pytest.approx(out.max(-1).values.tolist(), abs=1e-6)


def test_lens_matches_transformers_ln_f_and_lm_head():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(vocab_size=64, n_positions=16, n_embd=32, n_layer=2, n_head=4,
                                  bos_token_id=0, eos_token_id=0)
    torch.manual_seed(2)
    hf = transformers.GPT2LMHeadModel(cfg).eval()
    ours = Transformer(ModelConfig(n_layer=2, n_head=4, n_embd=32, vocab_size=64, block_size=16)).eval()
    state = {"tok_emb.weight": "transformer.wte.weight", "pos_emb.weight": "transformer.wpe.weight",
             "norm_f.weight": "transformer.ln_f.weight", "norm_f.bias": "transformer.ln_f.bias"}
    with torch.no_grad():
        hf.transformer.h = torch.nn.ModuleList()           # no blocks: the lens of the embeddings alone
        hf.config.n_layer = 0
        for ours_name, hf_name in state.items():
            hf.get_parameter(hf_name).normal_()
            ours.get_parameter(ours_name).copy_(hf.get_parameter(hf_name))
        ours.blocks = ours.blocks[:0]
        theirs = hf(torch.tensor([IDS])).logits[0].softmax(-1)
    torch.testing.assert_close(lens_probs(ours, IDS)[0], theirs, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("target", [17, 40])
def test_integrated_gradients_completeness(target, steps=128):
    # GPT-2 style: with learned positions the zero baseline is still a real input. (An RMSNorm model
    # without position embeddings sends all-zero rows through the norm, where it is steepest: the
    # same identity holds, but the Riemann sum needs far more steps; docs/visualize.md says so.)
    torch.manual_seed(0)
    model = Transformer(ModelConfig(n_layer=3, n_head=2, n_embd=32, vocab_size=64, block_size=16)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4.0)
    ig = integrated_gradients(model, IDS, target, steps=steps)
    gap = ig.f_input - ig.f_baseline
    assert abs(gap) > 0.1                                  # there is something to attribute
    err = abs(float(ig.attributions.sum()) - gap)
    coarse = abs(float(integrated_gradients(model, IDS, target, steps=4).attributions.sum()) - gap)
    assert err < 0.02 * abs(gap) + 1e-3, (err, gap)
    assert err <= coarse + 1e-6                            # the Riemann sum converges as steps grow
    with torch.no_grad():
        # f(x) comes from the batched interpolation path; its matmuls round differently from a batch of
        # one on other CPUs (CI's differed by 5e-5 relative with these ×4 weights), so 1e-4 relative.
        assert ig.f_input == pytest.approx(float(model(torch.tensor([IDS]))[0, -1, target]), rel=1e-4)


def test_gradient_x_input_against_finite_differences(model):
    target = 3
    gxi = gradient_x_input(model, IDS, target)
    emb = model.tok_emb.weight[IDS].detach().double()
    m = model.double()
    eps = 1e-5
    for i in (0, len(IDS) - 1):
        def f(scale):                                      # f((1+scale)·e_i): d/dscale at 0 = ∇f·e_i
            x = emb.clone()
            x[i] *= 1 + scale
            handle = m.tok_emb.register_forward_hook(lambda mod, a, out: x[None])
            try:
                with torch.no_grad():
                    return float(m(torch.tensor([IDS]))[0, -1, target])
            finally:
                handle.remove()
        numeric = (f(eps) - f(-eps)) / (2 * eps)
        assert float(gxi.attributions[i]) == pytest.approx(numeric, rel=1e-3, abs=1e-5)


def test_pca_matches_sklearn():
    decomposition = pytest.importorskip("sklearn.decomposition")
    w = torch.randn(50, 12, generator=torch.Generator().manual_seed(0)) * torch.linspace(3, 0.1, 12)
    ours = pca(w, 2).double()
    theirs = torch.from_numpy(decomposition.PCA(2).fit_transform(w.double().numpy()))
    signs = torch.sign((ours * theirs).sum(0))            # each component is defined up to its sign
    torch.testing.assert_close(ours * signs, theirs, atol=1e-5, rtol=1e-4)


def test_nearest_neighbours_by_cosine():
    w = torch.tensor([[1.0, 0.0], [10.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    assert [i for i, _ in nearest(w, 0, k=3)] == [1, 2, 3]
