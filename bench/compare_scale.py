"""Scale benchmark of `edgebench compare`: 100,000 case records in 50 files, timed end to end.

Generates realistic logs in a temporary folder (10 devices on 10 hosts, 5 runs each, one decode
mode per run; every run a sweep of 20 models x 10 contexts x 2 dtypes x 5 batch sizes = 2,000
cases, ~3% of them OOM; all 100,000 cases distinct), then
runs `edgebench compare` in-process once per output format, writing to a file, and prints the
wall time of each (generation is not timed). Target: under 10 s on a 2-core machine.

    PYTHONPATH=src python bench/compare_scale.py [--cases 100000] [--files 50]
"""
from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from edgebench.commands import compare

MODELS = [(f"{name}-{size}", fam) for name, fam in (("qwen2.5", "transformer"), ("llama3.2", "transformer"),
          ("phi3", "transformer"), ("mamba", "ssm"), ("mamba2", "ssm"), ("falcon-mamba", "ssm"),
          ("zamba2", "hybrid"), ("falcon-h1", "hybrid"), ("bamba", "hybrid"), ("nemotron-h", "hybrid"))
          for size in ("0.5b", "1.5b")]
CONTEXTS = [1024 * 2 ** i for i in range(10)]
DTYPES = ("bfloat16", "float16")
BATCHES = (1, 2, 4, 8, 16)
MODES = (("graph", "last"), ("eager", "last"), ("graph", "all"), ("eager", "all"), ("compile", "last"))


def _stats(rng: random.Random, median_ms: float, n: int) -> dict:
    spread = median_ms * rng.uniform(0.005, 0.03)
    return {"median": round(median_ms, 4), "p10": round(median_ms - spread, 4),
            "p90": round(median_ms + spread, 4), "stdev": round(spread * 0.8, 4), "n": n}


def write_logs(folder: Path, n_cases: int, n_files: int, seed: int = 0) -> int:
    rng = random.Random(seed)
    per_file = n_cases // n_files
    sweep = [(m, f, c, d, b, mode) for mode in MODES for m, f in MODELS for c in CONTEXTS
             for d in DTYPES for b in BATCHES]
    written = 0
    for i in range(n_files):
        device, host = f"NVIDIA GPU model {i % 10}", f"host{i % 10}"
        run = f"{seed:04x}{i:012x}"
        speed = 1.0 + (i % 10) * 1.7
        lines = [{"v": 1, "type": "run", "run": run, "t": f"2026-11-{1 + i // 10:02d}T10:00:00+00:00",
                  "edgebench": "0.1.0", "env": {"device": {"name": device, "sm_count": 132},
                  "host": {"hostname": host}, "versions": {"torch": "2.9.0"}},
                  "spec": {"models": [m for m, _ in MODELS], "ctx": CONTEXTS}, "argv": ["run"]}]
        first = (i // 10) * per_file % len(sweep)
        for model, fam, ctx, dtype, batch, (mode, logits) in sweep[first:first + per_file]:
            key = f"{model}|hf|{dtype}|ctx={ctx}|gen=128|b={batch}|{mode}|{logits}|sdpa"
            rec = {"v": 1, "type": "case", "run": run, "key": key, "model": model, "family": fam,
                   "backend": "hf", "dtype": dtype, "ctx": ctx, "gen": 128, "batch": batch,
                   "decode_mode": mode, "logits": logits, "attn": "sdpa", "device": device}
            quad = 2e-7 if fam == "transformer" else 2e-8
            if rng.random() < 0.03:
                rec.update(status="oom", reason="CUDA out of memory (tried to allocate 2.00 GiB)")
            else:
                pre = speed * batch * (0.004 * ctx + quad * ctx * ctx)
                tpot = speed * (4.0 + (1.5e-5 * ctx if fam == "transformer" else 0.0)) * (1 + 0.05 * batch)
                rec.update(status="ok", reason=None, prefill_ms=_stats(rng, pre, 5),
                           tpot_ms=_stats(rng, tpot, 640), cold_ms={"first_prefill_ms": pre * 20},
                           kernels={"ssm_scan": "mamba_ssm" if fam != "transformer" else None,
                                    "conv1d": "causal_conv1d" if fam != "transformer" else None,
                                    "attention": "sdpa-flash" if fam != "ssm" else None},
                           mem={"peak_allocated_bytes": int(1e9 + ctx * batch * 12000),
                                "peak_reserved_bytes": int(1.1e9 + ctx * batch * 13000),
                                "predicted_bytes": int(1e9 + ctx * batch * 11800)},
                           energy={"prefill_j": round(pre * 0.3, 4),
                                   "decode_j_per_token": round(tpot * 0.25, 5), "energy_why": None})
            lines.append(rec)
            written += 1
        text = "".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines)
        (folder / f"run_{i:02d}.jsonl").write_text(text)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--files", type=int, default=50)
    ap.add_argument("--formats", default="csv,json,md,table")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        logs_dir = Path(tmp) / "logs"
        logs_dir.mkdir()
        n = write_logs(logs_dir, opts.cases, opts.files)
        size_mb = sum(f.stat().st_size for f in logs_dir.iterdir()) / 1e6
        print(f"{n} case records in {opts.files} files, {size_mb:.1f} MB")
        parser = argparse.ArgumentParser()
        compare.add_arguments(parser)
        for fmt in opts.formats.split(","):
            out = Path(tmp) / f"out.{fmt}"
            args = parser.parse_args([str(logs_dir), "--baseline", "qwen2.5-0.5b", "--format", fmt,
                                      "-o", str(out)])
            t0 = time.perf_counter()
            compare.main(args)
            wall_s = time.perf_counter() - t0
            print(f"compare --format {fmt:5s} --baseline qwen2.5-0.5b: {wall_s:6.2f} s "
                  f"({out.stat().st_size / 1e6:.1f} MB written)")


if __name__ == "__main__":
    main()
