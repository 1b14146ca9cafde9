#!/usr/bin/env bash
# Build causal-conv1d and mamba-ssm for one GPU arch with `edgebench kernels build`, offline, install
# them, check that their kernels run and agree with the PyTorch reference, and record it all in $OUT.
#
# Run from the repo root on the GPU machine, with the sdists carried in build/sdists:
#   bash tools/lent-gpu/kernels_build.sh
# Get the sdists (on a machine with network; they are ~250 KB, never commit them):
#   MAMBA_SKIP_CUDA_BUILD=TRUE CAUSAL_CONV1D_SKIP_CUDA_BUILD=TRUE python -m pip download --no-deps \
#     --no-binary :all: --no-build-isolation mamba-ssm==2.3.2.post1 causal-conv1d==1.7.0 -d build/sdists
# Settings (environment): OUT (bench/results/kernels_build), SDIST_DIR (build/sdists), ARCH (9.0),
# JOBS (nproc), PACKAGES (causal-conv1d,mamba-ssm), PYTHON (python3), WHEELS (/tmp/edgebench-kernels).
# Comes back in $OUT: kernels_build.txt (machine, build times, status, smoke test), kernels-build.json,
# build-logs.tar.gz, and the wheels as wheels.tar.part-* (15 MiB pieces, under the device's 16 MiB file
# limit). Put them back together with: cat wheels.tar.part-* | tar x   (then carry them to later runs).
set -euo pipefail
OUT=${OUT:-bench/results/kernels_build}
SDIST_DIR=${SDIST_DIR:-build/sdists}
ARCH=${ARCH:-9.0}
JOBS=${JOBS:-$(nproc)}
PACKAGES=${PACKAGES:-causal-conv1d,mamba-ssm}
PYTHON=${PYTHON:-python3}
WHEELS=${WHEELS:-/tmp/edgebench-kernels}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT"

{
  echo "date: $(date -u +%FT%TZ)"
  echo "command: ARCH=$ARCH JOBS=$JOBS PACKAGES=$PACKAGES bash tools/lent-gpu/kernels_build.sh"
  nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader || true
  nvcc --version | tail -n 2 || true
  "$PYTHON" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)'
  echo "cores: $(nproc)"; free -g | head -n 2
  (cd "$SDIST_DIR" && sha256sum ./*.tar.gz)
} 2>&1 | tee "$OUT/kernels_build.txt"

start=$(date +%s)
"$PYTHON" -m edgebench.commands.kernels build --sdist-dir "$SDIST_DIR" --out "$WHEELS" --arch "$ARCH" \
  --jobs "$JOBS" --package "$PACKAGES" --install 2>&1 | tee -a "$OUT/kernels_build.txt"
echo "total wall: $(( $(date +%s) - start )) s" | tee -a "$OUT/kernels_build.txt"
cp "$WHEELS/kernels-build.json" "$OUT/"
ls -l "$WHEELS"/*.whl | tee -a "$OUT/kernels_build.txt"
(cd "$WHEELS" && tar cf - ./*.whl) | split -b 15M - "$OUT/wheels.tar.part-"
# The per-package compiler logs are long (ptxas -v): keep them compressed.
tar czf "$OUT/build-logs.tar.gz" -C "$WHEELS" $(cd "$WHEELS" && ls ./*-build.log)

"$PYTHON" -m edgebench.commands.kernels status 2>&1 | tee -a "$OUT/kernels_build.txt"

"$PYTHON" bench/kernels_smoke.py 2>&1 | tee -a "$OUT/kernels_build.txt"
