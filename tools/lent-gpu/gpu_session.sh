#!/usr/bin/env bash
# One call on the lent GPU machine: install the carried SSM kernel wheels, build and install edgebench
# there, then run the stage asked for, writing everything under $OUT (or ./gpu-out when run elsewhere).
#   bash tools/lent-gpu/gpu_session.sh setup          # build + install only
#   bash tools/lent-gpu/gpu_session.sh smoke          # env, GPU tests, probe overhead, a short run of each family
#   bash tools/lent-gpu/gpu_session.sh STAGE ...      # any stage defined below, several in order
# Carry .whl (mamba-ssm + causal-conv1d wheels from ../shared/wheels) with the call. Everything written
# under $OUT (and the resumable logs kept in $STATE between calls on a warm machine) comes back packed
# as $OUT/eb-out-HHMMSS.tgz: a device call returns at most 8 files.
set -uo pipefail
export PYTHONUNBUFFERED=1 TRITON_CACHE_AUTOTUNING=1
OUT=${OUT:-$PWD/gpu-out}
STATE=${STATE:-/root/eb-state}   # logs that later calls resume; copied to $OUT at the end of each call
mkdir -p "$OUT" "$STATE"
PY=python3
log() { echo "== $* ($(date +%T))"; }

setup() {
  log setup
  # A warm machine keeps STATE between calls: skip the build when the sources did not change.
  local hash; hash=$(find src csrc CMakeLists.txt pyproject.toml -type f | sort | xargs sha1sum | sha1sum | cut -c1-16)
  if [ -f "$STATE/built-$hash" ] && $PY -c "import edgebench._probe" 2>/dev/null; then
    echo "edgebench already built from these sources ($hash)"; return 0
  fi
  if ls .whl/*.whl >/dev/null 2>&1; then $PY -m pip install -q --no-deps --no-index .whl/*.whl || return 1; fi
  # As a user installs (the machine reaches no registry, so --no-index: every dependency must already be
  # there, and pip must not touch its torch); --no-deps only where that fails, and the log says so.
  # Only the local architecture: the full list is for wheels users install, not for this check.
  local t0=$SECONDS
  if ! EDGEBENCH_CUDA=ON EDGEBENCH_CUDA_ARCHS=90-real $PY -m pip install --no-build-isolation --no-index \
      '.[hf]' > "$OUT/build.log" 2>&1; then
    echo "pip install --no-index '.[hf]' failed (a dependency missing here?); retrying with --no-deps"
    grep -i -E "error|no matching" "$OUT/build.log" | head -5
    EDGEBENCH_CUDA=ON EDGEBENCH_CUDA_ARCHS=90-real $PY -m pip install -q --no-build-isolation --no-deps . \
      >> "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; return 1; }
  fi
  echo "install: $((SECONDS - t0)) s; torch after install: $($PY -c 'import torch; print(torch.__version__)')"
  touch "$STATE/built-$hash"
  $PY -c "import edgebench.probe as p; print('probe backend:', p.backend, p.why)"
}

# Each stage writes its own log under $OUT and is bounded by `timeout`, so one hang cannot eat the call.
gputests() {
  log "gpu tests"
  # (the fuzz test needs hypothesis, which that machine lacks, and has no GPU test)
  # ${2}: a -k expression (e.g. "not compile": the compile tests alone take ~90 s, stage compiletests)
  timeout "${1:-240}" $PY -m pytest -q -m gpu --durations=5 -p no:cacheprovider --ignore=tests/test_fuzz_readers.py \
    ${2:+-k "$2"} tests/ > "$OUT/gpu_tests.txt" 2>&1
  tail -12 "$OUT/gpu_tests.txt"
}
envinfo() {
  log env
  timeout 120 $PY -m edgebench env --micro > "$OUT/env.txt" 2>&1; tail -12 "$OUT/env.txt"
  timeout 120 $PY -m edgebench env --json --micro > "$OUT/env.json" 2> "$OUT/env.err"
}
overhead() {
  log "probe overhead"
  timeout 120 $PY bench/probe_overhead.py --json "$OUT/probe_overhead.json" > "$OUT/probe_overhead.txt" 2>&1
  cat "$OUT/probe_overhead.txt"
}
smoke() {
  log "smoke run"
  timeout 300 $PY -m edgebench run -m qwen2.5-0.5b,mamba2-780m,zamba2-1.2b -c 1k -n 16 -r 2 \
    --decode-mode eager,graph --timeout 120 -o "$OUT/smoke.jsonl" > "$OUT/smoke.txt" 2>&1; tail -12 "$OUT/smoke.txt"
}
# Issue 3 evidence: five models, eager and graph decode, with the fast kernels.
sweep() {
  log "sweep $1"
  timeout "${2:-420}" $PY -m edgebench run -m qwen2.5-0.5b,mamba2-780m,mamba-790m,zamba2-1.2b,falcon-h1-0.5b \
    -c "$1" -n 32 -r 3 --warmup 1 --decode-mode eager,graph --allow-long-ctx --timeout 120 \
    -o "$OUT/sweep_h100.jsonl" > "$OUT/sweep_${1//,/_}.txt" 2>&1; tail -40 "$OUT/sweep_${1//,/_}.txt"
}
sweepA() { sweep 1k,16k,64k 420; }
sweepC() {  # the SSM and hybrid models of the sweep
  log "sweep ssm+hybrid"
  timeout 300 $PY -m edgebench run -m mamba2-780m,zamba2-1.2b,falcon-h1-0.5b -c 1k,16k,64k -n 32 -r 3 --warmup 1 \
    --decode-mode eager,graph --allow-long-ctx --timeout 240 -o "$OUT/sweep_h100.jsonl" > "$OUT/sweepC.txt" 2>&1
  grep "^\[" "$OUT/sweepC.txt" | tail -20
}
# Telemetry's effect on the timings: the same case with and without the power sampler.
teleff() {  # at 16K: the GPU-bound prefill (4K is host-bound on the lent VM and scatters by 30%)
  log "telemetry effect"
  timeout 60 $PY -m edgebench run -m qwen2.5-0.5b,mamba2-780m -c 16k -n 8 -r 7 --decode-mode graph -o "$OUT/tele_on.jsonl" > /dev/null 2>&1
  timeout 60 $PY -m edgebench run -m qwen2.5-0.5b,mamba2-780m -c 16k -n 8 -r 7 --decode-mode graph --no-telemetry -o "$OUT/tele_off.jsonl" > /dev/null 2>&1
  grep -h -o '"prefill_ms":{[^}]*}\|"tpot_ms":{[^}]*}' "$OUT/tele_on.jsonl" "$OUT/tele_off.jsonl"
}
sweepB() { sweep 4k,32k 400; }
agree() {
  log "prefill agreement with triton.testing.do_bench"
  timeout 100 $PY bench/prefill_agreement.py --json "$OUT/prefill_agreement.json" > "$OUT/agree.txt" 2>&1
  tail -6 "$OUT/agree.txt"
}
# The fallback path: the same models without mamba_ssm / causal_conv1d installed.
fallback() {
  log fallback
  $PY -m pip uninstall -q -y mamba-ssm causal-conv1d
  timeout 70 $PY -m edgebench run -m mamba-130m,falcon-h1-0.5b -c 1k -n 16 -r 2 --timeout 60 \
    -o "$OUT/fallback.jsonl" > "$OUT/fallback.txt" 2>&1; tail -12 "$OUT/fallback.txt"
  $PY -m pip install -q --no-deps --no-index .whl/*.whl
}
ops() {
  log "operator breakdown"
  timeout 400 $PY -m edgebench run -m qwen2.5-0.5b,mamba-130m,mamba2-130m,zamba2-1.2b,falcon-h1-0.5b -c 1k,16k \
    -n 16 -r 2 --warmup 1 --decode-mode eager,graph --allow-long-ctx --profile ops --ops-trace --timeout 120 \
    -o "$STATE/ops_h100.jsonl" > "$STATE/ops.txt" 2>&1; tail -25 "$STATE/ops.txt"
}
# Issue 4 evidence: the longest context under a 24 GiB / 8 GiB budget, and measured vs predicted memory.
maxctx() {
  log "maxctx $1"
  timeout "${2:-300}" $PY -m edgebench maxctx -m qwen2.5-0.5b,llama-3.2-1b,mamba-790m,mamba2-780m,zamba2-1.2b,falcon-h1-0.5b --memory-budget "$1" \
    --logits last,all --resolution 4k --limit 512k --timeout 150 -o "$OUT/maxctx_$1.jsonl" > "$OUT/maxctx_$1.txt" 2>&1
  grep -v "^ " "$OUT/maxctx_$1.txt" | tail -12
}
memfit() {
  log "memory measured vs predicted"
  timeout 300 $PY -m edgebench run -m qwen2.5-0.5b,llama-3.2-1b,mamba-790m,mamba2-780m,zamba2-1.2b,falcon-h1-0.5b \
    -c 4k,16k,64k -n 0 -r 1 --warmup 0 --allow-long-ctx --no-telemetry --timeout 120 -o "$OUT/memfit.jsonl" \
    > "$OUT/memfit.txt" 2>&1; tail -22 "$OUT/memfit.txt"
}

# Session 2 stages. Logs that may need a second call go to $STATE and are resumed there.
falcondbg() {  # falcon-h1-0.5b did not finish a 1k graph case in 200 s in session 1; a hang prints its stack
  log "falcon-h1 1k"
  timeout 240 $PY -m edgebench run -m falcon-h1-0.5b -c 1k -n 16 -r 2 --warmup 1 --decode-mode eager,graph \
    --timeout 100 -o "$OUT/falcon_dbg.jsonl" > "$OUT/falcon_dbg.txt" 2>&1; grep -v "^ " "$OUT/falcon_dbg.txt" | tail -60
}
abload() {  # workers forked from a preloaded process vs spawned: same timings, less start-up
  log "preloaded vs spawned workers"
  for mode in 0 1; do
    local t0=$SECONDS
    EDGEBENCH_PRELOAD=$mode timeout 200 $PY -m edgebench run -m qwen2.5-0.5b,mamba2-780m -c 4k -n 32 -r 5 \
      --decode-mode eager,graph --timeout 100 -o "$OUT/preload_$mode.jsonl" > "$OUT/preload_$mode.txt" 2>&1
    echo "EDGEBENCH_PRELOAD=$mode: $((SECONDS - t0)) s"; grep "│" "$OUT/preload_$mode.txt" | tail -4
  done
}
samplernvml() {
  log "sampler cost on NVML"
  timeout 60 $PY bench/sampler_cost.py --source nvml --seconds 5 --rates 50,1000 > "$OUT/sampler_nvml.txt" 2>&1
  cat "$OUT/sampler_nvml.txt"
}
full() {  # issue 3: five models x five contexts x eager/graph, resumable across calls
  log "full sweep (resumes $STATE/sweep.jsonl)"
  timeout "${1:-540}" $PY -m edgebench run -m qwen2.5-0.5b,mamba2-780m,mamba-790m,zamba2-1.2b,falcon-h1-0.5b \
    -c 1k,4k,16k,32k,64k -n 32 -r 3 --warmup 1 --decode-mode eager,graph --allow-long-ctx --timeout 120 \
    -o "$STATE/sweep.jsonl" >> "$STATE/sweep.txt" 2>&1; grep -c '"type":"case"' "$STATE/sweep.jsonl"
}
e57k() {  # issue 5: prefill energy at 57K
  log "57k energy"
  timeout "${1:-200}" $PY -m edgebench run -m qwen2.5-0.5b,mamba2-780m -c 57k -n 32 -r 3 --warmup 1 \
    --decode-mode graph --allow-long-ctx --timeout 120 -o "$STATE/e57k.jsonl" > "$STATE/e57k.txt" 2>&1; tail -8 "$STATE/e57k.txt"
}
mssm() {  # the mamba_ssm backend (MambaLMHeadModel)
  log "mamba_ssm backend"
  timeout "${1:-200}" $PY -m edgebench run -m mamba-790m,mamba2-780m --backend mamba_ssm -c 1k,16k,64k -n 32 -r 3 \
    --warmup 1 --decode-mode eager,graph --timeout 120 -o "$STATE/mamba_ssm.jsonl" > "$STATE/mamba_ssm.txt" 2>&1
  tail -16 "$STATE/mamba_ssm.txt"
}
# Session 3 stages: logs go to $STATE so a stage cut short by its timeout still comes back (maxctx writes
# what an interrupted search has probed).
M3="--logits last,all --resolution 4k --limit 512k --timeout 150"
maxctx24rest() {  # issue 4: the searches session 2 did not reach under 24 GiB
  log "maxctx 24GiB: zamba2 [all], falcon-h1"
  timeout "${1:-200}" $PY -m edgebench maxctx -m zamba2-1.2b --memory-budget 24GiB ${M3/last,all/all} \
    -o "$STATE/maxctx_24GiB_rest.jsonl" >> "$STATE/maxctx_24GiB_rest.txt" 2>&1
  timeout "${2:-330}" $PY -m edgebench maxctx -m falcon-h1-0.5b --memory-budget 24GiB $M3 \
    -o "$STATE/maxctx_24GiB_rest.jsonl" >> "$STATE/maxctx_24GiB_rest.txt" 2>&1
  grep -v "^ " "$STATE/maxctx_24GiB_rest.txt" | tail -5
}
maxctx8rest() {
  log "maxctx 8GiB: falcon-h1"
  timeout "${1:-240}" $PY -m edgebench maxctx -m falcon-h1-0.5b --memory-budget 8GiB $M3 \
    -o "$STATE/maxctx_8GiB_rest.jsonl" >> "$STATE/maxctx_8GiB_rest.txt" 2>&1
  grep -v "^ " "$STATE/maxctx_8GiB_rest.txt" | tail -3
}
maxctxmem() {  # issue 4: where the memory goes at the longest context (mem_at_max_ok), 8 GiB, all six models
  log "maxctx 8GiB with memory at max"
  timeout "${1:-330}" $PY -m edgebench maxctx -m qwen2.5-0.5b,llama-3.2-1b,mamba-790m,mamba2-780m,zamba2-1.2b,falcon-h1-0.5b \
    --memory-budget 8GiB $M3 -o "$STATE/maxctx_8GiB_mem.jsonl" >> "$STATE/maxctx_8GiB_mem.txt" 2>&1
  grep -v "^ " "$STATE/maxctx_8GiB_mem.txt" | tail -14
}
maxctxexp() {  # the same searches with the allocator's expandable segments: how much is fragmentation
  log "maxctx 8GiB [last], expandable segments"
  PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True timeout "${1:-150}" $PY -m edgebench maxctx \
    -m qwen2.5-0.5b,mamba2-780m,zamba2-1.2b --memory-budget 8GiB --logits last --resolution 4k --limit 512k \
    --timeout 150 -o "$STATE/maxctx_8GiB_expandable.jsonl" >> "$STATE/maxctx_8GiB_expandable.txt" 2>&1
  grep -v "^ " "$STATE/maxctx_8GiB_expandable.txt" | tail -4
}
opsgraph() {  # issue 6: graph decode profiles with the scopes mapped from an eager reference step
  log "ops: graph decode scopes"
  timeout "${1:-240}" $PY -m edgebench run -m qwen2.5-0.5b,mamba2-130m,zamba2-1.2b,falcon-h1-0.5b -c 1k -n 16 -r 2 \
    --warmup 1 --decode-mode eager,graph --profile ops --timeout 120 -o "$STATE/ops_graph.jsonl" > "$STATE/ops_graph.txt" 2>&1
  $PY - "$STATE/ops_graph.jsonl" <<'PYEOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("type") == "ops" and r["phase"] == "decode":
        sh = r["shares"]
        print(r.get("model", r["key"]), r.get("decode_mode"), r.get("replay_scopes"), "norm", sh.get("norm"),
              "elementwise", sh.get("elementwise"), "reduce", sh.get("reduce"), "other", sh.get("other"),
              "vs_total", r.get("categorised_vs_total_pct"))
PYEOF
}
energy() {  # issue 5: counter vs integrated samples now that the sampler reads instant power
  log "energy with instant power"
  timeout "${1:-300}" $PY -m edgebench run -m qwen2.5-0.5b,mamba2-780m -c 1k,16k,57k -n 32 -r 3 --warmup 1 \
    --decode-mode eager,graph --allow-long-ctx --timeout 120 -o "$STATE/energy.jsonl" >> "$STATE/energy.txt" 2>&1
  grep -c '"type":"case"' "$STATE/energy.jsonl"
  $PY - "$STATE/energy.jsonl" <<'PYEOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("type") == "run":
        print("power_reading:", [g.get("nvml", {}).get("power_reading") for g in r["env"].get("gpus", [])])
    if r.get("type") == "case":
        e = r.get("energy") or {}
        print(r["model"], r["ctx"], r.get("decode_mode", "eager"), r["status"],
              {k: v for k, v in e.items() if "vs" in k or k.endswith("_j")})
PYEOF
}
# Session 4 (H200) stages.
firstrun() {  # what a new user runs: `edgebench run` with no arguments, from an empty directory
  log "first contact: edgebench run (no arguments)"
  local dir; dir=$(mktemp -d); local t0=$SECONDS
  local eb; eb=$(command -v edgebench) || { echo "edgebench is not on PATH after the install"; eb="$PY -m edgebench"; }
  (cd "$dir" && timeout "${1:-420}" $eb run > "$OUT/firstrun.txt" 2> "$OUT/firstrun.err"; echo "exit $?" >> "$OUT/firstrun.txt")
  echo "wall: $((SECONDS - t0)) s" | tee -a "$OUT/firstrun.txt"
  cp "$dir"/edgebench-logs/*.jsonl "$OUT/" 2>/dev/null; cp -r "$dir"/edgebench-logs/*.workers "$OUT/" 2>/dev/null
  tail -20 "$OUT/firstrun.txt"; echo "stderr lines: $(wc -l < "$OUT/firstrun.err")"; head -20 "$OUT/firstrun.err"
}
newtf() {  # the newest transformers (carried as .whl-tf/*.whl) beside the machine's own: the GPU tests again
  log "transformers from .whl-tf"
  $PY -m pip install -q --no-index --no-deps --target /tmp/newtf .whl-tf/*.whl || return 1
  PYTHONPATH=/tmp/newtf timeout "${1:-240}" $PY -m pytest -q -m gpu -p no:cacheprovider \
    tests/test_decode_correctness.py tests/test_loaders.py > "$OUT/gpu_tests_newtf.txt" 2>&1
  PYTHONPATH=/tmp/newtf $PY -c "import transformers; print('transformers', transformers.__version__)"
  tail -8 "$OUT/gpu_tests_newtf.txt"
}

memssm() {  # issue 12: the memory model of the mamba_ssm backend against measured peaks, 16K-224K, both logits modes
  log "mamba_ssm memory: measured vs modelled"
  timeout "${1:-150}" $PY -m edgebench run -m mamba-790m,mamba2-780m --backend mamba_ssm -c 16k,64k,224k \
    --logits last,all -n 4 -r 1 --warmup 0 --decode-mode eager --no-telemetry --timeout 90 \
    -o "$STATE/memssm.jsonl" >> "$STATE/memssm.txt" 2>&1
  grep "^\[" "$STATE/memssm.txt" | tail -12
  # the search the issue saw (mamba-790m [all] under 24 GiB): its start and its "model:" figure are mamba_ssm's now
  timeout "${2:-70}" $PY -m edgebench maxctx -m mamba-790m --backend mamba_ssm --memory-budget 24GiB --logits all \
    --resolution 4k --limit 512k --timeout 60 -o "$STATE/memssm_maxctx.jsonl" >> "$STATE/memssm_maxctx.txt" 2>&1
  grep -v "^ " "$STATE/memssm_maxctx.txt" | tail -2
  timeout 60 $PY -m pytest -q -m gpu tests/test_memory_model.py -p no:cacheprovider 2>&1 | tail -3
  $PY bench/memfit_table.py "$STATE/memssm.jsonl" "$STATE/memssm_maxctx.jsonl" --ctx all --backend mamba_ssm \
    | tee "$OUT/memssm_table.md"
}
quietgpu() {  # issue 12.7 on a CUDA torch: library chatter (Kineto, gpuGetDeviceCount) stays in LOG.workers/
  log "quiet terminal on CUDA"
  local q="-m tiny-llama -c 32 -n 2 -r 1 --warmup 0 --profile ops"
  timeout 120 $PY -m edgebench run $q -o "$OUT/quiet_gpu.jsonl" 2> "$OUT/quiet_gpu.err" > /dev/null
  echo "library lines on stderr (GPU): $(grep -cE 'USDT|gpuGetDeviceCount|ERROR:|\[transformers\]' "$OUT/quiet_gpu.err")"
  CUDA_VISIBLE_DEVICES= timeout 120 $PY -m edgebench run $q --device cpu -o "$OUT/quiet_nodev.jsonl" 2> "$OUT/quiet_nodev.err" > /dev/null
  echo "library lines on stderr (CUDA torch, no device): $(grep -cE 'USDT|gpuGetDeviceCount|ERROR:|\[transformers\]' "$OUT/quiet_nodev.err")"
  KINETO_LOG_LEVEL=0 timeout 120 $PY -m edgebench run $q -o "$OUT/quiet_kineto.jsonl" 2> "$OUT/quiet_kineto.err" > /dev/null
  echo "KINETO_LOG_LEVEL=0: stderr $(grep -c USDT "$OUT/quiet_kineto.err"), worker files $(cat "$OUT"/quiet_kineto.jsonl.workers/*.txt 2>/dev/null | grep -c USDT)"
  wc -l "$OUT"/quiet_*.err
}

maxctxsmoke() {  # the maxctx planner on the one executor: same answer as call 1, device label from the GPU it ran on
  log "maxctx through the executor"
  timeout "${1:-90}" $PY -m edgebench maxctx -m mamba-790m --backend mamba_ssm --memory-budget 24GiB --logits all \
    --resolution 4k --limit 512k --timeout 60 -o "$OUT/maxctx_smoke.jsonl" > "$OUT/maxctx_smoke.txt" 2>&1
  grep -v "^ " "$OUT/maxctx_smoke.txt" | tail -3
  grep -o '"device":"[^"]*"' "$OUT/maxctx_smoke.jsonl" | sort | uniq -c
}

devstate() {  # issue 15.5: the device state a run records, beside nvidia-smi's own answers (read only)
  log "device state"
  timeout 120 $PY -c "import json; from edgebench.telemetry import device_state as d, environment as e
s, w = d.check('cuda:0', {'gpus': e.gpus()}); print(json.dumps(s, indent=1)); print(*w, sep='\n')
a = d.cpu_times(); import time; time.sleep(2); print('steal_share over 2 s:', d.steal_share(a, d.cpu_times()))" \
    > "$OUT/devstate.txt" 2>&1
  nvidia-smi -i 0 --query-gpu=pci.bus_id,persistence_mode,clocks.applications.graphics,clocks.default_applications.graphics,clocks.applications.memory,clocks.default_applications.memory,clocks_event_reasons.active \
    --format=csv >> "$OUT/devstate.txt" 2>&1
  nvidia-smi -i 0 --query-compute-apps=pid,process_name,used_memory --format=csv >> "$OUT/devstate.txt" 2>&1
  cat "$OUT/devstate.txt"
}
devices() {  # issue 18 on nvidia-h200-x2. Leg 1 is the first contact on that machine: `edgebench run` with no
  # arguments (default-gpu on cuda:0) under bench/run_overhead.py (issue 15.1's wall / timed work); leg 2 the
  # same with --devices all. Each leg in an empty folder with its own empty Triton cache (both pay the
  # autotune). Then bench/devices_compare.py: the wall ratio (target >= 1.8), its bound, each line's medians.
  # ${2}=warm: both legs share one Triton cache, warmed first by a short run of the Mamba-2 models (what
  # a machine that ran edgebench before has), so the ratio shows the dealing without the cold autotune.
  # ${3}: one, all or both legs (default both; a leg's log stays in $STATE, so a later call on the same warm
  # machine runs the other leg and compares); ${4}: more arguments for both legs, words split on commas
  # (e.g. --runs,3: the default-gpu suite, each point 3 times).
  local legs=${3:-both} extra=() c=$STATE/triton-warm
  [ -n "${4:-}" ] && IFS=, read -r -a extra <<< "$4"
  log "default-gpu on one GPU, then --devices all (${2:-cold} Triton cache; legs: $legs; extra: ${extra[*]:-none})"
  if [ "${2:-cold}" = warm ] && [ ! -d "$c" ]; then
    TRITON_CACHE_DIR=$c timeout 240 $PY -m edgebench run -m mamba2-780m,zamba2-1.2b -c 1k -n 4 -r 1 --warmup 0 \
      --decode-mode eager -q -o "$STATE/devices_warmup.jsonl" > "$OUT/devices_warmup.txt" 2>&1
  fi
  local leg here=$PWD d cmd
  for leg in one all; do
    [ "$legs" = both ] || [ "$legs" = "$leg" ] || continue
    d=$(mktemp -d); [ "${2:-cold}" = warm ] || c=$d/triton
    rm -f "$STATE/devices_$leg.jsonl"  # a leg that leaves no log must not leave an earlier call's in its place
    cmd=(run); [ $leg = all ] && cmd+=(--devices all)
    (cd "$d" && TRITON_CACHE_DIR=$c timeout "${1:-300}" $PY "$here/bench/run_overhead.py" --label "devices-$leg" \
        --json "$OUT/overhead_$leg.json" --log 'edgebench-logs/*.jsonl' -- edgebench "${cmd[@]}" "${extra[@]}" \
        > "$OUT/devices_$leg.txt" 2>&1)
    cp "$d"/edgebench-logs/*.jsonl "$STATE/devices_$leg.jsonl"; tail -4 "$OUT/devices_$leg.txt"
  done
  [ -f "$STATE/devices_one.jsonl" ] && [ -f "$STATE/devices_all.jsonl" ] || return 0
  $PY bench/devices_compare.py "$STATE/devices_one.jsonl" "$STATE/devices_all.jsonl" --json "$OUT/devices.json" \
    | tee "$OUT/devices.txt"
}
# Issue 15.6: the same points with edgebench and with a plain timer that imports no edgebench module
# (bench/plain_timer.py), one process per model; the table gives edgebench / independent per phase, H = host-bound.
indep() {
  log "edgebench beside an independent timer"
  timeout "${1:-300}" $PY bench/independent_timer.py --out "$OUT/indep" --json "$OUT/indep.json" \
    > "$OUT/indep.txt" 2>&1; echo "exit $?" >> "$OUT/indep.txt"
  sed -n '/^model  /,$p' "$OUT/indep.txt"
}
# Issue 17: the published study's claims on this GPU, from `edgebench run --suite paper-desktop`. The whole
# suite is estimated at ~33 min on an H100/H200-class GPU (its dry run says how), more than one 10-minute
# call: by default a call runs one shard ($1, "i/N", default 1/2) of its claims core ($3: the models that
# carry every claim in both methods, ~13 min estimated; "all" for the whole suite), resuming $STATE/paper.jsonl
# across calls. Each call records the dry-run estimate of its shard and of the whole suite beside its measured
# wall time (paper_times.txt: whole suite ~ its estimate x measured / estimated, over the shards run), then
# writes `edgebench claims` (md, json) and `edgebench report` over everything the log holds so far.
PAPER_CORE="qwen2.5-0.5b,mamba2-780m,mamba2-130m,llama-3.2-1b,mamba-790m"
paper() {
  local shard=${1:-1/2} limit=${2:-480} models=${3:-$PAPER_CORE} devices=${4:-} tag
  tag=${shard/\//of}
  local sel=(--suite paper-desktop --shard "$shard"); [ "$models" = all ] || sel+=(-m "$models")
  [ -z "$devices" ] || sel+=(--devices "$devices")
  log "paper-desktop suite, shard $shard, models: $models"
  $PY -m edgebench run "${sel[@]}" --dry-run > "$OUT/paper_dryrun_$tag.txt" 2>&1
  $PY -m edgebench run --suite paper-desktop --dry-run 2>&1 | grep "^estimated" > "$OUT/paper_dryrun_whole.txt"
  grep "^dry run\|^maxctx:\|^estimated" "$OUT/paper_dryrun_$tag.txt"
  local t0=$SECONDS
  timeout "$limit" $PY -m edgebench run "${sel[@]}" -o "$STATE/paper.jsonl" >> "$STATE/paper.txt" 2>&1
  local rc=$?
  if [ -n "$devices" ] && [ "$rc" -ne 0 ] && [ $((SECONDS - t0)) -lt 60 ]; then  # --devices refused: one GPU
    tail -5 "$STATE/paper.txt"; echo "paper with --devices $devices failed at once; again on one GPU"
    sel=("${sel[@]:0:${#sel[@]}-2}")
    timeout $((limit - (SECONDS - t0))) $PY -m edgebench run "${sel[@]}" -o "$STATE/paper.jsonl" >> "$STATE/paper.txt" 2>&1
    rc=$?
  fi
  echo "shard $shard ($models): exit $rc, wall $((SECONDS - t0)) s; $(grep '^estimated' "$OUT/paper_dryrun_$tag.txt" | cut -d'(' -f1); whole suite $(cut -d'(' -f1 "$OUT/paper_dryrun_whole.txt")" \
    | tee -a "$STATE/paper_times.txt"
  $PY -m edgebench claims "$STATE/paper.jsonl" --format md -o "$OUT/claims.md"
  $PY -m edgebench claims "$STATE/paper.jsonl" --format json -o "$OUT/claims.json"
  $PY -m edgebench report "$STATE/paper.jsonl" -o "$OUT/paper_report" --title "paper-desktop on the lent GPU" | tail -1
  cut -c1-240 "$OUT/claims.md" | grep "^| "
}

runoverhead() {  # issue 15.1: wall / timed work of the no-argument run (default-gpu), this tree (fresh install:
  # the first-contact run) and then the tree before the point executor (.before/src, carried), in one call,
  # each in an empty folder with its own empty Triton cache (both pay the autotune)
  log "first contact + run overhead: this tree, then the tree before (.before)"
  local so d here=$PWD; so=$($PY -c "import edgebench, glob, os; print(glob.glob(os.path.dirname(edgebench.__file__) + '/_probe*.so')[0])")
  d=$(mktemp -d)
  (cd "$d" && TRITON_CACHE_DIR=$d/triton timeout "${1:-420}" $PY "$here/bench/run_overhead.py" --label after \
      --json "$OUT/overhead.json" --log 'edgebench-logs/*.jsonl' -- edgebench run > "$OUT/overhead_after.txt" 2>&1)
  cp "$d"/edgebench-logs/*.jsonl "$OUT/after-default-gpu.jsonl" 2>/dev/null
  tail -25 "$OUT/overhead_after.txt"
  if [ -d .before/src/edgebench ]; then
    cp "$so" .before/src/edgebench/; d=$(mktemp -d)
    (cd "$d" && PYTHONPATH=$here/.before/src TRITON_CACHE_DIR=$d/triton timeout "${2:-420}" $PY "$here/bench/run_overhead.py" \
        --label before --json "$OUT/overhead.json" --log 'edgebench-logs/*.jsonl' -- $PY -m edgebench run \
        > "$OUT/overhead_before.txt" 2>&1)
    cp "$d"/edgebench-logs/*.jsonl "$OUT/before-default-gpu.jsonl" 2>/dev/null
    tail -3 "$OUT/overhead_before.txt"
  fi
}
autotune() {  # the configs Triton's autotuner chose, on each prefill line (kernel_detect.autotuned), two runs
  log "autotune choices on the line"
  timeout "${1:-120}" $PY -m edgebench run -m mamba2-780m -c 1k -n 8 --runs 2 --decode-mode eager \
    -o "$OUT/autotune.jsonl" > "$OUT/autotune.txt" 2>&1; tail -3 "$OUT/autotune.txt"
  $PY - "$OUT/autotune.jsonl" <<'PYEOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("type") == "case":
        print(r["model"], r["ctx"], r.get("decode_mode"), r["status"], r.get("runs"), json.dumps(r.get("autotune")))
PYEOF
  timeout "${2:-90}" $PY -m pytest -q -m gpu -p no:cacheprovider tests/test_loaders.py -k mamba_ssm_backend \
    > "$OUT/autotune_tests.txt" 2>&1; tail -4 "$OUT/autotune_tests.txt"
}
contention() {  # issue 18: do concurrent workers on two GPUs slow each other's host-bound numbers, and why
  log "host contention between two GPUs' workers"
  { nproc; lscpu; nvidia-smi topo -m; } > "$OUT/contention.txt" 2>&1
  timeout "${1:-200}" $PY bench/host_contention.py --model "${2:-qwen2.5-0.5b}" --ctx 1024 --steps 100 \
    --json "$OUT/contention.json" >> "$OUT/contention.txt" 2>&1
  grep -E "^(host|config|alone|pair)" "$OUT/contention.txt"; grep -E "^(Thread|Core|Socket|NUMA node)" "$OUT/contention.txt"
}
hostval() {  # issue 15.3: the host-bound flag against the profiler's GPU idle share, same points
  log "host-bound flag vs profiler GPU idle share"
  timeout "${1:-240}" $PY bench/host_bound_check.py -m "${2:-qwen2.5-0.5b,mamba2-780m,zamba2-1.2b}" \
    --out "$OUT/hostval" --json "$OUT/hostval.json" \
    > "$OUT/hostval.txt" 2>&1; tail -25 "$OUT/hostval.txt"
}
compiletests() {  # issue 16: the compile mode's GPU tests alone (each point a cold Inductor + Triton compile)
  log "compile GPU tests"
  timeout "${1:-540}" $PY -m pytest -q -m gpu --durations=15 -p no:cacheprovider tests/test_decode_correctness.py \
    -k "compile" > "$OUT/gpu_tests_compile.txt" 2>&1
  tail -25 "$OUT/gpu_tests_compile.txt"
}
# Issue 16: torch.compile decode beside eager and graph (default-gpu models + falcon-h1-0.5b, 1K and 16K).
# Pass 1 compiles cold (Inductor's cache, in $STATE so a later call on this warm machine keeps it); pass 2
# measures the same compile points again: its cold_ms.compile and compile.cache_hits show the warm-cache
# cost. Both logs resume, so a call cut short by its timeout is continued by calling the stage again.
compile() {
  log "compile decode: pass 1 (eager, graph, compile), pass 2 (compile, cache warm)"
  export TORCHINDUCTOR_CACHE_DIR="$STATE/inductor"
  local models=${2:-qwen2.5-0.5b,mamba2-780m,zamba2-1.2b,falcon-h1-0.5b} t0=$SECONDS  # ${2}: other models
  timeout "${1:-540}" $PY -m edgebench run -m $models -c 1k,16k -n 64 -r 3 --warmup 2 \
    --decode-mode eager,graph,compile --timeout 420 -o "$STATE/compile_1.jsonl" >> "$STATE/compile_1.txt" 2>&1
  local left=$(( ${1:-540} - (SECONDS - t0) ))
  if [ "$left" -gt 30 ]; then
    timeout "$left" $PY -m edgebench run -m $models -c 1k,16k -n 64 -r 3 --warmup 2 --decode-mode compile \
      --timeout 420 -o "$STATE/compile_2.jsonl" >> "$STATE/compile_2.txt" 2>&1
  fi
  $PY - "$STATE"/compile_1.jsonl "$STATE"/compile_2.jsonl <<'PYEOF' | tee "$STATE/compile_summary.txt"
import json, os, sys
print("pass model ctx mode status tpot_ms cold_s(compile/warmup/graph) compile{graphs,recompiles,hits,misses} reason")
for n, path in enumerate(sys.argv[1:], 1):
    if not os.path.exists(path):
        print(f"{n}: {path} not written"); continue
    for line in open(path):
        r = json.loads(line)
        if r.get("type") != "case":
            continue
        cold = r.get("cold_ms") or {}
        c = r.get("compile") or {}
        print(n, r["model"], r["ctx"], r.get("decode_mode"), r["status"], (r.get("tpot_ms") or {}).get("median"),
              [round(cold[k] / 1e3, 1) for k in ("compile", "compile_warmup", "graph_capture") if k in cold],
              [c.get(k) for k in ("graphs", "recompiles", "cache_hits", "cache_misses")] if c else "",
              (r.get("reason") or "")[:160])
PYEOF
}

# Issue 16.4: the paper models' decode tiers beside the default-gpu ones (session 5): eager, graph and compile
# through transformers, and the mamba_ssm backend's own tiers for the Mamba-2 models, at 1K and 16K on every
# GPU of the host. One resumable log; the tier table is `compare --baseline graph` over it.
TIER_MODELS="qwen2.5-1.5b,mamba2-1.3b,falcon-h1-0.5b,falcon-h1-1.5b"
tiers() {
  log "decode tiers of the paper models: mamba_ssm (eager, graph), then hf (eager, graph, compile)"
  export TORCHINDUCTOR_CACHE_DIR="$STATE/inductor"
  # a log an earlier machine began (carried as .tiers-seed/tiers.jsonl) is resumed
  [ -f "$STATE/tiers.jsonl" ] || cp .tiers-seed/tiers.jsonl "$STATE/" 2>/dev/null
  timeout "${1:-80}" $PY -m edgebench run -m mamba2-780m,mamba2-1.3b --backend mamba_ssm -c 1k,16k -n 32 -r 3 \
    --warmup 1 --decode-mode eager,graph --devices all --timeout 120 -o "$STATE/tiers.jsonl" >> "$STATE/tiers.txt" 2>&1
  timeout "${2:-250}" $PY -m edgebench run -m "${3:-$TIER_MODELS}" -c 1k,16k -n 32 -r 3 --warmup 1 \
    --decode-mode eager,graph,compile --devices all --timeout 300 -o "$STATE/tiers.jsonl" >> "$STATE/tiers.txt" 2>&1
  grep "^\[" "$STATE/tiers.txt" | tail -16
  $PY -m edgebench compare "$STATE/tiers.jsonl" --baseline graph --metric tpot_ms --table cases --format md \
    > "$OUT/tiers_vs_graph.md" 2>&1; head -40 "$OUT/tiers_vs_graph.md"
}

# Issue 17, claim 1: paper-desktop's max-context searches of the comparable models (bench/specs/claim1-searches.toml)
# into a log of their own, then the claims over the paper log carried in .paper-log/ (session 6's) and this one:
# a later search of a model replaces an earlier one.
claim1() {
  log "claim 1: max-context searches, both methods"
  timeout "${1:-480}" $PY -m edgebench run --spec bench/specs/claim1-searches.toml --devices all \
    -o "$STATE/claim1.jsonl" >> "$STATE/claim1.txt" 2>&1
  grep -v "^ " "$STATE/claim1.txt" | tail -16
  local logs=("$STATE/claim1.jsonl"); ls .paper-log/*.jsonl >/dev/null 2>&1 && logs=(.paper-log/*.jsonl "${logs[@]}")
  $PY -m edgebench claims "${logs[@]}" --format md -o "$OUT/claims.md" && cut -c1-240 "$OUT/claims.md" | grep "^| "
}

tables() {  # two [[maxctx]] tables of one spec run as one executor run (maxctx_planner.TablesPlanner):
  # small budgets so each search takes a few probes; every maxctx record names its backend
  log "a spec's max-context tables in one run"
  local t0=$SECONDS
  timeout "${1:-150}" $PY -m edgebench run --spec bench/specs/tables-smoke.toml -o "$OUT/tables.jsonl" > "$OUT/tables.txt" 2>&1
  echo "exit $?, $((SECONDS - t0)) s"; grep -v "^ " "$OUT/tables.txt" | tail -12
  grep -o '"type":"maxctx".*' "$OUT/tables.jsonl" | grep -o '"model":"[^"]*"\|"backend":"[^"]*"\|"max_ok_ctx":[0-9]*\|"run":"[^"]*"' | paste - - - - 
}

floors() {  # issue 16.3: the micro-benchmarks every run header now holds (copy GB/s, bf16 matmul TFLOP/s), x floor
  log "floors: device micro-benchmarks, achieved rates and x floor"
  timeout 120 $PY -m edgebench env --micro > "$OUT/floors_env.txt" 2>&1; grep -E "^micro" "$OUT/floors_env.txt"
  timeout 120 $PY -m edgebench env --json --micro > "$OUT/floors_env.json" 2> "$OUT/floors_env.err"
  timeout 180 $PY -m pytest -q -s -m gpu -p no:cacheprovider tests/test_probe_gpu.py -k micro \
    > "$OUT/floors_tests.txt" 2>&1; grep -E "TFLOP|micro-benchmarks of|passed|failed|Error" "$OUT/floors_tests.txt"
  timeout "${1:-300}" $PY -m edgebench run -m qwen2.5-0.5b,mamba2-780m -c 1k,16k -n 32 -r 3 --warmup 1 \
    --decode-mode eager,graph --timeout 120 -o "$OUT/floors_run.jsonl" > "$OUT/floors_run.txt" 2>&1
  tail -16 "$OUT/floors_run.txt"
  $PY -m edgebench compare "$OUT/floors_run.jsonl" --table cases --format md > "$OUT/floors_compare.md" 2>&1
  cat "$OUT/floors_compare.md"
}

keep() {  # a call returns at most 8 files of 16 MiB: one tgz of the logs, the ops traces in 15 MiB pieces.
  # Each pack is named by its time and earlier packs are left alone: a second invocation in one call adds
  # its own pack instead of emptying $OUT.
  local tag; tag=$(date +%H%M%S)
  cp -r "$STATE"/*.jsonl "$STATE"/*.txt "$STATE"/*.traces "$OUT/" 2>/dev/null
  (cd "$OUT" && tar czf "/tmp/eb-out-$tag.tgz" --exclude='eb-out-*.tgz' --exclude='eb-traces-*' --exclude='*.traces' . \
    && if ls -d ./*.traces >/dev/null 2>&1; then tar cf - ./*.traces | split -b 15M - "/tmp/eb-traces-$tag.tar."; fi \
    && find . -mindepth 1 -maxdepth 1 ! -name 'eb-out-*.tgz' ! -name 'eb-traces-*' -exec rm -rf {} + \
    && mv "/tmp/eb-out-$tag.tgz" /tmp/eb-traces-"$tag".tar.* . 2>/dev/null); ls -la "$OUT"
}

setup || { echo "setup failed"; exit 1; }
for stage in "$@"; do   # STAGE or STAGE:ARG:ARG (e.g. maxctx:24GiB:300)
  [ "$stage" = setup ] && continue
  IFS=: read -r -a parts <<< "$stage"
  "${parts[@]}"
done
keep
log done
