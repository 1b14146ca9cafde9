"""CPU cost of the power sampler thread, native vs pure Python, on INA3221-style sysfs files or NVML.

Reads the three rails of a recorded Orin Nano sysfs tree (tests/fixtures/sysfs/orin_nano, the same
files and layout as a real board: in{N}_input mV and curr{N}_input mA, two files per rail) for a few
seconds at each rate and reports the sampler thread's CPU time as a percentage of one core, the rate
achieved and dropped samples. On a real board the sysfs read goes through the INA3221 driver (an I2C
transaction when the cached value is stale), so expect more per read than on these plain files; run
it on the board with EDGEBENCH_SYSFS_ROOT unset to measure that.

    python bench/sampler_cost.py [--seconds 3] [--rates 50,150,1000] [--source sysfs|nvml]

With `--source nvml` (a desktop GPU) it samples GPU 0's power through NVML instead (rates above
NVML's ceiling are sampled as asked: this measures the thread's cost, not the sensor's update rate).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "sysfs" / "orin_nano"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rates", default="50,150,1000")
    ap.add_argument("--sysfs-root", default=os.environ.get("EDGEBENCH_SYSFS_ROOT", str(ROOT)))
    ap.add_argument("--source", choices=("sysfs", "nvml"), default="sysfs")
    args = ap.parse_args()
    if args.source == "sysfs":
        os.environ["EDGEBENCH_SYSFS_ROOT"] = args.sysfs_root
    from edgebench import probe
    from edgebench.telemetry import jetson_rails
    from edgebench.telemetry import power
    if args.source == "nvml":
        found, why = power.channels_for_device("nvml", 0)
        if not found:
            raise SystemExit(f"no NVML power channel: {why}")
        chans = [c.tuple for c in found]
        print(f"NVML power of GPU 0; probe: {probe.backend}")
    else:
        rails = jetson_rails.discover_rails([])
        chans = [r.channel for r in rails]
        print(f"{len(chans)} rails ({', '.join(r.name for r in rails)}) under {args.sysfs_root}; "
              f"probe: {probe.backend}")
    print(f"{'sampler':8s} {'rate Hz':>8s} {'achieved Hz':>12s} {'CPU % of a core':>16s} {'dropped':>8s}")
    for rate in [float(x) for x in args.rates.split(",")]:
        kinds = [("native", probe.native_module().PowerSampler)] if probe.native_module() else []
        kinds.append(("python", lambda c, r, n: power.PythonPowerSampler(c, r, n)))
        for name, make in kinds:
            s = make(chans, rate, int(rate * args.seconds * 2) + 16)
            s.start()
            time.sleep(args.seconds)
            s.stop()
            t, _ = s.samples()
            span_s = (t[-1] - t[0]) / 1e9 if len(t) > 1 else float("nan")
            achieved = (len(t) - 1) / span_s if len(t) > 1 else 0.0
            cpu_pct = 100.0 * s.thread_cpu_ns / 1e9 / args.seconds
            print(f"{name:8s} {rate:8.0f} {achieved:12.1f} {cpu_pct:16.3f} {s.dropped:8d}")


if __name__ == "__main__":
    main()
