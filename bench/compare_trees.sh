#!/usr/bin/env bash
# Before/after of a change on one machine, same call: GPU training throughput (bench/gpu_train.py,
# gpt2-124m, bf16, compiled, 12x1024) and a step-limited CPU pretraining run (tiny-cpu on the built-in
# corpus, 2 threads, fixed steps: val bpb must be identical, tokens/s comparable).
#   bash bench/compare_trees.sh OLD_TREE NEW_TREE   (each holding src/ and bench/)
set -euo pipefail
old=$1 new=$2 steps=${STEPS:-200}
cpu_run() {  # tree cores out
  OMP_NUM_THREADS=2 taskset -c "$2" env PYTHONPATH="$1/src:${PYTHONPATH:-}" python3 -m scratchllm train --preset tiny-cpu \
    --out "$3" train.max_steps="$steps" train.max_minutes=0 train.device=cpu train.progress=false \
    train.eval_every="$steps" > "$3.log" 2>&1
  echo "$3: $(tail -1 "$3/metrics.jsonl")"
}
echo "== CPU tiny-cpu, $steps steps, 2 threads each, in parallel: old (cores 0-1), new (cores 2-3)"
cpu_run "$old" 0-1 /tmp/cmp_old & cpu_run "$new" 2-3 /tmp/cmp_new & wait
for tree in "$old" "$new"; do
  echo "== $tree: GPU gpt2-124m"
  (cd "$tree" && PYTHONPATH="$tree/src:${PYTHONPATH:-}" taskset -c 4-15 python3 bench/gpu_train.py --steps 60 --warmup 20)
done
