"""Oracle: lm-evaluation-harness (`--model hf`) on our tiny model exported to Hugging Face format,
against our harness on the same items: log-likelihoods within 1e-4, accuracies identical, rolling
perplexities equal. Offline: local JSONL through lm-eval's `dataset_path: json`."""

from __future__ import annotations

import json
import math
import os

import pytest
from eval_helpers import make_run, mc_rows, text_rows, write_jsonl

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
lm_eval = pytest.importorskip("lm_eval")

from scratchllm import load  # noqa: E402
from scratchllm.eval.harness import score_mc, score_rolling  # noqa: E402
from scratchllm.eval.lm import LocalLM  # noqa: E402
from scratchllm.eval.tasks import load_task  # noqa: E402
from scratchllm.eval.tasks.text import text_item  # noqa: E402
from scratchllm.interop.hf import export_hf  # noqa: E402

MC_YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{query}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{gold}}}}"
metric_list:
  - metric: acc
  - metric: acc_norm
  - metric: acc_bytes
"""
ROLLING_YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{{{text}}}}"
metric_list:
  - metric: word_perplexity
  - metric: byte_perplexity
  - metric: bits_per_byte
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("oracle")
    run = make_run(tmp / "run", block_size=64)
    hf = export_hf(run, tmp / "hf")
    files = {"toy_mc4": write_jsonl(tmp / "toy_mc4.jsonl", mc_rows(30, 4, seed=1)),
             "toy_mc2": write_jsonl(tmp / "toy_mc2.jsonl", mc_rows(30, 2, seed=2)),
             "toy_text": write_jsonl(tmp / "toy_text.jsonl", text_rows(6, seed=3))}
    tasks_dir = tmp / "tasks"
    tasks_dir.mkdir()
    for name, path in files.items():
        template = ROLLING_YAML if name == "toy_text" else MC_YAML
        (tasks_dir / f"{name}.yaml").write_text(template.format(name=name, path=path))
    from lm_eval.tasks import TaskManager

    theirs = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={hf},dtype=float32", tasks=list(files),
                                     task_manager=TaskManager(include_path=str(tasks_dir)), batch_size=8,
                                     device="cpu", log_samples=True)
    return LocalLM(load(run), batch_size=8), files, theirs


@pytest.mark.parametrize("name", ["toy_mc4", "toy_mc2"])
def test_multiple_choice_matches_lm_eval(setup, name):
    lm, files, theirs = setup
    task = load_task(str(files[name]))
    samples = sorted(theirs["samples"][name], key=lambda s: s["doc_id"])
    assert len(samples) == len(task.items) == 30
    pairs = [(c, x) for it in task.items for c, x in zip(it.contexts, it.continuations)]
    ours = lm.loglikelihood(pairs)
    want = [tuple(r) for s in samples for r in s["filtered_resps"]]
    assert len(ours) == len(want)
    for (ll, greedy), (ll_hf, greedy_hf) in zip(ours, want):
        assert abs(ll - float(ll_hf)) <= 1e-4
        assert greedy == bool(greedy_hf)
    metrics, _ = score_mc(lm, task.items)
    got = theirs["results"][name]
    for metric in ("acc", "acc_norm", "acc_bytes"):
        assert metrics[metric] == pytest.approx(got[f"{metric},none"], abs=1e-12), metric


def test_rolling_perplexity_matches_lm_eval(setup):
    lm, files, theirs = setup
    texts = [json.loads(line)["text"] for line in files["toy_text"].read_text().splitlines()]
    samples = sorted(theirs["samples"]["toy_text"], key=lambda s: s["doc_id"])
    ours = lm.loglikelihood_rolling(texts)
    assert any(len(lm.encode(t)) > 3 * lm.max_length for t in texts)   # several windows really roll
    for ll, s in zip(ours, samples):
        assert abs(ll - float(s["filtered_resps"][0])) <= 1e-4 * max(1.0, abs(ll) / 100)
    metrics, _ = score_rolling(lm, [text_item(t) for t in texts])
    got = theirs["results"]["toy_text"]
    for metric in ("word_perplexity", "byte_perplexity", "bits_per_byte"):
        assert math.isclose(metrics[metric], got[f"{metric},none"], rel_tol=1e-5), metric
