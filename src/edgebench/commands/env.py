"""`edgebench env`: what this machine has and lacks for benchmarking, with the fix for each gap."""
from __future__ import annotations

import argparse
import json

HELP = "show GPUs, driver, probe build, NVML, Jetson facts and packages, each gap with its fix"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the snapshot as JSON for machines")
    p.add_argument("--micro", action="store_true",
                   help="also run the device micro-benchmarks (launch latency, copy bandwidth, bf16 "
                        "matmul rate: the floors `compare` divides by; every run header has them)")


def main(args: argparse.Namespace) -> int:
    from edgebench.telemetry import environment as env
    snap = env.snapshot(deep=True, with_micro=args.micro)
    if args.json:
        print(json.dumps(snap, indent=1, default=str))
        return 0
    _render(snap)
    return 0


def _gib(n) -> str:
    return f"{n / 2**30:.1f} GiB" if isinstance(n, (int, float)) else "?"


def _render(s: dict) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    con = Console()
    row = lambda *cells: t.add_row(cells[0], cells[1], *(escape(str(c)) for c in cells[2:]))  # noqa: E731
    h = s["host"]
    con.print(f"[bold]edgebench {s['edgebench']}[/] on {h['hostname']} ({h['machine']}, "
              f"{h['cpu_count']} CPUs, {_gib(h['mem_total_bytes'])} RAM, Python {h['python']})")
    t = Table(show_header=True, header_style="bold", expand=False)
    for col in ("component", "status", "detail", "how to fix"):
        t.add_column(col, overflow="fold")
    p = s["probe"]
    ok = p["backend"] == "native-cuda"
    row("probe", _mark(ok), f"{p['backend']} (built with CUDA: {p['built_with_cuda']})"
              + (f" driver {p['cuda_driver_version']}" if ok else ""), p["why"] or "")
    nv = s["nvml"]
    row("NVML", _mark(nv["ok"]), "ok" if nv["ok"] else (nv["why"] or ""), nv["fix"] or "")
    if not s["gpus"]:
        row("GPU", _mark(False), "no CUDA GPU visible", "install the NVIDIA driver and a CUDA torch")
    for g in s["gpus"]:
        bw = g.get("theoretical_bw_bytes_per_s")
        detail = (f"{g.get('name')} sm_{str(g.get('compute_capability', '')).replace('.', '')}, "
                  f"{g.get('sm_count')} SMs, {_gib(g.get('total_bytes'))} ({_gib(g.get('mem_free_bytes'))} free)"
                  + (", integrated (unified memory)" if g.get("integrated") else "")
                  + (f", {bw / 1e9:.0f} GB/s theoretical" if bw else ""))
        row(f"GPU {g['index']}", _mark(True), detail, "")
    if "jetson" in s:
        j = s["jetson"]
        row("Jetson", _mark(True), ", ".join(f"{k}={v}" for k, v in j.items()
                                                   if k in ("model", "l4t", "nvpmodel", "jetson_clocks")), "")
    pw = s.get("power") or {}
    row("power", _mark(bool(pw.get("channels"))), ", ".join(pw.get("channels") or []) or (pw.get("why") or ""),
              "" if pw.get("channels") else "energy numbers will be null with this reason")
    for name, e in s["packages"].items():
        detail = e["version"] or ""
        if name == "torch" and e.get("version"):
            detail += f" (CUDA {e.get('cuda')}, GPU visible: {e.get('cuda_available')})"
        if name == "transformers" and e.get("supported"):
            detail += f" (edgebench supports {e['supported']})"
        if "compiled_kernels" in e:
            detail += f", compiled kernels import: {e['compiled_kernels']}"
        if e.get("why") and e["version"]:
            detail += f"; {e['why']}"
        row(name, _mark(e["ok"]), detail or (e.get("why") or ""), e.get("fix") or "")
    con.print(t)
    if "micro" in s:
        for line in micro_lines(s["micro"]):
            con.print(escape(line))


def micro_lines(m: dict) -> list[str]:
    """One line per GPU of the snapshot's `micro` component (or why it was skipped)."""
    if not m.get("gpus"):
        return [f"micro: skipped: {m.get('why')}" + (f" (fix: {m['fix']})" if m.get("fix") else "")]
    out = []
    for g in m["gpus"]:
        if g.get("why"):
            out.append(f"micro GPU {g['index']}: failed: {g['why']}")
            continue
        flops = g.get("matmul_bf16_flop_s")
        mm = (f"bf16 matmul {flops / 1e12:.1f} TFLOP/s (n={g.get('matmul_n')})" if flops
              else f"bf16 matmul: {g.get('matmul_why')}")
        out.append(f"micro GPU {g['index']}: copy {g['copy_bw_bytes_per_s'] / 1e9:.0f} GB/s, {mm}, launch "
                   f"{g['host_us_per_launch']:.2f} us host / {g['device_us_per_launch']:.2f} us device, "
                   f"event resolution {g['event_resolution_us']:.3f} us ({g['wall_ms']:.0f} ms)")
    return out


def _mark(ok: bool) -> str:
    return "[green]yes[/]" if ok else "[red]no[/]"
