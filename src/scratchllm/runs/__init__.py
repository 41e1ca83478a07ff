"""Runs as a team sees them: list, show, compare, watch (the dashboard) and reproduce run directories.

This package reads what the loop wrote (`config.toml`, `metrics.jsonl`, `run_info.json`,
`samples.jsonl`, `checkpoints/`) and never writes into a run; `reproduce` writes a new one.

>>> from scratchllm.runs.summary import find_runs
>>> find_runs("/nonexistent")
[]
"""
