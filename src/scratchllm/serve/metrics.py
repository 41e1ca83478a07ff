"""The server's Prometheus metrics: requests by status, tokens in and out, queue depth, batch occupancy, TTFT, latency,
and with a draft model the speculative acceptance rate.

Each app has its own `CollectorRegistry`, so two apps in one process (tests, embedding) do not
share counters. Queue depth and occupancy are read from the scheduler when /metrics is
scraped, not pushed. It knows metric names and the scheduler's counts, not HTTP routes.

>>> m = ServeMetrics(lambda: 3, n_slots=2)
>>> m.requests.labels(route="/v1/completions", status="200").inc()
>>> b"scratchllm_queue_depth 1.0" in m.render()
True
"""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds: a tiny CPU model answers in milliseconds, a big one streaming a long reply in minutes.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class ServeMetrics:
    """The counters and histograms one app updates; `pending()` is the scheduler's waiting + running count."""

    def __init__(self, pending: Callable[[], int], n_slots: int, speculative: Callable | None = None):
        self.registry = r = CollectorRegistry()
        self.requests = Counter("scratchllm_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=r)
        self.prompt_tokens = Counter("scratchllm_prompt_tokens", "prompt tokens received", registry=r)
        self.completion_tokens = Counter("scratchllm_completion_tokens", "tokens generated", registry=r)
        self.ttft = Histogram("scratchllm_time_to_first_token_seconds", "submit to first token", buckets=_BUCKETS,
                              registry=r)
        self.latency = Histogram("scratchllm_request_latency_seconds", "request start to its last byte",
                                 ["route"], buckets=_BUCKETS, registry=r)
        # The scheduler admits a waiting request whenever a slot is free, so requests beyond the
        # slots are the queue, and those within them the occupied slots.
        Gauge("scratchllm_queue_depth", "requests waiting for a slot", registry=r).set_function(
            lambda: max(pending() - n_slots, 0))
        Gauge("scratchllm_batch_occupancy", "fraction of the decode batch's slots in use", registry=r).set_function(
            lambda: min(pending(), n_slots) / n_slots)
        if speculative is not None and speculative() is not None:     # served with a draft model
            Gauge("scratchllm_speculative_acceptance_rate", "drafts kept / drafts proposed", registry=r
                  ).set_function(lambda: speculative().acceptance_rate)
            Gauge("scratchllm_speculative_proposed", "draft tokens proposed", registry=r
                  ).set_function(lambda: speculative().proposed)
            Gauge("scratchllm_speculative_accepted", "draft tokens kept", registry=r
                  ).set_function(lambda: speculative().accepted)

    def render(self) -> bytes:
        return generate_latest(self.registry)
