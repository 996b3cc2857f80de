#!/usr/bin/env bash
# Reproduces every number of docs/results.md.
#
#   bash docs/results/reproduce.sh [BUILD_DIR] [RUNS_DIR]      (defaults: build, runs/results)
#
# Two queues of single-threaded runs go side by side (on a 2-core machine two 1-thread runs
# train more images per second in total than one 2-thread run). A run whose log already ends
# with a summary line is skipped, so an interrupted reproduction continues where it stopped.
# Accuracy does not depend on the queue, the thread count or the machine's load; the
# images/s columns do (see docs/performance.md for speed).
set -euo pipefail

build=${1:-build}
runs=${2:-runs/results}
apps="$build/apps"
nice=${MANTISSA_NICE:-0}   # e.g. -5 (as root) to keep the runs ahead of other work on the machine
mkdir -p "$runs"

for app in mantissa-resnet mantissa-alexnet mantissa-gan mantissa-ptq mantissa-report; do
    [[ -x "$apps/$app" ]] || { echo "reproduce.sh: $apps/$app not built (cmake --build $build)" >&2; exit 2; }
done

# Runs a trainer unless its log already holds a summary line; keeps its stdout/stderr beside it.
train() {
    local name=$1; shift
    local log="$runs/$name.jsonl"
    if [[ -f "$log" ]] && grep -q '"event":"summary"' "$log"; then
        echo "skip $name (done)"; return 0
    fi
    rm -f "$log"
    echo "start $name: $*"
    nice -n "$nice" "$@" --threads 1 --quiet --log "$log" > "$runs/$name.out" 2>&1 \
        || echo "run $name exited with $? (see $runs/$name.out)"
}

ptq() {
    local name=$1; shift
    local log="$runs/$name.jsonl"
    if [[ -f "$log" ]] && grep -q '"event":"ptq"' "$log"; then
        echo "skip $name (done)"; return 0
    fi
    rm -f "$log"
    echo "start $name"
    nice -n "$nice" "$apps/mantissa-ptq" "$@" --threads 1 --log "$log" > "$runs/$name.out" 2>&1 \
        || echo "run $name exited with $? (see $runs/$name.out)"
}

# ResNet-20 on Fashion-MNIST: 2 epochs, batch 128, SGD lr 0.1 momentum 0.9 wd 5e-4, cosine,
# seed 1 -- the same for every recipe.
resnet() {
    local name=$1 precision=$2 seed=$3; shift 3
    train "$name" "$apps/mantissa-resnet" --precision "$precision" --epochs 2 --seed "$seed" \
        --checkpoint "$runs/$name.h5" "$@"
}

queue_a() {
    resnet r20-fp32 fp32 1
    resnet r20-flexpoint flexpoint 1 --metrics-every 20   # Autoflex exponents over time
    resnet r20-hbfp8 hbfp8 1
    resnet r20-boosters boosters 1
    for f in ffp8:auto e4m3 e5m2; do
        ptq "ptq-r20-${f%%:*}" --checkpoint "$runs/r20-fp32.h5" --format "$f"
    done
    # WGAN (weight clipping, RMSprop 5e-5, n_critic 5): 4 epochs of 300 batches of 64.
    local fp16='fp32; */weight,activation,error,weight_grad=fp16'
    for p in fp32 flexpoint fp16; do
        local precision=$p
        [[ $p == fp16 ]] && precision=$fp16
        train "wgan-$p" "$apps/mantissa-gan" --gan wgan --precision "$precision" --epochs 4 \
            --limit-batches 300 --batch-size 64 --checkpoint "$runs/wgan-$p.h5" \
            --samples "$runs/wgan-$p-samples" --fid-classifier "$runs/r20-fp32.h5"
    done
}

queue_b() {
    resnet r20-s2fp8 s2fp8 1 --metrics-every 20           # S2FP8 alpha/beta over time
    resnet r20-fp8 fp8 1
    resnet r20-bf16 bf16 1
    # AlexNet, small-input variant: one epoch, batch 128, SGD lr 0.05 (at the paper's 0.01 the
    # network without batch norm is still on its initial plateau, loss 2.30, after 240 steps),
    # cosine, seed 1.
    for p in fp32 flexpoint; do
        train "alexnet-$p" "$apps/mantissa-alexnet" --variant small --precision "$p" --epochs 1 \
            --lr 0.05 --checkpoint "$runs/alexnet-$p.h5"
    done
    for f in ffp8:auto e4m3; do
        ptq "ptq-alexnet-${f%%:*}" --checkpoint "$runs/alexnet-fp32.h5" --format "$f"
    done
    # Seed-to-seed spread of the reference, for "within noise".
    resnet r20-fp32-seed2 fp32 2
}

queue_a > "$runs/queue-a.txt" 2>&1 &
queue_b > "$runs/queue-b.txt" 2>&1 &
wait

# The charts of docs/results.md.
report="$apps/mantissa-report"
r20=()
for p in fp32 flexpoint hbfp8 boosters s2fp8 fp8 bf16; do r20+=("$runs/r20-$p.jsonl"); done
"$report" "${r20[@]}" --metric test_accuracy --output "$runs/r20-test-accuracy.svg"
"$report" "${r20[@]}" --metric train_loss --output "$runs/r20-train-loss.svg"
"$report" "${r20[@]}" "$runs/r20-fp32-seed2.jsonl" --table --output "$runs/r20.md"
"$report" "$runs"/alexnet-{fp32,flexpoint}.jsonl --table --output "$runs/alexnet.md"
"$report" "$runs"/wgan-{fp32,flexpoint,fp16}.jsonl --table --output "$runs/wgan.md"
"$report" "$runs"/ptq-*.jsonl --table --output "$runs/ptq.md"
"$report" "$runs"/wgan-{fp32,flexpoint,fp16}.jsonl --metric wasserstein --output "$runs/wgan-wasserstein.svg"
"$report" "$runs"/wgan-{fp32,flexpoint,fp16}.jsonl --metric fid --output "$runs/wgan-fid.svg"
"$report" "$runs/r20-flexpoint.jsonl" --tensor conv1.activation --output "$runs/r20-flexpoint-conv1-exponent.svg"
"$report" "$runs/r20-flexpoint.jsonl" --tensor layer3.2.conv2.error --output "$runs/r20-flexpoint-error-exponent.svg"
"$report" "$runs/r20-s2fp8.jsonl" --tensor layer3.2.conv2.error --stat bwd.alpha --output "$runs/r20-s2fp8-error-alpha.svg"
echo "done: $runs"
