"""Do concurrent workers on different GPUs of one host slow each other's host-bound numbers?

`--devices all` runs one worker per GPU at once. On the lent two-H200 machine the host-bound (H)
eager TPOTs of the default-gpu suite came out slower in the `--devices all` leg than in the one-GPU
leg at 16 of 18 lines over two calls (median ~1.25x), while the GPU-bound ones agreed within 1%.
This experiment finds out why, on the real thing: processes forked from one parent that imported
torch and transformers (as the fork server does), each building a preset with random weights on its
GPU (edgebench's own loader) and timing eager decode steps (edgebench's own `eager_step` and
`timed_steps`), released together by a barrier so that concurrent ones overlap.

Configurations, each a set of processes run at once, in this order (`alone` twice: drift):
    alone            one process on cuda:0
    pair             cuda:0 and cuda:1 at once
    alone+sampler    one process with a 50 Hz NVML power sampler on its GPU (as a worker has)
    pair+sampler     both with their samplers
    pair+pinned      both, each bound to its own half of the host's physical cores (sched_setaffinity),
                     torch's threads as many as its CPUs
    pair+1thread     both with torch.set_num_threads(1)
    alone            again
Each process prints its median / p90 step time and the involuntary context switches it suffered in
the timed loop (the kernel took its core away). Ratios are against the mean of the two `alone` runs
(on the first device: both GPUs of a pair are read against it). One sample per configuration: repeat
the script before reading a few percent into it.

    python bench/host_contention.py --model qwen2.5-0.5b --ctx 1024 --steps 100 --json OUT.json
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time


def physical_core_halves(cpus: list[int]) -> tuple[list[int], list[int]]:
    """Split the allowed CPUs into two sets that share no physical core (SMT siblings kept together),
    from sysfs topology; a plain halving where the topology is unreadable."""
    cores: dict[tuple[str, str], list[int]] = {}
    for cpu in cpus:
        base = f"/sys/devices/system/cpu/cpu{cpu}/topology"
        try:
            key = tuple(open(f"{base}/{name}").read().strip()
                        for name in ("physical_package_id", "core_id"))
        except OSError:
            key = ("?", str(cpu))
        cores.setdefault(key, []).append(cpu)
    groups = list(cores.values())
    half = len(groups) // 2 or 1
    first = [c for g in groups[:half] for c in g]
    second = [c for g in groups[half:] for c in g] or first
    return first, second


def child(spec: dict, barrier, queue) -> None:
    """One process's measurement; a failure is handed to the parent and frees the others' barrier."""
    try:
        _measure(spec, barrier, queue)
    except BaseException as exc:  # noqa: BLE001 - reported, not lost in a child's stderr
        barrier.abort()
        queue.put({"config": spec["config"], "device": spec["device"], "error": f"{type(exc).__name__}: {exc}"})


def _measure(spec: dict, barrier, queue) -> None:
    import torch

    from edgebench.measure.phases import eager_step, random_prompt, sync, timed_steps
    from edgebench.models import catalog
    from edgebench.models.loaders import load

    if spec.get("cpus"):
        os.sched_setaffinity(0, spec["cpus"])
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = spec["device"]
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    sampler = None
    if spec.get("sampler"):
        from edgebench.telemetry.power import channels_for_device, make_sampler
        channels, _ = channels_for_device("nvml", int(device.split(":")[1]))
        sampler, _ = make_sampler(channels)
        sampler.start()
    loaded = load(catalog.get(spec["model"]), "hf", device, "bfloat16", "sdpa")
    ids = random_prompt(loaded.vocab_size, 1, spec["ctx"], device)
    with torch.inference_mode():
        step, _ = eager_step(loaded, ids)
        for _ in range(spec["warmup"]):
            step()
        sync(device)
        barrier.wait(timeout=300)
        before = resource.getrusage(resource.RUSAGE_SELF)
        samples, _ = timed_steps(step, spec["steps"], device)
        after = resource.getrusage(resource.RUSAGE_SELF)
    if sampler is not None:
        sampler.stop()
    samples.sort()
    queue.put({"config": spec["config"], "device": device, "median_ms": statistics.median(samples),
               "p90_ms": samples[int(0.9 * (len(samples) - 1))],
               "invol_switches": after.ru_nivcsw - before.ru_nivcsw,
               "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
               "affinity": len(os.sched_getaffinity(0)), "threads": torch.get_num_threads()})


def run_config(name: str, specs: list[dict], ctx) -> list[dict]:
    barrier, queue = ctx.Barrier(len(specs)), ctx.Queue()
    procs = [ctx.Process(target=child, args=(dict(s, config=name), barrier, queue)) for s in specs]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    out = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    failed = [r for r in out if "error" in r and "BrokenBarrierError" not in r["error"]] or \
        [r for r in out if "error" in r]
    if failed:
        sys.exit(f"host_contention: {name} on {failed[0]['device']} failed: {failed[0]['error']}")
    for r in out:
        r["config_wall_s"] = round(time.monotonic() - t0, 1)
    return sorted(out, key=lambda r: r["device"])  # (cpu,cpu: both named cpu)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="qwen2.5-0.5b")
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--devices", default="cuda:0,cuda:1", help="the two devices (cpu,cpu: a smoke test)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    import torch  # noqa: F401 - imported once, before the forks, as the fork server does
    import transformers  # noqa: F401
    ctx = mp.get_context("fork")
    base = {"model": args.model, "ctx": args.ctx, "steps": args.steps, "warmup": args.warmup}
    allowed = sorted(os.sched_getaffinity(0))
    half0, half1 = physical_core_halves(allowed)
    print(f"host: {len(allowed)} CPUs allowed; halves by physical core: {len(half0)} / {len(half1)} CPUs",
          flush=True)
    d0, d1 = args.devices.split(",")
    gpu = d0.startswith("cuda")
    configs = [
        ("alone", [dict(base, device=d0)]),
        ("pair", [dict(base, device=d0), dict(base, device=d1)]),
        ("alone+sampler", [dict(base, device=d0, sampler=gpu)]),
        ("pair+sampler", [dict(base, device=d0, sampler=gpu), dict(base, device=d1, sampler=gpu)]),
        ("pair+pinned", [dict(base, device=d0, cpus=half0, threads=len(half0)),
                         dict(base, device=d1, cpus=half1, threads=len(half1))]),
        ("pair+1thread", [dict(base, device=d0, threads=1), dict(base, device=d1, threads=1)]),
        ("alone", [dict(base, device=d0)]),
    ]
    rows: list[dict] = []
    for name, specs in configs:
        rows += run_config(name, specs, ctx)
    ref = statistics.mean(r["median_ms"] for r in rows if r["config"] == "alone")
    print(f"\n{args.model} eager TPOT at {args.ctx} tokens, {args.steps} steps; ratio against `alone` "
          f"(mean of its two runs, {ref:.2f} ms)")
    print(f"{'config':15} {'device':7} {'median_ms':>9} {'p90_ms':>8} {'ratio':>6} {'invol_cs':>8} "
          f"{'cpu_s':>6} {'cpus':>4} {'thr':>3}")
    for r in rows:
        r["ratio"] = r["median_ms"] / ref
        print(f"{r['config']:15} {r['device']:7} {r['median_ms']:9.2f} {r['p90_ms']:8.2f} {r['ratio']:6.3f} "
              f"{r['invol_switches']:8d} {r['cpu_s']:6.2f} {r['affinity']:4d} {r['threads']:3d}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"argv": sys.argv, "model": args.model, "ctx": args.ctx, "steps": args.steps,
                       "alone_ms": ref, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
