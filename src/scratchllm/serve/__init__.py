"""Serving: the OpenAI-compatible HTTP API, health checks, metrics and the web chat page of one run.

    scratchllm serve --run runs/sft --port 8000

>>> from scratchllm.serve import create_app
>>> callable(create_app)
True
"""

from scratchllm.serve.app import build_app, create_app

__all__ = ["build_app", "create_app"]
