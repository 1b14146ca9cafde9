"""One GPU against `--devices`, from the two runs' logs: the wall-time ratio, each line's medians side
by side, the `--devices` run's schedule, and the shortest span any schedule of its points could have.

    python bench/devices_compare.py ONE.jsonl ALL.jsonl [--json OUT.json]

Wall times come from each log's own timeline (the header's `startup_s`, the `end` record's
`teardown_s`: from the process start to the points' end), so the ratio needs nothing but the logs.

The bound: the points of one autotune group (`kernel_detect`'s Mamba-2 Triton kernels at one shape)
wait while the group's first point autotunes, rather than pay the same autotune at once on another
GPU. So no schedule on n GPUs ends the points before max(sum / n, carrier + rest of its group / n),
the carrier being the point with the longest cold first forward. Start-up (imports, the environment
snapshot) is serial: ratio <= wall(one) / (start-up(all) + that span).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys

from run_overhead import timelines  # bench/: the same directory

from edgebench.logs.loader import load
from edgebench.models import catalog, kernel_detect


def _run(path: str) -> dict:
    logs = load([path])
    if len(logs.runs) != 1:
        sys.exit(f"{path}: {len(logs.runs)} runs in the log; give one run's log")
    run_id, header = next(iter(logs.runs.items()))
    tls = [t for t in timelines(path) if t["run"] == run_id]
    tear = tls[0]["teardown_s"] if tls else {}
    if not tear.get("first_point") or not tear.get("points_done"):
        sys.exit(f"{path}: no timeline (header startup_s, end record's teardown_s): a run killed before "
                 "its end record, or an older edgebench")
    times = {"startup_s": tear["first_point"], "span_s": tear["points_done"] - tear["first_point"],
             "wall_s": tear.get("servers_closed", tear["points_done"])}
    return {"header": header, "cases": [r for r in logs.cases if r.get("run") == run_id], "times": times}


VARIANT = ("backend", "dtype", "attn", "batch", "gen", "logits")  # the rest of a line's identity


def _key(r: dict) -> tuple:
    return (r["model"], r["ctx"], str(r.get("decode_mode") or "prefill"), *(r.get(f) for f in VARIANT))


def _group(model: str, dtype: str | None = None, backend: str = "hf"):
    """The point's autotune group as the scheduler formed it on the GPU machine, where mamba_ssm ran."""
    try:
        preset = catalog.get(model)
    except Exception:  # noqa: BLE001 - a local model directory: not a preset, in no group
        return None
    return kernel_detect.autotune_group(preset, backend, dtype, installed=True)


def span_bound(points: list[dict], n: int) -> dict:
    """The shortest span of `points` (prefill lines: model, wall_s, cold first forward) on n GPUs: sum / n,
    or an autotune group's carrier (its point with the longest cold first forward) + the rest of that
    group / n, whichever is longer; points of models with no Mamba-2 kernels are in no group."""
    total = sum(p["wall_s"] for p in points)
    groups: dict = {}
    for p in points:
        if (g := _group(p["model"], p.get("dtype"), p.get("backend") or "hf")) is not None:
            groups.setdefault(g, []).append(p)
    carrier, rest, chain = None, 0.0, 0.0
    for members in groups.values():
        first = max(members, key=lambda p: p["first_forward_s"])
        others = sum(p["wall_s"] for p in members if p is not first)
        if first["wall_s"] + others / n > chain:
            carrier, rest, chain = first, others, first["wall_s"] + others / n
    return {"sum_s": total, "carrier": carrier and f"{carrier['model']} {carrier['ctx']}",
            "carrier_s": carrier and carrier["wall_s"], "group_rest_s": rest, "bound_s": max(total / n, chain)}


# The settings that make two runs the same plan (where it ran, its output and limits may differ).
PLAN = ("models", "backends", "dtypes", "ctx", "gen", "batch", "decode_modes", "logits", "attn", "reps",
        "runs", "warmup")


def compare(one_path: str, all_path: str) -> dict:
    one, both = _run(one_path), _run(all_path)
    specs = [(r["header"].get("spec") or {}) for r in (one, both)]
    differ = [f"{k} {specs[0].get(k)} / {specs[1].get(k)}" for k in PLAN if specs[0].get(k) != specs[1].get(k)]
    if differ:
        sys.exit(f"{one_path} and {all_path} are runs of different plans ({'; '.join(differ)}): give two "
                 "logs of the same call's arguments, one without and one with --devices")
    t1, t2 = one["times"], both["times"]
    a = {_key(r): r for r in one["cases"]}
    b = {_key(r): r for r in both["cases"]}
    rows = []
    for key in sorted(a.keys() & b.keys()):
        metric = "prefill_ms" if key[2] == "prefill" else "tpot_ms"
        x, y = ((r.get(metric) or {}).get("median") for r in (a[key], b[key]))
        flags = "".join(f for f, k in (("H", "host_bound"), ("U", "unstable")) if a[key].get(k) or b[key].get(k))
        # the point's prefill line holds its worker's choice (absent: an older log, or none recorded)
        chose = [side.get((*key[:2], "prefill", *key[3:]), {}).get("autotune") for side in (a, b)]
        if all(chose) and chose[0] != chose[1]:
            flags += "A"  # the two runs' Triton autotune chose different configs for this point's kernels
        rows.append({"model": key[0], "ctx": key[1], "line": key[2], "metric": metric, "one": x, "all": y,
                     "ratio": y / x if x and y else None, "flags": flags,
                     "status": f"{a[key]['status']}/{b[key]['status']}", "variant": key[3:]})
    device_of = {(*k[:2], *k[3:]): r.get("device_index") for k, r in b.items() if k[2] == "prefill"}
    for row in rows:
        row["device_index"] = device_of.get((row["model"], row["ctx"], *row["variant"]))
    points = [{"model": r["model"], "ctx": r["ctx"], "dtype": r.get("dtype"), "backend": r.get("backend"),
               "device_index": r.get("device_index"),
               "wall_s": r["wall_s"],
               "first_forward_s": ((r.get("cold_ms") or {}).get("first_forward") or 0.0) / 1e3}
              for r in both["cases"] if isinstance(r.get("wall_s"), (int, float))]
    n = len(both["header"].get("devices") or []) or 1
    bound = span_bound(points, n)
    ratios = {"gpu_bound": [r["ratio"] for r in rows if r["ratio"] and not r["flags"]],
              "host_bound": [r["ratio"] for r in rows if r["ratio"] and "H" in r["flags"]]}
    lines = {side: {"lines": len(run["cases"]), "ok": sum(r.get("status") == "ok" for r in run["cases"])}
             for side, run in (("one", one), ("all", both))}
    gpus = sorted({(r.get("device_index"), r.get("pci_bus_id")) for r in both["cases"]
                   if isinstance(r.get("wall_s"), (int, float))}, key=str)
    return {"one": t1, "all": t2, "devices": n, "wall_ratio": t1["wall_s"] / t2["wall_s"], "lines": lines,
            "gpus": gpus,
            "ratio_bound": t1["wall_s"] / (t2["startup_s"] + bound["bound_s"]), "bound": bound, "rows": rows,
            "points": points,
            "gpu_bound_max_dev": max((abs(x - 1) for x in ratios["gpu_bound"]), default=None),
            "host_bound_geomean": math.exp(statistics.mean(math.log(x) for x in ratios["host_bound"]))
            if ratios["host_bound"] else None,
            "host_bound_slower": sum(x > 1 for x in ratios["host_bound"]), "host_bound_n": len(ratios["host_bound"])}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("one", help="the one-GPU run's log")
    ap.add_argument("all", help="the --devices run's log")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    got = compare(args.one, args.all)
    one, both, bound = got["one"], got["all"], got["bound"]
    print(f"wall (process start to points done and servers closed): one GPU {one['wall_s']:.1f} s, "
          f"{got['devices']} GPUs {both['wall_s']:.1f} s: ratio {got['wall_ratio']:.2f}x")
    print(f"start-up (to the first point): {one['startup_s']:.1f} s / {both['startup_s']:.1f} s; points' span "
          f"{one['span_s']:.1f} s / {both['span_s']:.1f} s")
    chain = (f"carrier {bound['carrier']} {bound['carrier_s']:.1f} s + its group's rest {bound['group_rest_s']:.1f}"
             f" s / {got['devices']}") if bound["carrier"] else "no autotune group"
    print(f"bound: the {got['devices']}-GPU span >= max(sum {bound['sum_s']:.1f} s / {got['devices']}, {chain}) = "
          f"{bound['bound_s']:.1f} s: ratio <= {got['ratio_bound']:.2f}x")
    print(f"lines ok: one GPU {got['lines']['one']['ok']}/{got['lines']['one']['lines']}, --devices "
          f"{got['lines']['all']['ok']}/{got['lines']['all']['lines']}; GPUs its points name (index, PCI bus id): "
          + ", ".join(f"({i}, {pci})" for i, pci in got["gpus"]))
    for dev in sorted({p["device_index"] for p in got["points"]}, key=str):
        mine = [p for p in got["points"] if p["device_index"] == dev]
        print(f"  cuda:{dev} {sum(p['wall_s'] for p in mine):6.1f} s busy: " +
              ", ".join(f"{p['model']} {p['ctx']} {p['wall_s']:.1f}" for p in mine))
    print(f"\n{'model':14} {'ctx':>6} {'line':8} {'status':6} {'dev':>3} {'one':>9} {'all':>9} all/one")
    several = len({r["variant"] for r in got["rows"]}) > 1  # (backend, dtype, ...) named where they vary
    for r in got["rows"]:
        ratio = f"{r['ratio']:.3f}" if r["ratio"] else "n/a"
        variant = f"  [{' '.join(map(str, r['variant']))}]" if several else ""
        print(f"{r['model']:14} {r['ctx']:>6} {r['line']:8} {r['status']:6} {r['device_index']!s:>3} "
              f"{r['one'] or float('nan'):9.4g} {r['all'] or float('nan'):9.4g} {ratio} {r['flags']}{variant}")
    if got["gpu_bound_max_dev"] is not None:
        print(f"\nGPU-bound lines (no flag): all/one within {100 * got['gpu_bound_max_dev']:.1f}%")
    differ = [r for r in got["rows"] if "A" in r["flags"]]
    if differ:
        devs = [abs(r["ratio"] - 1) for r in differ if r["ratio"] and "H" not in r["flags"]]
        print(f"A: the two runs' Triton autotune chose different configs for the point's kernels ({len(differ)} "
              f"lines; not host-bound ones: all/one within {100 * max(devs, default=0):.1f}%): compare them "
              "by their `autotune` field, not as run-to-run noise")
    if got["host_bound_geomean"] is not None:
        print(f"host-bound (H) lines: geometric mean all/one {got['host_bound_geomean']:.3f}, "
              f"{got['host_bound_slower']} of {got['host_bound_n']} slower with --devices")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(got, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
