#!/usr/bin/env bash
# One call on the lent GPU machine: install the carried SSM kernel wheels, build and install edgebench
# there, then run the stage asked for, writing everything under $OUT (or ./gpu-out when run elsewhere).
#   bash bench/gpu_session.sh setup          # build + install only
#   bash bench/gpu_session.sh smoke          # env, GPU tests, probe overhead, a short run of each family
#   bash bench/gpu_session.sh STAGE ...      # any stage defined below, several in order
# Carry .whl (mamba-ssm + causal-conv1d wheels from ../shared/wheels) with the call.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
PY=python3
log() { echo "== $* ($(date +%T))"; }

setup() {
  log setup
  if ls .whl/*.whl >/dev/null 2>&1; then $PY -m pip install -q --no-deps --no-index .whl/*.whl || return 1; fi
  # Only the local architecture: the full list is for wheels users install, not for this check.
  EDGEBENCH_CUDA=ON EDGEBENCH_CUDA_ARCHS=90-real $PY -m pip install -q --no-build-isolation --no-deps . \
    > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; return 1; }
  $PY -c "import edgebench.probe as p; print('probe backend:', p.backend, p.why)"
}

smoke() {
  log env
  $PY -m edgebench env --micro | tee "$OUT/env.txt"
  $PY -m edgebench env --json > "$OUT/env.json"
  log gpu tests
  $PY -m pytest -q -m gpu tests/test_probe_gpu.py -p no:cacheprovider 2>&1 | tee "$OUT/gpu_tests.txt"
  log probe overhead
  $PY bench/probe_overhead.py --json "$OUT/probe_overhead.json" | tee "$OUT/probe_overhead.txt"
  log smoke run
  $PY -m edgebench run -m qwen2.5-0.5b,mamba2-780m,mamba-790m,zamba2-1.2b,falcon-h1-0.5b -c 1k -n 16 -r 2 \
    --decode-mode eager,graph -o "$OUT/smoke.jsonl" 2>&1 | grep -v "^\[transformers\]" | tail -60
}

setup || { echo "setup failed"; exit 1; }
for stage in "$@"; do
  [ "$stage" = setup ] && continue
  "$stage"
done
log done
