"""Host-side cost of a timing mark: native probe vs torch.cuda.Event vs perf_counter_ns + synchronize.

All methods are measured side by side in one process, interleaved in rounds, on the same stream
with no device work queued (so the numbers are the host cost of issuing a mark). Prints one table
with ratios against the native mark, and writes JSON to $OUT (or bench/results/) when asked.

    python bench/probe_overhead.py [--json PATH] [--n 20000] [--rounds 7]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import edgebench.probe as probe


def per_op_ns(fn, n: int) -> float:
    t0 = time.perf_counter_ns()
    fn(n)
    return (time.perf_counter_ns() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    assert probe.cuda_ready(), probe.why
    n = args.n
    stream = torch.cuda.current_stream()
    native = probe.native_module()

    def native_marks(k):
        t = native.EventTimer(k + 2, stream.cuda_stream, 0, False)
        mark = t.mark
        for _ in range(k):
            mark()
        torch.cuda.synchronize()

    def probe_timer_marks(k):
        t = probe.Timer("cuda", capacity=k + 2)
        mark = t.mark
        for _ in range(k):
            mark()
        torch.cuda.synchronize()

    events = [torch.cuda.Event(enable_timing=True) for _ in range(n + 2)]

    def torch_marks(k):
        for e in events[:k]:
            e.record()
        torch.cuda.synchronize()

    def torch_marks_stream(k):
        for e in events[:k]:
            e.record(stream)
        torch.cuda.synchronize()

    def perf_sync(k):
        pc, sync = time.perf_counter_ns, torch.cuda.synchronize
        for _ in range(k):
            pc()
            sync()

    def perf_only(k):
        pc = time.perf_counter_ns
        for _ in range(k):
            pc()

    methods = {"native EventTimer.mark": native_marks, "edgebench.probe.Timer.mark": probe_timer_marks,
               "torch.cuda.Event.record()": torch_marks, "torch.cuda.Event.record(stream)": torch_marks_stream,
               "perf_counter_ns + synchronize": perf_sync, "perf_counter_ns alone": perf_only}
    # Each round times every method once (including its final synchronize, amortised over n marks).
    results = {k: [] for k in methods}
    for fn in methods.values():
        fn(1000)  # warm up
    for _ in range(args.rounds):
        for name, fn in methods.items():
            results[name].append(per_op_ns(fn, n))
    med = {k: statistics.median(v) for k, v in results.items()}
    base = med["native EventTimer.mark"]
    res_us = native.event_resolution_us(0, 4000)
    print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}  n={n} marks x {args.rounds} rounds")
    print(f"{'method':36s} {'ns/mark':>10s} {'ns/pair':>10s} {'x native':>9s}")
    for k, v in med.items():
        print(f"{k:36s} {v:10.0f} {2 * v:10.0f} {v / base:9.2f}")
    ratio = med["torch.cuda.Event.record()"] / base
    print(f"event resolution: {res_us:.3f} us")
    print(f"native mark is {ratio:.1f}x cheaper on the host than torch.cuda.Event.record() "
          f"(target >= 3x: {'met' if ratio >= 3 else 'NOT met'})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "n": n,
                       "rounds": args.rounds, "ns_per_mark_median": med, "ns_per_mark_rounds": results,
                       "event_resolution_us": res_us, "ratio_torch_event_over_native": ratio}, fh, indent=1)


if __name__ == "__main__":
    main()
