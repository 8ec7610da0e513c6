#!/usr/bin/env bash
# GPU correctness and benchmark figures, run on a machine with CUDA (see BENCHMARKS.md).
# Usage: bash scripts/gpu_checks.sh bench|tests|final|interop [OUT_DIR]
#   bench: bench train (paper, batch 128, with and without torch.compile), bench data at 256 px with
#          the loader feeding paper training end to end, and a short real training run + evaluation.
#   tests: the whole test suite including the slow tests (torch.compile, paper two-device, demo) and
#          the interoperability tests that need torchvision / onnxruntime.
#   interop: the torchvision preset against torchvision itself, and the export tests (slow ones too).
#   final: the GPU-specific tests, bench train, bench data end to end, then the default suite (time-boxed).
# Each step has its own time limit so that one slow step cannot take the others' results with it;
# every result lands in OUT_DIR (BENCHMARKS.fragment.md holds the lines for BENCHMARKS.md).
set -uo pipefail
phase=${1:?usage: gpu_checks.sh bench|tests|final|interop [OUT_DIR]}
out=${2:-${OUT:-gpu-results}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
# The device image has no network: install without build isolation, or fall back to the source tree.
if ! python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1; then
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
alexnet() { python3 -m alexnet "$@"; }
# pyproject's addopts run tests in parallel through pytest-xdist; serially where the image lacks it.
PYTEST=(python3 -m pytest)
python3 -c "import xdist" 2>/dev/null || PYTEST=(python3 -m pytest -o "addopts=-m 'not slow'")
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/gpu.txt"
nproc | sed 's/^/cpu cores: /' | tee -a "$out/gpu.txt"

if [ "$phase" = interop ]; then
    python3 -c "import torchvision; print('torchvision', torchvision.__version__)" | tee -a "$out/gpu.txt"
    timeout 400 "${PYTEST[@]}" -q -rs -m "slow or not slow" tests/test_torchvision.py tests/test_export.py \
        tests/test_hub.py 2>&1 | tee "$out/interop_tests.txt"
fi

if [ "$phase" = bench ]; then
    # 1. Training throughput: fast path vs eager fp32 reference, paper preset, batch 128.
    timeout 240 alexnet bench train --preset paper --device cuda --batch-size 128 --steps 50 \
        --record "$out/BENCHMARKS.fragment.md" 2>&1 | tee "$out/bench_train.txt"
    timeout 120 alexnet bench train --preset paper --device cuda --batch-size 128 --steps 50 --no-compile \
        --record "$out/BENCHMARKS.fragment.md" 2>&1 | tee -a "$out/bench_train.txt"

    # 2. Input pipeline on generated images stored at 256 px (the paper's size), 16 workers, and the
    #    same loader feeding paper-network training steps end to end.
    python3 -c "from alexnet.data.synthetic import make_shapes_dataset as m; m('/tmp/shapes', 800, 20, seed=0)"
    timeout 180 alexnet prepare /tmp/shapes /tmp/shapes-data --size 256 --workers 16 --quiet 2>&1 | tail -2
    timeout 300 alexnet bench data --data /tmp/shapes-data --workers 16 --device cuda --images 8000 \
        --train-preset paper --train-batches 600 --record "$out/BENCHMARKS.fragment.md" 2>&1 | tee "$out/bench_data.txt"

    # 3. A short real training run on the GPU (bf16 + channels-last + compile), then ten-patch testing.
    timeout 240 alexnet train --data /tmp/shapes-data --preset paper --out /tmp/gpu-run --epochs 3 \
        --device cuda --quiet 2>&1 | tee "$out/train.txt"
    timeout 60 alexnet evaluate /tmp/gpu-run --device cuda 2>&1 | tee -a "$out/train.txt"
elif [ "$phase" = final ]; then
    # One call for a short lease: the GPU tests, then the two headline benchmarks, then the whole suite.
    timeout 200 "${PYTEST[@]}" -q -p no:cacheprovider -m "slow or not slow" tests/test_lrn.py tests/test_speed.py \
        tests/test_parallel.py 2>&1 | tee "$out/tests_gpu.txt" | tail -4
    timeout 150 alexnet bench train --preset paper --device cuda --batch-size 128 --steps 50 \
        --record "$out/BENCHMARKS.fragment.md" 2>&1 | tee "$out/bench_train.txt"
    python3 -c "from alexnet.data.synthetic import make_shapes_dataset as m; m('/tmp/shapes', 800, 20, seed=0)"
    timeout 120 alexnet prepare /tmp/shapes /tmp/shapes-data --size 256 --workers 16 --quiet 2>&1 | tail -1
    timeout 150 alexnet bench data --data /tmp/shapes-data --workers 16 --device cuda --images 8000 \
        --train-preset paper --train-batches 600 --record "$out/BENCHMARKS.fragment.md" 2>&1 | tee "$out/bench_data.txt"
    timeout 170 "${PYTEST[@]}" -q -x -p no:cacheprovider 2>&1 | tee "$out/tests.txt" | tail -4
elif [ "$phase" = tests ]; then
    timeout 540 "${PYTEST[@]}" -q -x -m "slow or not slow" -p no:cacheprovider 2>&1 | tee "$out/tests.txt" | tail -25
else
    echo "unknown phase $phase (bench or tests)" >&2
    exit 2
fi
