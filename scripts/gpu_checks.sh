#!/usr/bin/env bash
# GPU correctness and benchmark figures, run on a machine with CUDA (see BENCHMARKS.md).
# Usage: bash scripts/gpu_checks.sh [OUT_DIR]   (writes results and a BENCHMARKS.md fragment to OUT_DIR)
set -euo pipefail
out=${1:-${OUT:-gpu-results}}
mkdir -p "$out"
python -m pip install -q --no-deps -e . >/dev/null
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"

# 1. The test suite, including slow tests (torch.compile), on the GPU machine.
python -m pytest -q -m "slow or not slow" 2>&1 | tail -5 | tee "$out/tests.txt"

# 2. Training throughput: fast path vs eager fp32 reference, paper preset, batch 128.
alexnet bench train --preset paper --device cuda --batch-size 128 --record "$out/BENCHMARKS.fragment.md" | tee "$out/bench_train.txt"
alexnet bench train --preset paper --device cuda --batch-size 128 --no-compile --record "$out/BENCHMARKS.fragment.md" | tee -a "$out/bench_train.txt"

# 3. Input pipeline on a generated dataset at 256 px (the paper's stored size), 16 workers.
python - <<'PY'
from alexnet.data.synthetic import make_shapes_dataset
make_shapes_dataset("/tmp/alexnet-shapes", 400, 20, seed=0)  # upscaled to 256 by prepare
PY
alexnet prepare /tmp/alexnet-shapes /tmp/alexnet-shapes-data --size 256 --quiet
alexnet bench data --data /tmp/alexnet-shapes-data --workers 16 --device cuda --record "$out/BENCHMARKS.fragment.md" | tee "$out/bench_data.txt"

# 4. A short real training run on the GPU (bf16 + channels-last + compile).
alexnet train --data /tmp/alexnet-shapes-data --preset paper --out /tmp/alexnet-gpu-run --epochs 2 --device cuda --quiet | tee "$out/train.txt"
alexnet evaluate /tmp/alexnet-gpu-run --tta 10crop --device cuda | tee -a "$out/train.txt"
