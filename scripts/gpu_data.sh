#!/usr/bin/env bash
# Issue 15 on one GPU machine: the input pipeline at a size no prefetch queue or small cache hides.
#   bash scripts/gpu_data.sh make      # 200,000 proxy images at 256 px (200 classes x 1,000), JPEG storage
#   bash scripts/gpu_data.sh bench     # bench data alone, then feeding paper training steps, 16 workers,
#                                      # each input pipeline (host, device, nvjpeg: `train --pipeline`)
# Results in $OUT (or ./gpu-results): logs, /usr/bin/time of each part (cores used), BENCHMARKS lines.
set -uo pipefail
phase=${1:?usage: gpu_data.sh make|bench}
work=${DATA_DIR:-/tmp/data15}
out=${OUT:-gpu-results}
mkdir -p "$work" "$out"
export PYTHONUNBUFFERED=1
if ! python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1; then
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
workers=$(nproc)
case "$phase" in
make)
    [ -d "$work/src" ] || /usr/bin/time -v python3 -m alexnet proxy "$work/src" --classes 200 \
        --train-per-class 1000 --val-per-class 10 --workers "$workers" --quiet 2> "$out/proxy.time"
    [ -f "$work/jpeg/manifest.json" ] || /usr/bin/time -v python3 -m alexnet prepare "$work/src" "$work/jpeg" \
        --storage jpeg --workers "$workers" --quiet 2> "$out/prepare.time" | tee "$out/prepare.log"
    du -sh "$work/src" "$work/jpeg" | tee "$out/sizes.txt"
    ;;
bench)
    python3 -c "import simplejpeg" 2>/dev/null && echo "decoder: simplejpeg" || echo "decoder: Pillow"
    /usr/bin/time -v python3 -m alexnet bench data --data "$work/jpeg" --device cuda --workers "$workers" \
        --pipelines host device nvjpeg --images 100000 --record "$out/BENCHMARKS.fragment.md" 2> "$out/bench-loader.time" | tee "$out/bench-loader.log"
    /usr/bin/time -v python3 -m alexnet bench data --data "$work/jpeg" --device cuda --workers "$workers" \
        --pipelines host device nvjpeg --images 20000 --train-preset paper --train-batches 1500 --record "$out/BENCHMARKS.fragment.md" \
        2> "$out/bench-e2e.time" | tee "$out/bench-e2e.log"
    ;;
esac
