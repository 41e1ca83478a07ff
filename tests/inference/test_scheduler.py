"""Continuous batching: requests that arrive at different steps get what they would get alone."""

import threading

import pytest

from engine_helpers import STYLES, greedy_by_recomputation, prompts_of_mixed_lengths, tiny
from scratchllm.errors import UserError
from scratchllm.inference.engine import generate_batch
from scratchllm.inference.sampling import SamplingParams
from scratchllm.inference.scheduler import QueueFull, Scheduler
from scratchllm.inference.slots import Request

GREEDY = SamplingParams(temperature=0)


@pytest.mark.parametrize("style", STYLES)
def test_requests_arriving_at_different_steps_equal_the_oracle(style):
    model = tiny(style)
    prompts = prompts_of_mixed_lengths(7, seed=3) + [list(range(1, 21))]      # one prompt of 20: chunked
    budgets = [6, 3, 10, 1, 8, 5, 4, 6]
    arrivals = [0, 0, 1, 3, 3, 4, 9, 9]                                     # the step each one arrives at
    scheduler = Scheduler(model, n_slots=3, max_queue=8, prefill_budget=7)   # fewer slots than requests
    handles, step = {}, 0
    while len(handles) < len(prompts) or scheduler.pending():
        for i, at in enumerate(arrivals):
            if at == step:
                handles[i] = scheduler.submit(Request(prompts[i], budgets[i], GREEDY))
        scheduler.step()
        step += 1
    for i, h in handles.items():
        assert h.tokens == greedy_by_recomputation(model, prompts[i], budgets[i]), i
        assert h.finish_reason == "length"


def test_sampled_requests_match_the_static_batch_row_for_row():
    model = tiny("llama")
    requests = [Request(p, 8, SamplingParams(temperature=1.0, top_p=0.8, seed=i))
                for i, p in enumerate(prompts_of_mixed_lengths(4, seed=5))]
    expected = [s.generated for s in generate_batch(model, requests)]
    scheduler = Scheduler(model, n_slots=2, prefill_budget=3)
    handles = [scheduler.submit(r) for r in requests]
    while scheduler.step():
        pass
    assert [h.tokens for h in handles] == expected


def test_a_full_queue_refuses_and_cancel_frees_the_slot():
    model = tiny("gpt2")
    scheduler = Scheduler(model, n_slots=1, max_queue=2)
    long_one = scheduler.submit(Request([1, 2], 25, GREEDY))
    waiting = scheduler.submit(Request([3], 4, GREEDY))
    with pytest.raises(QueueFull, match="max_queue=2"):
        scheduler.submit(Request([4], 4, GREEDY))
    scheduler.step()                                   # the first takes the one slot
    scheduler.cancel(long_one)
    while scheduler.step():
        pass
    assert long_one.finish_reason == "cancelled" and len(long_one.tokens) < 25
    assert waiting.tokens == greedy_by_recomputation(model, [3], 4)
    with pytest.raises(UserError, match="block_size=32"):
        scheduler.submit(Request(list(range(40)), 4, GREEDY))


def test_the_background_thread_streams_tokens_and_events():
    model = tiny("gpt2")
    scheduler = Scheduler(model, n_slots=2).start()
    seen, ended = [], threading.Event()

    def on_event(handle, token, reason):
        seen.append(token)
        if reason is not None:
            ended.set()

    try:
        streamed = scheduler.submit(Request([5, 6], 6, GREEDY))
        scheduler.submit(Request([7], 3, GREEDY), on_event=on_event)
        assert list(streamed) == greedy_by_recomputation(model, [5, 6], 6)
        assert ended.wait(10) and [t for t in seen if t is not None] == greedy_by_recomputation(model, [7], 3)
    finally:
        scheduler.stop()
