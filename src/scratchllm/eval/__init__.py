"""Evaluation: perplexity, multiple-choice and generative benchmarks, sandboxed code, reports.

The pieces, bottom up: `scoring` turns (context, continuation) token ids into log-likelihoods
with one batched forward; `lm` wraps a loaded run (or `endpoint` an OpenAI-compatible server)
behind three calls (loglikelihood, loglikelihood_rolling, generate); `tasks/` read each
benchmark's file layout into requests; `harness` runs tasks and `report` writes results.json
and report.md. Nothing here trains or changes a model.

>>> from scratchllm.eval.metrics import pass_at_k
>>> round(pass_at_k(n=10, c=3, k=1), 2)
0.3
"""
