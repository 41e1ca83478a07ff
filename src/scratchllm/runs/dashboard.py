"""The live training dashboard: a local FastAPI page of every run in a directory, no CDN.

`GET /` is `static/dashboard.html` (plain JS drawing on canvases); `GET /api/runs` returns,
for each run under the directory, its summary row, its metrics.jsonl records, its last
samples (samples.jsonl) and any evaluation results (`eval*.json` in the run). The page polls
that every two seconds, so curves grow while runs train. It reads files only: it never
touches a training process, and a run that appears later shows up on the next poll.

>>> import tempfile
>>> from fastapi.testclient import TestClient
>>> TestClient(make_app(tempfile.mkdtemp())).get("/api/runs").json()
{'runs': []}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from scratchllm.errors import UserError
from scratchllm.runs.summary import find_runs, summarize
from scratchllm.train.tracking import read_metrics

PAGE = Path(__file__).parent / "static" / "dashboard.html"
SAMPLES_SHOWN = 3


def _evals(run: Path) -> dict[str, Any]:
    out = {}
    for path in sorted(run.glob("eval*.json")):
        try:
            out[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # being written right now: the next poll reads it
    return out


def run_payload(run: Path) -> dict[str, Any]:
    summary = summarize(run)
    samples = read_metrics(run / "samples.jsonl") if (run / "samples.jsonl").is_file() else []
    return {"summary": {k: v for k, v in summary.items() if k != "info"}, "metrics": read_metrics(run / "metrics.jsonl"),
            "samples": samples[-SAMPLES_SHOWN:], "evals": _evals(run)}


def make_app(root: str | Path) -> FastAPI:
    app = FastAPI(title="scratchllm runs")

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    @app.get("/api/runs")
    def runs() -> dict[str, Any]:
        return {"runs": [run_payload(r) for r in find_runs(root)]}

    return app


def serve(root: str | Path, host: str = "127.0.0.1", port: int = 8050) -> None:
    if not Path(root).is_dir():
        raise UserError(f"'{root}' does not exist or is not a directory; pass the directory your runs live in")
    print(f"dashboard of {root} on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    uvicorn.run(make_app(root), host=host, port=port, log_level="warning")
