"""lm-evaluation-harness's `local-completions` model pointed at a live `scratchllm serve` runs a
log-likelihood task (multiple choice) and a generation task (generate_until) to the end, and its
scores equal `scratchllm eval --run` on the same run and items.

Oracle: lm-eval itself (0.4.x), its own request shapes, tokenization (`tokenizer_backend=remote`:
our /tokenizer_info, /tokenize, /detokenize) and metrics; offline, over local JSONL files through
custom YAML tasks (`dataset_path: json`).
"""

from __future__ import annotations

import json
import os
import random

import pytest

from scratchllm import load
from scratchllm.cli import main
from scratchllm.eval.lm import LocalLM
from scratchllm.eval.tasks import load_task

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
lm_eval = pytest.importorskip("lm_eval")
pytest.importorskip("aiohttp")              # lm-eval's API models need it (and requests, tenacity)

MC_YAML = """task: toy_mc
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
"""
# scratchllm's user generation task: stop at a newline, exact match after stripping whitespace,
# at most half the context (32 of 64 tokens) for the answer.
GEN_YAML = """task: toy_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 32
  do_sample: false
  temperature: 0
metric_list:
  - metric: exact_match
    regexes_to_ignore: ["^\\\\s+", "\\\\s+$"]
"""


def _corpus_lines() -> list[str]:
    # The tiny run was trained on the first 16 kB of os.py: questions from its lines.
    source = open(os.__file__, encoding="utf-8").read()[:16000]
    return [line.strip() for line in source.splitlines() if 12 <= len(line.strip()) <= 60]


def _mc_rows(lines: list[str], n: int) -> list[dict]:
    rng = random.Random(0)
    rows = []
    for line in rng.sample([line for line in lines if len(line.split()) >= 3], n):
        words = line.split()
        query, right = " ".join(words[:-1]), words[-1]
        wrong = [rng.choice(rng.choice(lines).split()) for _ in range(3)]
        choices = [right, *wrong]
        rng.shuffle(choices)
        rows.append({"query": query + (" " if len(rows) % 4 == 0 else ""),   # some trailing spaces, as lm-eval
                     "choices": choices, "gold": choices.index(right)})    # moves them into the continuation
    return rows


def _write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="module")
def files(tmp_path_factory, run_dir):
    tmp = tmp_path_factory.mktemp("lm_eval_server")
    lines = _corpus_lines()
    mc = tmp / "toy_mc.jsonl"
    _write_jsonl(mc, _mc_rows(lines, 20))
    # Generation: half the answers are the run's own greedy continuation (so exact match is not
    # trivially 0), half are wrong; both harnesses must score each item the same way.
    prompts = [line[: len(line) // 2] for line in random.Random(1).sample(lines, 8)]
    greedy = LocalLM(load(run_dir)).generate(prompts, ["\n"], 32)
    gen = tmp / "toy_gen.jsonl"
    _write_jsonl(gen, [{"prompt": p, "answer": g if i % 2 == 0 else g + " not this"}
                       for i, (p, g) in enumerate(zip(prompts, greedy))])
    tasks = tmp / "tasks"
    tasks.mkdir()
    (tasks / "toy_mc.yaml").write_text(MC_YAML.format(path=mc))
    (tasks / "toy_gen.yaml").write_text(GEN_YAML.format(path=gen))
    return {"mc": mc, "gen": gen, "tasks": tasks, "tmp": tmp}


@pytest.fixture(scope="module")
def theirs(live, files):
    from lm_eval.tasks import TaskManager

    args = f"model=m,base_url={live.url}/v1/completions,tokenizer_backend=remote,max_length=64"
    return lm_eval.simple_evaluate(model="local-completions", model_args=args, tasks=["toy_mc", "toy_gen"],
                                   task_manager=TaskManager(include_path=str(files["tasks"])), log_samples=True)


@pytest.fixture(scope="module")
def ours(run_dir, files):
    out = files["tmp"] / "eval"
    assert main(["eval", "--run", str(run_dir), "--tasks", f"{files['mc']},{files['gen']}", "--out", str(out),
                 "--device", "cpu"]) == 0
    return json.loads((out / "results.json").read_text())["tasks"]


def test_multiple_choice_scores_equal_scratchllm_eval(theirs, ours, files, run_dir):
    got = theirs["results"]["toy_mc"]
    for metric in ("acc", "acc_norm"):
        assert got[f"{metric},none"] == pytest.approx(ours["toy_mc"]["metrics"][metric], abs=1e-12), metric
    # and item by item: each option's log-likelihood and greedy flag, through the server
    lm = LocalLM(load(run_dir))
    task = load_task(str(files["mc"]))
    samples = sorted(theirs["samples"]["toy_mc"], key=lambda s: s["doc_id"])
    assert len(samples) == len(task.items) == 20
    want = lm.loglikelihood([(c, x) for it in task.items for c, x in zip(it.contexts, it.continuations)])
    served = [tuple(r) for s in samples for r in s["filtered_resps"]]
    assert len(served) == len(want)
    for (ll, greedy), (ll_server, greedy_server) in zip(want, served):
        assert float(ll_server) == pytest.approx(ll, abs=1e-4)
        assert bool(greedy_server) == greedy


def test_generation_scores_equal_scratchllm_eval(theirs, ours, files, run_dir):
    got = theirs["results"]["toy_gen"]["exact_match,none"]
    assert got == pytest.approx(ours["toy_gen"]["metrics"]["exact_match"], abs=1e-12) == 0.5
    rows = [json.loads(line) for line in files["gen"].read_text().splitlines()]
    greedy = LocalLM(load(run_dir)).generate([r["prompt"] for r in rows], ["\n"], 32)
    samples = sorted(theirs["samples"]["toy_gen"], key=lambda s: s["doc_id"])
    assert [s["resps"][0][0] for s in samples] == greedy     # the server's text is the run's own greedy text
