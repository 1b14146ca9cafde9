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
  $PY -m edgebench env --json --micro > "$OUT/env.json"
  log gpu tests
  $PY -m pytest -q -m gpu tests/test_probe_gpu.py -p no:cacheprovider 2>&1 | tee "$OUT/gpu_tests.txt"
  log probe overhead
  $PY bench/probe_overhead.py --json "$OUT/probe_overhead.json" | tee "$OUT/probe_overhead.txt"
  log smoke run
  $PY -m edgebench run -m qwen2.5-0.5b,mamba2-780m,mamba-790m,zamba2-1.2b,falcon-h1-0.5b -c 1k -n 16 -r 2 \
    --decode-mode eager,graph -o "$OUT/smoke.jsonl" 2>&1 | grep -v "^\[transformers\]" | tail -60
}

# Issue 3 evidence: five models, 1K-64K, eager and graph decode, with the fast kernels (two shards so
# each fits one call).
sweep1() { sweep 1/2; }
sweep2() { sweep 2/2; }
sweep() {
  log "sweep shard $1"
  $PY -m edgebench run -m qwen2.5-0.5b,mamba2-780m,mamba-790m,zamba2-1.2b,falcon-h1-0.5b \
    -c 1k,4k,16k,32k,64k -n 64 -r 3 --decode-mode eager,graph --allow-long-ctx --shard "$1" \
    --timeout 300 -o "$OUT/sweep_h100.jsonl" 2>&1 | grep -v "^\[transformers\]" | tail -40
}

agree() {
  log "prefill agreement with triton.testing.do_bench"
  $PY bench/prefill_agreement.py --json "$OUT/prefill_agreement.json" 2>&1 | grep -v "^\[transformers\]"
}

# The fallback path: the same model without mamba_ssm / causal_conv1d installed.
fallback() {
  log fallback
  $PY -m pip uninstall -q -y mamba-ssm causal-conv1d
  $PY -m edgebench run -m mamba2-780m,falcon-h1-0.5b -c 1k -n 16 -r 2 -o "$OUT/fallback.jsonl" 2>&1 | tail -20
  $PY -m pip install -q --no-deps --no-index .whl/*.whl
}

ops() {
  log "operator breakdown"
  $PY -m edgebench run -m qwen2.5-0.5b,mamba-130m,mamba2-130m,zamba2-1.2b,falcon-h1-0.5b -c 1k,16k -n 16 -r 2 \
    --decode-mode eager,graph --allow-long-ctx --profile ops -o "$OUT/ops_h100.jsonl" 2>&1 | grep -v "^\[transformers\]" | tail -30
}

# Issue 4 evidence: the longest context under a 24 GiB and an 8 GiB budget, both logits modes, plus
# measured-vs-predicted memory at 4K/16K/64K.
maxctx24() {
  log "maxctx 24GiB"
  $PY -m edgebench maxctx -m qwen2.5-0.5b,llama-3.2-1b,mamba-790m,mamba2-780m,zamba2-1.2b,falcon-h1-0.5b \
    --memory-budget 24GiB --logits last,all --resolution 2k --timeout 240 -o "$OUT/maxctx_24g.jsonl" 2>&1 | grep -v "^\[transformers\]" | tail -40
}
maxctx8() {
  log "maxctx 8GiB"
  $PY -m edgebench maxctx -m qwen2.5-0.5b,llama-3.2-1b,mamba-790m,mamba2-780m,zamba2-1.2b,falcon-h1-0.5b \
    --memory-budget 8GiB --logits last,all --resolution 2k --timeout 240 -o "$OUT/maxctx_8g.jsonl" 2>&1 | grep -v "^\[transformers\]" | tail -40
}
memfit() {
  log "memory measured vs predicted"
  $PY -m edgebench run -m qwen2.5-0.5b,llama-3.2-1b,mamba-790m,mamba2-780m,zamba2-1.2b,falcon-h1-0.5b \
    -c 4k,16k,64k -n 0 -r 1 --warmup 0 --allow-long-ctx --no-telemetry -o "$OUT/memfit.jsonl" 2>&1 | grep -v "^\[transformers\]" | tail -30
}

setup || { echo "setup failed"; exit 1; }
for stage in "$@"; do
  [ "$stage" = setup ] && continue
  "$stage"
done
log done
