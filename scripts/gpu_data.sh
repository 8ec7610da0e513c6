#!/usr/bin/env bash
# Issue 15 on one GPU machine: the input pipeline at a size no prefetch queue or small cache hides.
#   bash scripts/gpu_data.sh make      # 210,000 proxy images at 256 px (1,000 classes x 200 + 10), JPEG storage;
#                                      # gpu_learning.sh uses the same set when it is there (one generation)
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
# simplejpeg is not installed on the device image: carry its wheel (run with carry [".whl"]), fetched here by
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl simplejpeg==1.9.0
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
workers=$(nproc)
case "$phase" in
make)
    [ -d "$work/src" ] || /usr/bin/time -v python3 -m alexnet proxy "$work/src" --classes 1000 \
        --train-per-class 200 --val-per-class 10 --workers "$workers" --quiet 2> "$out/proxy.time"
    [ -f "$work/jpeg/manifest.json" ] || /usr/bin/time -v python3 -m alexnet prepare "$work/src" "$work/jpeg" \
        --storage jpeg --workers "$workers" --quiet 2> "$out/prepare.time" | tee "$out/prepare.log"
    du -sh "$work/src" "$work/jpeg" | tee "$out/sizes.txt"
    ;;
bench)
    python3 -c "import simplejpeg" 2>/dev/null && echo "decoder: simplejpeg" || echo "decoder: Pillow"
    /usr/bin/time -v python3 -m alexnet bench data --data "$work/jpeg" --device cuda --workers "$workers" \
        --pipelines host device nvjpeg --images 50000 --record "$out/BENCHMARKS.fragment.md" 2> "$out/bench-loader.time" | tee "$out/bench-loader.log"
    /usr/bin/time -v python3 -m alexnet bench data --data "$work/jpeg" --device cuda --workers "$workers" \
        --pipelines host device nvjpeg --images 10000 --train-preset paper --train-batches 800 --record "$out/BENCHMARKS.fragment.md" \
        2> "$out/bench-e2e.time" | tee "$out/bench-e2e.log"
    ;;
esac
