"""Batched generation: a row's output never depends on the batch; per-row settings; finish reasons."""

import pytest
import torch

from engine_helpers import STYLES, greedy_by_recomputation, prompts_of_mixed_lengths, tiny
from scratchllm.inference.decode_step import DecodeStep
from scratchllm.inference.engine import Request, SamplingParams, generate, generate_batch, generate_texts, generate_text
from scratchllm.tokenizer.bpe import Tokenizer

GREEDY = SamplingParams(temperature=0)


@pytest.mark.parametrize("style", STYLES)
def test_batched_greedy_equals_one_at_a_time_oracle(style):
    model = tiny(style)
    prompts = prompts_of_mixed_lengths(5)
    budgets = [9, 4, 12, 1, 7]
    seqs = generate_batch(model, [Request(p, n, GREEDY) for p, n in zip(prompts, budgets)])
    for p, n, s in zip(prompts, budgets, seqs):
        assert s.generated == greedy_by_recomputation(model, p, n)
        assert s.finish_reason == "length"


def test_a_seeded_row_samples_the_same_alone_or_in_any_batch():
    model = tiny("llama")
    mine = Request([5, 6, 7], 15, SamplingParams(temperature=1.0, top_k=20, top_p=0.9, seed=42))
    alone = generate_batch(model, [mine])[0].generated
    others = [Request(p, 10, SamplingParams(temperature=1.3, seed=i)) for i, p in enumerate(prompts_of_mixed_lengths(3))]
    crowded = generate_batch(model, others[:2] + [mine] + others[2:])[2].generated
    assert alone == crowded
    assert generate_batch(model, [Request([5, 6, 7], 15, SamplingParams(1.0, 20, 0.9, seed=43))])[0].generated != alone


def test_stop_ids_and_budgets_per_row():
    model = tiny("gpt2")
    full = greedy_by_recomputation(model, [1, 2], 12)
    stop = full[5]
    seqs = generate_batch(model, [Request([1, 2], 12, GREEDY, (stop,)), Request([1, 2], 3, GREEDY),
                                  Request([1, 2], 0, GREEDY)])
    assert seqs[0].generated == full[:full.index(stop)] and seqs[0].finish_reason == "stop"
    assert seqs[1].generated == full[:3] and seqs[1].finish_reason == "length"
    assert seqs[2].generated == [] and seqs[2].finish_reason == "length"


@pytest.mark.parametrize("style", STYLES)
def test_a_full_context_ends_with_reason_context(style):
    model = tiny(style)
    prompt = list(range(1, 29))                                   # 28 of 32 positions
    stream = generate(model, prompt, 100, temperature=0)
    out = list(stream)
    assert out == greedy_by_recomputation(model, prompt, 5) and stream.finish_reason == "context"


@pytest.mark.parametrize("style", STYLES)
def test_sliding_window_recomputes_the_cache_and_goes_past_the_context(style):
    model = tiny(style)
    prompt = list(range(1, 20))
    stream = generate(model, prompt, 50, temperature=0, sliding_window=True)
    out = list(stream)
    assert stream.finish_reason == "length"
    assert out == greedy_by_recomputation(model, prompt, 50, window=32, keep=24)


@pytest.mark.parametrize("style", STYLES)
def test_the_fixed_shape_decode_step_equals_the_plain_cached_forward(style):
    """The step a CUDA graph would capture (all slots, ragged mask, in-place lengths), run eagerly."""
    model = tiny(style)
    prompt = [3, 1, 4, 1, 5]
    plain = model.make_kv_cache()
    with torch.no_grad():
        logits = model(torch.tensor([prompt]), kv_cache=plain)[:, -1]
        ragged = model.make_kv_cache(batch_size=3)
        ragged.set_lengths(torch.zeros(3))
        model(torch.tensor([prompt]), kv_cache=ragged.rows(1, 2))      # the prompt sits in slot 1
        step = DecodeStep(model, ragged)
        step.decoding[1] = True
        for _ in range(10):
            token = logits.argmax(-1)
            step.tokens[1, 0] = token
            logits = model(token[:, None], kv_cache=plain)[:, -1]
            stepped = step()
            torch.testing.assert_close(stepped[1:2], logits, atol=1e-5, rtol=1e-5)
        assert ragged.lengths.tolist() == [0, 15, 0]                   # only the decoding row moved


def test_the_step_feeds_greedy_rows_their_argmax_within_the_vocabulary_and_leaves_other_rows():
    model = tiny("gpt2")

    def one_step(vocab_size):
        cache = model.make_kv_cache(batch_size=3)
        cache.set_lengths(torch.tensor([2, 2, 0]))
        step = DecodeStep(model, cache, vocab_size=vocab_size)
        step.tokens[:, 0] = torch.tensor([7, 8, 9])
        step.decoding[:2] = True
        with torch.no_grad():
            return step(), step.tokens[:, 0].tolist()

    logits, fed = one_step(None)
    assert fed[:2] == logits[:2].argmax(-1).tolist() and fed[2] == 9    # row 2 is not decoding: kept
    vocab = int(logits[0].argmax()) or 1                                # below row 0's unmasked choice
    logits, fed = one_step(vocab)
    assert fed[:2] == logits[:2, :vocab].argmax(-1).tolist() and fed[0] < vocab and fed[2] == 9


def test_greedy_and_sampled_rows_mixed_in_one_batch_equal_each_alone():
    model = tiny("llama")
    prompts = prompts_of_mixed_lengths(4)
    settings = [GREEDY, SamplingParams(temperature=1.0, seed=3), GREEDY, SamplingParams(temperature=0.7, seed=9)]
    together = generate_batch(model, [Request(p, 8, s) for p, s in zip(prompts, settings)], vocab_size=40)
    for p, s, seq in zip(prompts, settings, together):
        assert seq.generated == generate_batch(model, [Request(p, 8, s)], vocab_size=40)[0].generated
        assert max(seq.generated) < 40


def test_texts_in_one_batch_equal_each_alone_with_stop_strings():
    torch.manual_seed(0)
    tokenizer = Tokenizer({bytes([i]): i for i in range(256)}, "gpt2", {"<|endoftext|>": 256})
    model = tiny("gpt2", vocab_size=264, block_size=64)
    prompts = ["Hi", "Hello there", "x"]
    alone = ["".join(generate_text(model, tokenizer, p, 20, temperature=0)) for p in prompts]
    stop = alone[1][3:5]
    settings = [dict(max_new_tokens=20, temperature=0), dict(max_new_tokens=20, temperature=0, stop=[stop]),
                dict(max_new_tokens=20, temperature=0)]
    rows = generate_texts(model, tokenizer, prompts, settings)
    assert [r["prompt"] for r in rows] == prompts
    assert rows[0]["text"] == alone[0] and rows[2]["text"] == alone[2]
    assert rows[1]["text"] == alone[1][:alone[1].index(stop)] and rows[1]["finish_reason"] == "stop"
    assert rows[0]["finish_reason"] == "length"
