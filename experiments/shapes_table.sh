#!/usr/bin/env bash
# The README's distillation table on the embedded shapes data: one teacher, every student on the
# same 500-iteration schedule, 3 seeds, two runs at a time with one thread each (2 CPU cores).
#
#   bash experiments/shapes_table.sh [SEEDS...]                               # default: 0 1 2
#   PAIR=nano bash experiments/shapes_table.sh                                # the nano pair
#   PAIR=conditional bash experiments/shapes_table.sh                         # Conditional DETR
#   python experiments/summarize.py                                           # the table
#
# Each run writes $ROOT/<config name>/seed<k>/ (metrics.json, log.txt; ROOT=output/table by
# default); a run whose model_final.pth exists is skipped, so the script resumes after an
# interruption.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ITERS=${ITERS:-500}
EVAL_PERIOD=${EVAL_PERIOD:-$((ITERS / 2))}
ROOT=${ROOT:-output/table}
PARALLEL=${PARALLEL:-2}
SEEDS=("${@:-0 1 2}")
# CONFIGS="a.py b.py" bash experiments/shapes_table.sh  runs only those
# ITERS=2000 EVAL_PERIOD=250 ROOT=output/curve ...     a longer schedule, evaluated more often
#                                                      (experiments/schedule_curve.py plots it)
DEFAULT_CONFIGS=(
  shapes/deformable_detr_tiny.py
  detrdistill/shapes_deformable_tiny_logits.py
  detrdistill/shapes_deformable_tiny_feature.py
  detrdistill/shapes_deformable_tiny_query_prior.py
  detrdistill/shapes_deformable_tiny.py
  d3etr/shapes_deformable_tiny_adaptive.py
  d3etr/shapes_deformable_tiny_fixed.py
  d3etr/shapes_deformable_tiny.py
  d3etr/shapes_deformable_tiny_no_attention.py
  d3etr/shapes_deformable_tiny_strong_attention.py
)
# PAIR=nano: the compressing pair (shipped tiny teacher -> nano student), same rows
NANO_CONFIGS=(
  shapes/deformable_detr_nano.py
  detrdistill/shapes_deformable_nano_logits.py
  detrdistill/shapes_deformable_nano_feature.py
  detrdistill/shapes_deformable_nano_query_prior.py
  detrdistill/shapes_deformable_nano.py
  d3etr/shapes_deformable_nano_adaptive.py
  d3etr/shapes_deformable_nano_fixed.py
  d3etr/shapes_deformable_nano.py
  d3etr/shapes_deformable_nano_no_attention.py
  kd_detr/shapes_deformable_nano.py
)
# PAIR=conditional: the shipped tiny Conditional DETR teacher -> the Conditional nano student
CONDITIONAL_CONFIGS=(
  shapes/conditional_detr_nano.py
  detrdistill/shapes_conditional_nano_logits.py
  detrdistill/shapes_conditional_nano_feature.py
  detrdistill/shapes_conditional_nano_query_prior.py
  detrdistill/shapes_conditional_nano.py
  d3etr/shapes_conditional_nano_adaptive.py
  d3etr/shapes_conditional_nano_fixed.py
  d3etr/shapes_conditional_nano.py
  d3etr/shapes_conditional_nano_no_attention.py
)
case ${PAIR:-tiny} in
  tiny) ;;
  nano) DEFAULT_CONFIGS=("${NANO_CONFIGS[@]}") ;;
  conditional) DEFAULT_CONFIGS=("${CONDITIONAL_CONFIGS[@]}") ;;
  *) echo "PAIR=$PAIR: expected tiny, nano or conditional" >&2; exit 2 ;;
esac
read -r -a CONFIGS <<<"${CONFIGS:-${DEFAULT_CONFIGS[*]}}"
# The pair configs read the teacher shipped with the package (detrdistill://shipped/...).

jobs_file=$(mktemp)
for seed in ${SEEDS[@]}; do
  for config in "${CONFIGS[@]}"; do
    out=$ROOT/${config%.py}/seed$seed
    [[ -f $out/model_final.pth ]] && continue
    echo "$config $seed $out" >>"$jobs_file"
  done
done
echo "$(wc -l <"$jobs_file") runs to do, $PARALLEL at a time"
run_one() {
  local config=$1 seed=$2 out=$3
  mkdir -p "$out"
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 "$PY" train_net.py --config-file "$config" \
    train.max_iter="$ITERS" train.eval_period="$EVAL_PERIOD" train.checkpointer.period=100000 \
    train.seed="$seed" train.output_dir="$out" >"$out/stdout.log" 2>&1 \
    && echo "done $out" || echo "FAILED $out (see $out/stdout.log)"
}
export -f run_one
export PY ITERS EVAL_PERIOD
xargs -P "$PARALLEL" -L 1 bash -c 'run_one "$@"' _ <"$jobs_file"
rm -f "$jobs_file"
