"""`scratchllm speedrun --preset capstone` end to end on CPU, tiny: raw Gutenberg books -> tokenizer -> data
prepare -> pretrain -> benchmarks -> SFT on the shared Alpaca/identity set -> DPO -> report -> a served result."""

import json
import socket

import pytest

from shared_data import require_shared

import scratchllm
from scratchllm.cli import main
from scratchllm.data.mix import unit_hash
from scratchllm.data.sources import read_documents
from scratchllm.pipelines.serving import health_ok, start_server
from scratchllm.train.finetune import is_chat_run

TINY = ["model.n_layer=1", "model.n_head=2", "model.n_embd=32", "model.block_size=128", "train.batch_size=4",
        "train.grad_accum=1", "train.max_steps=6", "train.warmup_steps=2", "train.eval_every=3",
        "train.eval_batches=2", "train.compile=false", "data.vocab_size=512", "data.tokenizer_bytes=100000000",
        "prepare.books=5", "prepare.workers=1", "prepare.tokens=0", "eval.limit=8",
        "sft.train.max_steps=3", "sft.train.eval_every=3", "sft.train.eval_batches=1", "sft.train.batch_size=4",
        "dpo.train.max_steps=2", "dpo.train.eval_every=2", "dpo.train.eval_batches=1", "dpo.train.batch_size=2"]
STAGES = ["tokenizer", "data", "pretrain", "evaluate", "sft", "dpo"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_capstone_runs_every_stage_and_serves_the_result(tmp_path, capsys):
    books, sft, evals = (require_shared("pretrain/gutenberg"), require_shared("sft/alpaca_en_demo.json").parent,
                         require_shared("eval/hellaswag_val_full.txt.bz2").parent)
    pairs = tmp_path / "pairs.json"   # short pairs: the shared sets' prompts are longer than a 128-token context
    pairs.write_text(json.dumps([{"prompt": f"Name colour {i}.", "chosen": "Blue.", "rejected": "No."} for i in range(40)]
                                + [{"prompt": "long " * 300, "chosen": "a", "rejected": "b"}]))
    out = tmp_path / "cap"
    argv = ["speedrun", "--preset", "capstone", "--out", str(out), "--no-progress", "--data", str(books),
            "--sft", str(sft), "--eval-data", str(evals), "--dpo", str(pairs), *TINY]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert [line.split(":")[0][6:] for line in printed.splitlines() if line.startswith("stage ")] == STAGES

    # tokenizer and data: the held-out books are val, and the tokenizer never read one of them
    manifest = json.loads((out / "data" / "tokens" / "manifest.json").read_text())
    data = json.loads((out / "stages" / "data.json").read_text())["figures"]
    tok = json.loads((out / "stages" / "tokenizer.json").read_text())["figures"]
    assert data["books_read"] == 5 and data["val_books"] >= 1 and data["train_books"] >= 1
    ids = [d.id for d in read_documents([str(books)], limit=5)]
    held = [i for i in ids if unit_hash(manifest["recipe"]["seed"], "val:" + i) < manifest["recipe"]["val_fraction"]]
    assert tok["books"] == 5 - len(held)
    assert scratchllm.load(out).config.data.path == str(out / "data" / "tokens")

    # evaluation: every task whose file exists, next to chance and the published figures
    results = json.loads((out / "eval" / "results.json").read_text())
    assert sorted(results["tasks"]) == sorted(["wikitext2", "hellaswag", "arc_easy", "arc_challenge", "piqa", "lambada"])
    assert all(e["n"] == 8 for e in results["tasks"].values())
    report = (out / "report.md").read_text()
    for needle in ("## Benchmarks", "GPT-2 124M 0.2955", "## Fine-tuning (SFT)", "## DPO", "## What did not",
                   "| tokenizer |", "| dpo |", "alpaca_en_demo.json"):
        assert needle in report, needle
    assert is_chat_run(out / "sft") and is_chat_run(out / "dpo")
    dpo = json.loads((out / "stages" / "dpo.json").read_text())["figures"]
    assert (dpo["pairs"], dpo["dropped_long_prompts"]) == (40, 1), "the prompt longer than the context is dropped"

    # the whole command again: nothing reruns
    assert main(argv) == 0
    assert capsys.readouterr().out.count("complete, skipped") == len(STAGES)

    # --serve's part: the server on the result, once /health answers
    port = _free_port()
    child = start_server(out / "dpo", port)
    try:
        assert health_ok(f"http://127.0.0.1:{port}")
    finally:
        child.terminate()
        child.wait(timeout=30)
