#!/usr/bin/env bash
# One GPU phase from a bare machine (see scripts/gpu_phase.py): learn | step | pipeline | checks.
#   COMMIT=$(git rev-parse --short HEAD) bash scripts/gpu_phase.sh learn
# Installs what the machine lacks from wheels carried in .whl/ (run with carry [".whl"]; simplejpeg, and for
# the suite phase pytest-xdist, execnet, hypothesis, sortedcontainers, attrs, fetched here with:
# python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp
#   --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any -d .whl simplejpeg==1.9.0
#   pytest-xdist execnet hypothesis sortedcontainers attrs)
set -uo pipefail
cd "$(dirname "$0")/.."
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
exec python3 scripts/gpu_phase.py "$@"
