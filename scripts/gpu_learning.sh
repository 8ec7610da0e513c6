#!/usr/bin/env bash
# Learning at full size (issue 14): does `paper` / `cuda-convnet-2012` learn from the paper's init?
# On one GPU machine, in one call or several back to back (the machine keeps /tmp while it stays warm):
#   bash scripts/gpu_learning.sh data            # the 1000-class proxy (100 + 10 per class, 256 px), prepared
#   bash scripts/gpu_learning.sh train PRESET MIN  # PRESET for MIN minutes, steps.csv every 100 steps
#   bash scripts/gpu_learning.sh scales          # per-layer signal and gradient scales at init (GPU)
# Results (metrics.csv, steps.csv, logs, scales) are copied into $OUT (or ./gpu-results).
set -uo pipefail
phase=${1:?usage: gpu_learning.sh data|train PRESET MINUTES|scales}
work=${LEARNING_DIR:-/tmp/learning}
out=${OUT:-gpu-results}
mkdir -p "$work" "$out"
export PYTHONUNBUFFERED=1
if ! python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1; then
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
alexnet() { python3 -m alexnet "$@"; }
workers=$(nproc)

case "$phase" in
data)
    # gpu_data.sh's 210,000-image proxy (1,000 classes, JPEG storage), when this machine made it already
    if [ ! -e "$work/data" ] && [ -f "${DATA_DIR:-/tmp/data15}/jpeg/manifest.json" ]; then
        ln -s "${DATA_DIR:-/tmp/data15}/jpeg" "$work/data"
    fi
    # PROXY_ARGS: e.g. "--classes 20 --train-per-class 10" for a quick try of this script
    [ -d "$work/src" ] || /usr/bin/time -v python3 -m alexnet proxy "$work/src" --workers "$workers" --quiet ${PROXY_ARGS:-} \
        2> "$out/proxy.time" | tee "$out/proxy.log"
    [ -f "$work/data/manifest.json" ] || /usr/bin/time -v python3 -m alexnet prepare "$work/src" "$work/data" \
        --workers "$workers" --quiet 2> "$out/prepare.time" | tee "$out/prepare.log"
    du -sh "$work/src" "$work/data" | tee "$out/sizes.txt"
    ;;
train)
    preset=${2:?preset}; minutes=${3:-8}
    run="$work/$preset"
    args=(--data "$work/data" --preset "$preset" --out "$run" --log-steps 100 --workers "$workers"
          --time-limit $((minutes * 60)) --quiet)
    [ -f "$run/last.pt" ] && args+=(--resume)
    alexnet train "${args[@]}" 2>&1 | tee -a "$out/train-$preset.log"
    cp "$run/metrics.csv" "$out/$preset-metrics.csv"
    [ -f "$run/steps.csv" ] || { echo "no steps.csv: fewer than 100 steps"; exit 0; }
    cp "$run/steps.csv" "$out/$preset-steps.csv"
    # the step where the training loss (mean of 100 steps) first falls below 6.0
    python3 - "$run/steps.csv" <<'PY' | tee -a "$out/train-$preset.log"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
below = next((r for r in rows if float(r["train_loss"]) < 6.0), None)
print("first 100-step window under 6.0:", below["global_step"] if below else f"none in {rows[-1]['global_step']} steps")
PY
    ;;
scales)
    python3 scripts/signal_scales.py --device cuda --batch 64 | tee "$out/scales.md"
    ;;
esac
