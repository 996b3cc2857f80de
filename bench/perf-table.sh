#!/usr/bin/env bash
# bench/perf-table.sh BUILD_DIR [options]: the performance table of issue 8 in one run.
#
# Runs mantissa-bench-train (BUILD_DIR/bench) and bench/pytorch/compare.py (Debian's
# python3-torch) with the same threads, batch sizes and round counts, and prints ONE table
# (Markdown on stdout, CSV next to it) with sections:
#   compare  every model in fp32, Mantissa vs PyTorch images/s (training and inference) per
#            thread count, parameter counts of both, peak memory, parallel efficiency;
#   formats  every recipe on ResNet-20: overhead over Mantissa's own fp32 (time ratio, same
#            process, interleaved rounds), Storage peak per recipe, and vs PyTorch fp32;
#   batch    ResNet-20 fp32 at several batch sizes (images/s relative to the main batch);
#   depth    ResNet-20/56/110 fp32 (step time relative to ResNet-20; ideal 3.0x and 6.0x).
# Each model runs in its own process (so peak RSS is per model).
#
# Options:
#   --quick            a short version (about a third of the time): 2 rounds, 1 warm-up step,
#                      no ResNet-110, batches 64,128
#   --threads LIST     thread counts (default 1,2; the formats/batch/depth sections use the last)
#   --batch N          main batch size (default 128)
#   --batches LIST     batch sweep (default 32,64,128,256)
#   --models LIST      compare section (default resnet20,resnet56,resnet110,alexnet-small,dcgan)
#   --recipes LIST     formats section (default fp32,flexpoint,hbfp8,boosters,s2fp8,fp8,bf16)
#   --rounds N         timed rounds per figure, median (default 5; formats section 2N)
#   --warmup N         untimed steps before timing (default 2)
#   --out DIR          keep the raw CSVs and the table here (default: a new temporary dir)
#   --python PATH      python with torch (default /usr/bin/python3: Debian's python3-torch)
#   --no-pytorch       Mantissa only (the PyTorch columns stay empty)
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-2}"; }

[[ $# -ge 1 && $1 != -* ]] || { echo "perf-table.sh: first argument is the build directory" >&2; usage 2; }
BUILD=$1; shift
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=$BUILD/bench/mantissa-bench-train
PYTHON=/usr/bin/python3
THREADS=1,2 BATCH=128 BATCHES=32,64,128,256
MODELS=resnet20,resnet56,resnet110,alexnet-small,dcgan
RECIPES=fp32,flexpoint,hbfp8,boosters,s2fp8,fp8,bf16
ROUNDS=5 WARMUP=2 OUT="" PYTORCH=1
# --quick only changes defaults: explicit options after or before it win.
for arg in "$@"; do
  if [[ $arg == --quick ]]; then
    ROUNDS=2 WARMUP=1 BATCHES=64,128 MODELS=resnet20,resnet56,alexnet-small,dcgan
  fi
done
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) ;;
    --threads) THREADS=$2; shift ;;
    --batch) BATCH=$2; shift ;;
    --batches) BATCHES=$2; shift ;;
    --models) MODELS=$2; shift ;;
    --recipes) RECIPES=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --out) OUT=$2; shift ;;
    --python) PYTHON=$2; shift ;;
    --no-pytorch) PYTORCH=0 ;;
    -h|--help) usage 0 ;;
    *) echo "perf-table.sh: unknown option '$1'" >&2; usage 2 ;;
  esac
  shift
done
[[ -x $BENCH ]] || { echo "perf-table.sh: $BENCH not found; build it: cmake --build $BUILD --target mantissa-bench-train" >&2; exit 2; }
if [[ $PYTORCH == 1 ]] && ! "$PYTHON" -c 'import torch' 2>/dev/null; then
  echo "perf-table.sh: '$PYTHON' cannot import torch (install python3-torch, or pass --python or --no-pytorch)" >&2
  exit 2
fi
[[ -n $OUT ]] || OUT=$(mktemp -d /tmp/perf-table.XXXXXX)
mkdir -p "$OUT"
MAIN_T=${THREADS##*,}
DEPTHS=$(echo "$MODELS" | tr , '\n' | grep '^resnet[0-9]*$' | paste -sd, - || true)

log() { echo "perf-table.sh: $*" >&2; }
mantissa() {  # mantissa <rounds> <csv> <bench options...>
  local rounds=$1 out=$2; shift 2
  log "mantissa-bench-train --rounds $rounds $*"
  "$BENCH" --rounds "$rounds" --warmup "$WARMUP" --csv "$out" --markdown /dev/null "$@"
}
pytorch() {  # pytorch <csv> <compare.py options...>
  [[ $PYTORCH == 1 ]] || return 0
  local out=$1; shift
  log "compare.py $*"
  "$PYTHON" "$HERE/pytorch/compare.py" --rounds "$ROUNDS" --warmup "$WARMUP" --csv "$out" "$@" >/dev/null
}

START=$(date +%s)
LOAD_BEFORE=$(uptime)
# formats: every recipe on ResNet-20, twice the rounds (the ratios are the figure of interest).
mantissa $((2 * ROUNDS)) "$OUT/m-formats.csv" --models resnet20 --recipes "$RECIPES" --threads "$MAIN_T" --batch "$BATCH"
# compare: fp32 per model, one process each (peak RSS per model).
for m in ${MODELS//,/ }; do
  mantissa "$ROUNDS" "$OUT/m-compare-$m.csv" --models "$m" --recipes fp32 --threads "$THREADS" --batch "$BATCH"
  pytorch "$OUT/p-compare-$m.csv" --models "$m" --threads "$THREADS" --batch "$BATCH"
done
# batch: ResNet-20 fp32 (the main batch is taken from the compare section).
SWEEP=$(echo "$BATCHES" | tr , '\n' | grep -vx "$BATCH" | paste -sd, - || true)
if [[ -n $SWEEP ]]; then
  mantissa "$ROUNDS" "$OUT/m-batch.csv" --models resnet20 --recipes fp32 --threads "$MAIN_T" --batch "$SWEEP"
  pytorch "$OUT/p-batch.csv" --models resnet20 --threads "$MAIN_T" --batch "$SWEEP"
fi
log "measured in $(( $(date +%s) - START )) s; raw CSVs in $OUT"

"$PYTHON" "$HERE/perf-table-merge.py" --dir "$OUT" --threads "$THREADS" --batch "$BATCH" \
  --batches "$BATCHES" --depths "$DEPTHS" --models "$MODELS" --csv "$OUT/perf-table.csv" \
  > "$OUT/perf-table.md"
{
  echo
  echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') in $(( $(date +%s) - START )) s on $(nproc) cores" \
       "($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), Mantissa $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$HERE" diff --quiet HEAD -- "$HERE/.." 2>/dev/null || echo ' with uncommitted changes')," \
       "$([[ $PYTORCH == 1 ]] && "$PYTHON" -c 'import torch; print("PyTorch", torch.__version__)' || echo 'no PyTorch');" \
       "--threads $THREADS --batch $BATCH --rounds $ROUNDS --warmup $WARMUP."
  echo "Load before: ${LOAD_BEFORE#*load average: }; after: $(uptime | sed 's/.*load average: //') (uptime load averages, 1/5/15 min)."
} >> "$OUT/perf-table.md"
cat "$OUT/perf-table.md"
log "table: $OUT/perf-table.md and $OUT/perf-table.csv"
