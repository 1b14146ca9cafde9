#!/usr/bin/env bash
# Build causal-conv1d and mamba-ssm for one GPU arch with `edgebench kernels build`, offline, install
# them, check that their kernels run and agree with the PyTorch reference, and record it all in $OUT.
#
# Run from the repo root on the GPU machine, with the sdists carried in build/sdists:
#   bash bench/kernels_build.sh
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
  echo "command: ARCH=$ARCH JOBS=$JOBS PACKAGES=$PACKAGES bash bench/kernels_build.sh"
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

# The kernels run on this GPU and agree with the PyTorch references shipped in the packages.
"$PYTHON" - <<'EOF' 2>&1 | tee -a "$OUT/kernels_build.txt"
import torch
torch.manual_seed(0)
dev = "cuda"
try:
    import torch.nn.functional as F
    from causal_conv1d import causal_conv1d_fn
    from causal_conv1d.causal_conv1d_interface import causal_conv1d_ref
    x, w, b = torch.randn(2, 64, 512, device=dev), torch.randn(64, 4, device=dev), torch.randn(64, device=dev)
    err = (causal_conv1d_fn(x, w, b, activation="silu") - causal_conv1d_ref(x, w, b, activation="silu")).abs().max()
    print(f"causal_conv1d_fn vs causal_conv1d_ref: max abs err {err.item():.2e}")
except ImportError as exc:
    print("causal_conv1d not checked:", exc)
try:
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn, selective_scan_ref
    bsz, d, n, L = 2, 64, 16, 512
    u, delta = torch.randn(bsz, d, L, device=dev), torch.rand(bsz, d, L, device=dev)
    A, D = -torch.rand(d, n, device=dev), torch.randn(d, device=dev)
    B, C = torch.randn(bsz, n, L, device=dev), torch.randn(bsz, n, L, device=dev)
    out = selective_scan_fn(u, delta, A, B, C, D, delta_softplus=True)
    ref = selective_scan_ref(u, delta, A, B, C, D, delta_softplus=True)
    print(f"selective_scan_fn vs selective_scan_ref: max abs err {(out - ref).abs().max().item():.2e}")
except ImportError as exc:
    print("mamba_ssm not checked:", exc)
EOF
