#!/usr/bin/env bash
# Every GPU-only check in one run, for when a GPU machine is lent (about 8 minutes on one GPU):
#   1. the CUDA tests (the tests that skip without CUDA: AMP fp16/bf16 training steps);
#   2. the COCO-shaped step cost: Deformable DETR R101 -> R50, batch 2, 800x1333, 300 queries,
#      6 decoder layers, fp32 and AMP (bfloat16);
#   3. the matching benchmark with the cost matrices on the GPU.
# Results: benchmarks/results/{step_cost_coco_cuda,step_cost_coco_amp_cuda,matching_cuda}.json,
# each with the machine (GPU name included) and the date.
#
#   bash benchmarks/gpu_check.sh            # on the GPU machine
#   bash benchmarks/gpu_check.sh --dry-run  # print the commands and check they parse (CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DRY=0
[[ ${1:-} == --dry-run ]] && DRY=1
OUT=benchmarks/results

steps=(
  "$PY -m pytest -q -p no:xdist -k cuda tests"
  "$PY benchmarks/step_cost.py --preset coco --device cuda --iters 10 --warmup 2 --output $OUT/step_cost_coco_cuda.json"
  "$PY benchmarks/step_cost.py --preset coco --device cuda --iters 10 --warmup 2 --amp bfloat16 --output $OUT/step_cost_coco_amp_cuda.json"
  "$PY benchmarks/matching.py --device cuda --iters 20 --output $OUT/matching_cuda.json"
)

if ((DRY)); then
  # Parse every benchmark's command line without running it (no GPU needed).
  $PY benchmarks/step_cost.py --help >/dev/null
  $PY benchmarks/matching.py --help >/dev/null
  $PY -m pytest -q -p no:xdist --collect-only -k cuda tests >/dev/null
  printf '%s\n' "${steps[@]}"
  echo "dry run: ${#steps[@]} steps parse"
  exit 0
fi

$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: run with --dry-run on CPU')"
nvidia-smi --query-gpu=name,memory.total --format=csv || true
status=0
for step in "${steps[@]}"; do
  echo "== $step"
  start=$(date +%s)
  if ! eval "$step"; then
    echo "FAILED: $step" >&2
    status=1
  fi
  echo "   $(($(date +%s) - start)) s"
done
exit $status
