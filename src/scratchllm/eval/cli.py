"""`scratchllm eval`: score a run (or an OpenAI-compatible server) on benchmarks from local files.

    scratchllm eval --run runs/speedrun --tasks wikitext2,hellaswag,arc_easy --data-dir ../shared/data/eval \\
        --limit 200 --out evals/speedrun
    scratchllm eval --run runs/speedrun --tasks mmlu --shots 5 --data-dir ../shared/data/eval --out evals/mmlu5
    scratchllm eval --run runs/speedrun --tasks my_quiz.jsonl,notes.txt --out evals/mine
    scratchllm eval --endpoint http://127.0.0.1:8000 --model gpt2 --tasks gsm8k --data-dir DIR --out evals/server
    scratchllm eval contamination --tasks lambada,piqa --data-dir DIR --corpus data/train.jsonl --out contam
    scratchllm eval judge --answers ours.jsonl --against theirs.jsonl --endpoint http://127.0.0.1:8000 --out judged

Writes OUT/results.json (per task: metrics, standard errors, n, shots, the task file's SHA-256)
and OUT/report.md (the table next to chance, n-gram and published baselines).
"""

from __future__ import annotations

from pathlib import Path

from scratchllm.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help="benchmarks, perplexity and code execution on local task files")
    p.add_argument("--run", help="run directory (ours, HF-imported, ...: anything scratchllm.load opens)")
    p.add_argument("--endpoint", default=None, help="evaluate an OpenAI-compatible server at this URL instead")
    p.add_argument("--model", default=None, help="the model name to send to --endpoint")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: the newest)")
    p.add_argument("--tasks", default=None,
                   help="comma-separated: built-in names (wikitext2, lambada, hellaswag, arc_easy, arc_challenge, "
                        "piqa, winogrande, mmlu, gsm8k, humaneval), NAME=PATH, a .jsonl task or a text file")
    p.add_argument("--data-dir", default=None, help="directory holding the built-in tasks' files")
    p.add_argument("--limit", type=int, default=None, help="first N items of each task (MMLU: of each subject)")
    p.add_argument("--shots", type=int, default=0, help="few-shot examples per item (default 0)")
    p.add_argument("--batch-size", type=int, default=16, help="sequences per forward pass (default 16)")
    p.add_argument("--samples", type=int, default=1, help="HumanEval samples per problem for pass@k (default 1)")
    p.add_argument("--baseline-tokens", default=None,
                   help="token directory to fit unigram/bigram baselines on (default: the run's own)")
    p.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default)")
    p.add_argument("--out", default=None, help="directory for results.json and report.md")
    p.set_defaults(func=cmd_eval)

    sub = p.add_subparsers(dest="eval_command", metavar="judge")
    j = sub.add_parser("judge", help="LLM-as-judge: grade answers 1-10, or compare two sets with both orders")
    j.add_argument("--answers", required=True, help="JSONL of {question, answer} lines")
    j.add_argument("--against", default=None, help="a second JSONL, same questions in the same order: pairwise")
    j.add_argument("--endpoint", required=True, help="OpenAI-compatible server of the judge model")
    j.add_argument("--model", default="judge", help="the judge model's name on that server")
    j.add_argument("--out", required=True, help="directory for judgments.jsonl and summary.json")
    j.set_defaults(func=cmd_judge)

    c = sub.add_parser("contamination", help="13-gram overlap of each task with a training corpus (GPT-3's check)")
    c.add_argument("--tasks", required=True, help="comma-separated tasks, as for scratchllm eval")
    c.add_argument("--data-dir", default=None, help="directory holding the built-in tasks' files")
    c.add_argument("--limit", type=int, default=None, help="first N items of each task")
    c.add_argument("--corpus", action="append", required=True,
                   help="training text (.txt, .jsonl, directory, compressed) or a token directory (repeatable)")
    c.add_argument("--ngram", type=int, default=13, help="words per n-gram (default 13)")
    c.add_argument("--out", required=True, help="directory for contamination.json and report.md")
    c.set_defaults(func=cmd_contamination)

    r = subparsers.add_parser("redteam", help="adversarial prompts by category: refusal and leak rates, examples")
    r.add_argument("--run", help="run directory to probe")
    r.add_argument("--endpoint", default=None, help="probe an OpenAI-compatible server instead")
    r.add_argument("--model", default=None, help="the model name to send to --endpoint")
    r.add_argument("--suite", action="append", default=[],
                   help="extra JSONL of {id, category, prompt[, canary]} (repeatable; added to the built-in suite)")
    r.add_argument("--only-suite", action="store_true", help="use only the --suite files, not the built-in one")
    r.add_argument("--judge-endpoint", default=None, help="chat endpoint of a judge that decides refusals")
    r.add_argument("--judge-model", default="judge", help="the judge model's name (default 'judge')")
    r.add_argument("--max-new-tokens", type=int, default=128, help="answer length (default 128)")
    r.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default)")
    r.add_argument("--out", required=True, help="directory for redteam.json and report.md")
    r.set_defaults(func=cmd_redteam)


def _token_dir(run, given: str | None) -> Path | None:
    if given:
        return Path(given)
    data_path = Path(run.config.data.path) if run.config.data.path else None
    for d in (data_path, run.run_dir / "tokens"):
        if d is not None and (d / "meta.json").is_file():
            return d
    return None


def _ngram_baselines(lm, token_dir: Path | None, tasks) -> dict[str, dict[str, float]]:
    """Unigram/bigram bits per byte of each text task, fitted on the training tokens."""
    # pipelines.baselines owns the counting models; cli.py is the one layer allowed to reach it from eval.
    import numpy as np

    from scratchllm.pipelines.baselines import text_baselines

    texts = [t for t in tasks if t.kind == "rolling"]
    if token_dir is None or not texts:
        return {}
    return {task.name: text_baselines(token_dir, np.array([i for it in task.items for i in lm.encode(it.text)],
                                                          dtype=np.int64), sum(it.bytes for it in task.items))
            for task in texts}


def _open_model(args):
    """(run or None, the LM the harness calls) for --run or --endpoint/--model."""
    if args.endpoint:
        from scratchllm.eval.endpoint import EndpointLM

        return None, EndpointLM(args.endpoint, args.model)
    import scratchllm
    from scratchllm.eval.lm import LocalLM
    from scratchllm.utils.device import resolve_device

    run = scratchllm.load(args.run, step=getattr(args, "step", None), device=str(resolve_device(args.device)))
    return run, LocalLM(run, batch_size=getattr(args, "batch_size", 16))


def _check_model_args(args) -> None:
    if bool(args.run) == bool(args.endpoint):
        raise UserError("pass either --run RUN_DIR or --endpoint URL --model NAME (exactly one of them)")
    if args.endpoint and not args.model:
        raise UserError("--endpoint needs --model NAME (the name the server knows the model by)")


def cmd_eval(args) -> int:
    from scratchllm.eval.harness import evaluate_task
    from scratchllm.eval.report import write_results
    from scratchllm.eval.tasks import load_task

    if not args.tasks or not args.out:
        raise UserError("scratchllm eval needs --tasks LIST and --out DIR (or use `scratchllm eval judge`)")
    _check_model_args(args)
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit {args.limit} must be at least 1")
    if args.shots < 0:
        raise UserError(f"--shots {args.shots} must be 0 or more")
    specs = [s.strip() for s in args.tasks.split(",") if s.strip()]
    if not specs:
        raise UserError("--tasks is empty; name at least one task, e.g. --tasks wikitext2,hellaswag")
    tasks = [load_task(s, args.data_dir, args.shots, args.limit) for s in specs]   # every file checked first

    run, lm = _open_model(args)
    results = {"model": lm.name, "step": run.step if run else None, "tasks": {}}
    for task in tasks:
        entry = evaluate_task(lm, task, samples=args.samples)
        results["tasks"][task.name] = entry
        shown = ", ".join(f"{k}={v:.4f}" for k, v in list(entry["metrics"].items())[:4])
        print(f"{task.name}: {shown} (n={entry['n']}, {entry['seconds']:.1f}s)")
    if run is not None:
        results["ngram_baselines"] = _ngram_baselines(lm, _token_dir(run, args.baseline_tokens), tasks)
    out = write_results(args.out, results)
    print(f"wrote {out / 'results.json'} and {out / 'report.md'}")
    return 0


def cmd_judge(args) -> int:
    from scratchllm.eval.judge import Judge, judge_files

    summary = judge_files(Judge(args.endpoint, args.model), args.answers, args.against, args.out)
    shown = {k: v for k, v in summary.items() if k not in ("answers", "against")}
    print(f"{shown}\nwrote {args.out}/judgments.jsonl and summary.json")
    return 0


def cmd_redteam(args) -> int:
    from scratchllm.eval.judge import Judge
    from scratchllm.eval.redteam import default_suite, read_suite, run_redteam, write_redteam

    _check_model_args(args)
    if args.only_suite and not args.suite:
        raise UserError("--only-suite needs at least one --suite FILE")
    suite = read_suite(([] if args.only_suite else [default_suite()]) + args.suite)
    judge = Judge(args.judge_endpoint, args.judge_model) if args.judge_endpoint else None
    _, lm = _open_model(args)
    result = run_redteam(lm, suite, judge, args.max_new_tokens)
    out = write_redteam(args.out, result, lm.name)
    for cat, v in result["categories"].items():
        print(f"{cat}: safe rate {v['safe_rate']:.2f} over {v['n']} prompts")
    print(f"wrote {out / 'redteam.json'} and {out / 'report.md'}")
    return 0


def cmd_contamination(args) -> int:
    from scratchllm.eval.contamination import check, corpus_texts, write_contamination
    from scratchllm.eval.tasks import load_task

    if args.ngram < 1:
        raise UserError(f"--ngram {args.ngram} must be at least 1")
    for path in args.corpus:
        if not Path(path).exists():
            raise UserError(f"corpus '{path}' does not exist; pass training text or a token directory with --corpus")
    tasks = [load_task(s.strip(), args.data_dir, 0, args.limit) for s in args.tasks.split(",") if s.strip()]
    result = check(tasks, corpus_texts(args.corpus), args.ngram)
    out = write_contamination(args.out, result, args.corpus, args.ngram)
    for name, entry in result.items():
        print(f"{name}: {entry['dirty']}/{entry['n']} items share a {args.ngram}-gram with the corpus")
    print(f"wrote {out / 'contamination.json'}")
    return 0
