#!/usr/bin/env bash
# The capstone (`scratchllm speedrun --preset capstone`) on one H100/H200, in device calls of at most
# 10 minutes each, with a 64 MiB tree per call. Run from the repository root on the GPU machine:
#
#   bench/capstone_gpu.sh carry      # x3: copy what travelled in carry/ to runs/carried/ (kept between calls)
#   bench/capstone_gpu.sh data       # stages tokenizer + data (clean, filter, dedup, held-out books, shards)
#   bench/capstone_gpu.sh pretrain   # stage pretrain (gpt2-124m, ~100M tokens); if a call is cut off, run it again:
#                                    # it resumes from the last checkpoint (every 100 steps)
#   bench/capstone_gpu.sh rest       # evaluate, sft, dpo, report -> copied to $OUT (what comes back)
#   bench/capstone_gpu.sh serve      # the result behind `scratchllm serve`: /health, one chat request
#
# The raw books do not travel whole (~200 MB of .jsonl.xz): before each `carry` call, put the next part in
# carry/ (untracked, so it travels; ~46 MB a part), e.g. on the machine that holds ../shared/data:
#   part 1: mkdir -p carry/books && cp ../shared/data/pretrain/gutenberg/gutenberg-00[0-3].jsonl.xz carry/books/
#   part 2: rm carry/books/* && cp ../shared/data/pretrain/gutenberg/gutenberg-00[4-7].jsonl.xz carry/books/
#   part 3: rm carry/books/* && cp ../shared/data/pretrain/gutenberg/gutenberg-0{08,09,10,11}.jsonl.xz carry/books/
#           mkdir -p carry/eval carry/sft && cp ../shared/data/eval/{hellaswag_val_full.txt.bz2,arc_easy.jsonl,\
#           arc_challenge.jsonl,piqa.jsonl,lambada_openai.jsonl,wikitext2_test.txt} carry/eval/ &&
#           cp ../shared/data/sft/{alpaca_en_demo.json,identity.json} carry/sft/ &&
#           cp ../shared/data/preference/dpo_en_demo.json carry/
# 12 of the 18 files are ~500 MB of text, ~115M tokens of our 32k BPE after cleaning: the mix keeps 100M.
# runs/ is git-ignored, so runs/carried and runs/capstone stay on the machine between back-to-back calls.
set -euo pipefail
RUN=${RUN:-runs/capstone}
IN=runs/carried
ARGS=(--preset capstone --out "$RUN" --data "$IN/books" --sft "$IN/sft" --eval-data "$IN/eval"
      --dpo "$IN/dpo_en_demo.json" --no-progress)
export PYTHONPATH=src
speedrun() { python -m scratchllm speedrun "${ARGS[@]}" "$@" "${EXTRA[@]}"; }
EXTRA=("${@:2}")   # further overrides after the part name, e.g. train.max_steps=300

case "${1:-}" in
  carry)
    mkdir -p "$IN" && cp -r carry/. "$IN/" && du -sh "$IN"/* && ls "$IN/books" | wc -l ;;
  data)
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    time speedrun --until data ;;
  pretrain)
    time speedrun --until pretrain ;;
  rest)
    time speedrun
    mkdir -p "${OUT:-out}/capstone"
    cp -r "$RUN/report.md" "$RUN/loss.png" "$RUN/stages" "$RUN/eval" "$RUN/metrics.jsonl" "$RUN/config.toml" \
      "${OUT:-out}/capstone/"
    cp "$RUN/data/tokens/report.md" "${OUT:-out}/capstone/data-report.md" ;;
  serve)
    python -m scratchllm serve --run "$RUN/dpo" --port 8011 & pid=$!
    for _ in $(seq 120); do curl -sf http://127.0.0.1:8011/health && break; sleep 1; done
    curl -s http://127.0.0.1:8011/v1/chat/completions -H 'Content-Type: application/json' \
      -d '{"messages": [{"role": "user", "content": "Who are you?"}], "max_tokens": 48}'
    kill "$pid"; wait "$pid" || true ;;
  *)
    echo "usage: bench/capstone_gpu.sh carry|data|pretrain|rest|serve [KEY=VALUE ...]" >&2; exit 2 ;;
esac
