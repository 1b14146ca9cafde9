"""A plain, independent timer for the phases edgebench measures: imports no edgebench module.

Only torch, transformers and the standard library. It reads `src/edgebench/models/presets.json` as
a plain data file (a preset's `model_type` and published `config`), builds the model with random
weights through transformers (`AutoConfig.for_model` + `AutoModelForCausalLM.from_config`, on the
device, in the dtype, sdpa attention where the class takes it, eval mode) and times, for each context:
- prefill: one full forward of a random prompt (`use_cache=True`, `logits_to_keep=1` where the
  forward takes it); median of `--reps` after `--warmup` warm-up forwards;
- eager: one token per forward on the cache the forward returned, greedy; median per-step time over
  `--gen` steps after `--warmup` steps (on a separate prefill). The first warm-up step's logits are
  checked against a full forward of the prompt plus that token (`check_rel_diff`: largest
  difference / largest logit; a warning above CHECK_WARN), so a cache that was not passed cannot go
  unnoticed;
- graph: transformers' `StaticCache`, one decode step (forward, argmax, position + 1) captured with
  `torch.cuda.graph` after warm-up on a side stream, replayed `--gen` times. CUDA only; a family whose
  step cannot be captured is reported skipped with the exception, never timed some other way.
CUDA times come from `torch.cuda.Event`s around each call (read after one synchronize); on the CPU
from `time.perf_counter`. One model per process (the bench starts one per model).

    python bench/plain_timer.py -m qwen2.5-0.5b -c 1024,16384 -n 64 --modes eager,graph --json OUT
"""
from __future__ import annotations

import argparse
import inspect
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM

PRESETS = Path(__file__).resolve().parents[1] / "src" / "edgebench" / "models" / "presets.json"
# The forward's cache keyword, newest transformers first; the output carries the cache under the same
# name. Written here again on purpose: this timer shares no code with edgebench.
CACHE_KEYWORDS = ("cache", "cache_params", "past_key_values")
CHECK_WARN = 0.2  # bf16 tiny presets on the CPU: 0 to 0.005 with the cache, 0.47 to 0.93 without it


class Clock:
    """Marks on one timeline: CUDA events recorded on the current stream (read after one
    synchronize at the end), or host perf_counter readings on the CPU."""

    def __init__(self, cuda: bool, capacity: int):
        self.cuda = cuda
        self.events = [torch.cuda.Event(enable_timing=True) for _ in range(capacity)] if cuda else []
        self.marks: list = []

    def mark(self) -> None:
        if self.cuda:
            ev = self.events[len(self.marks)]
            ev.record()
            self.marks.append(ev)
        else:
            self.marks.append(time.perf_counter())

    def ms(self, i: int, j: int) -> float:
        a, b = self.marks[i], self.marks[j]
        return a.elapsed_time(b) if self.cuda else (b - a) * 1e3

    def pairs_ms(self) -> list[float]:
        sync(self.cuda)
        return [self.ms(i, i + 1) for i in range(0, len(self.marks), 2)]

    def steps_ms(self) -> list[float]:
        sync(self.cuda)
        return [self.ms(i, i + 1) for i in range(len(self.marks) - 1)]


def sync(cuda: bool) -> None:
    if cuda:
        torch.cuda.synchronize()


def stats(samples: list[float]) -> dict:
    q = statistics.quantiles(samples, n=10, method="inclusive") if len(samples) > 1 else samples * 9
    return {"median_ms": statistics.median(samples), "p10_ms": q[0], "p90_ms": q[-1], "n": len(samples)}


def build(name: str, device: str, dtype: torch.dtype):
    """The preset's published architecture with random weights, built on the device; and the
    attention implementation it runs (None for a class without attention)."""
    presets = json.loads(PRESETS.read_text())["presets"]
    if name not in presets:
        sys.exit(f"plain_timer: unknown preset {name!r}; the presets are the keys of {PRESETS}")
    entry = presets[name]
    if entry.get("remote_code"):
        sys.exit(f"plain_timer: {name} needs its own modeling code; only presets transformers ships work here")
    torch.manual_seed(0)
    with torch.device(device):
        try:  # pure SSM classes refuse sdpa (they have no attention): build those with their default
            model = AutoModelForCausalLM.from_config(
                AutoConfig.for_model(entry["model_type"], **entry["config"]), dtype=dtype,
                attn_implementation="sdpa")
            attn = model.config._attn_implementation
        except ValueError:
            model = AutoModelForCausalLM.from_config(
                AutoConfig.for_model(entry["model_type"], **entry["config"]), dtype=dtype)
            attn = None
    return model.eval(), attn


class Forward:
    """The model's forward with the keywords its signature takes (capability, not version)."""

    def __init__(self, model):
        params = inspect.signature(model.forward).parameters
        self.model = model
        self.keyword = next((k for k in CACHE_KEYWORDS if k in params), None)
        if self.keyword is None:
            sys.exit(f"plain_timer: {type(model).__name__}.forward takes none of {CACHE_KEYWORDS}")
        self.keep = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
        self.positions = "cache_position" in params

    def __call__(self, ids, cache=None, pos=None):
        """`pos`: the first position of `ids` (an int, or a device tensor the caller advances)."""
        kw = dict(self.keep)
        if cache is not None:
            kw[self.keyword] = cache
        if self.positions and pos is not None:
            kw["cache_position"] = (torch.arange(pos, pos + ids.shape[1], device=ids.device)
                                    if isinstance(pos, int) else pos)
        out = self.model(input_ids=ids, use_cache=True, **kw)
        return out.logits, getattr(out, self.keyword, None)  # None: the eager check shows it

    def prefill(self, ids, cache=None):
        return self(ids, cache, 0)


def time_prefill(fwd: Forward, ids, reps: int, warmup: int, cuda: bool) -> list[float]:
    for _ in range(warmup + 1):
        out = fwd.prefill(ids)
        del out
    sync(cuda)
    clock = Clock(cuda, 2 * reps)
    for _ in range(reps):
        clock.mark()
        out = fwd.prefill(ids)
        clock.mark()
        del out  # the cache and logits are freed outside the timed region
    return clock.pairs_ms()


def time_eager(fwd: Forward, ids, gen: int, warmup: int, cuda: bool) -> tuple[list[float], float]:
    ctx = ids.shape[1]
    logits, cache = fwd.prefill(ids)
    tok = logits[:, -1:].argmax(-1)
    step_logits, cache = fwd(tok, cache, ctx)
    full, _ = fwd.prefill(torch.cat([ids, tok], dim=1))  # the same token without a cache
    ref = full[:, -1].float()
    diff = ((step_logits[:, -1].float() - ref).abs().max() / ref.abs().max()).item()
    tok = step_logits[:, -1:].argmax(-1)
    for i in range(warmup):
        lg, cache = fwd(tok, cache, ctx + 1 + i)
        tok = lg[:, -1:].argmax(-1)
    del cache, full, logits, step_logits
    logits, cache = fwd.prefill(ids)
    tok = logits[:, -1:].argmax(-1)
    sync(cuda)
    clock = Clock(cuda, gen + 1)
    clock.mark()
    for i in range(gen):
        lg, cache = fwd(tok, cache, ctx + i)
        tok = lg[:, -1:].argmax(-1)
        clock.mark()
    return clock.steps_ms(), diff


def time_graph(fwd: Forward, ids, gen: int, warmup: int) -> list[float]:
    from transformers import StaticCache
    ctx, dev = ids.shape[1], ids.device
    warm = max(warmup, 2)
    cache = StaticCache(config=fwd.model.config, max_cache_len=ctx + gen + warm + 2)
    logits, _ = fwd.prefill(ids, cache)
    tok = logits[:, -1:].argmax(-1)
    pos = torch.full((1,), ctx, dtype=torch.long, device=dev)

    def step():  # every tensor it touches keeps its address: token, position and cache are updated in place
        lg, _ = fwd(tok, cache, pos)
        tok.copy_(lg[:, -1:].argmax(-1))
        pos.add_(1)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warm):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    sync(True)
    with torch.cuda.graph(graph):
        step()
    sync(True)
    clock = Clock(True, gen + 1)
    clock.mark()
    for _ in range(gen):
        graph.replay()
        clock.mark()
    samples = clock.steps_ms()
    del graph
    return samples


def measure(args) -> list[dict]:
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        sys.exit(f"plain_timer: --device {args.device} but torch sees no CUDA GPU; use --device cpu")
    if cuda:
        torch.cuda.set_device(torch.device(args.device).index or 0)
    model, attn = build(args.model, args.device, getattr(torch, args.dtype))
    fwd = Forward(model)
    vocab = model.get_output_embeddings().out_features
    rows = []
    for ctx in args.ctx:
        ids = torch.randint(0, vocab, (1, ctx), generator=torch.Generator().manual_seed(0)).to(args.device)
        base = {"model": args.model, "ctx": ctx, "device": args.device, "dtype": args.dtype, "attn": attn}
        with torch.inference_mode():
            rows.append({**base, "phase": "prefill", **stats(time_prefill(fwd, ids, args.reps, args.warmup, cuda))})
            for mode in args.modes:
                row = {**base, "phase": mode}
                if mode == "eager":
                    samples, diff = time_eager(fwd, ids, args.gen, args.warmup, cuda)
                    row.update(stats(samples), check_rel_diff=diff)
                    if diff > CHECK_WARN:
                        print(f"WARNING plain {args.model} ctx {ctx}: a decode step's logits differ from a full "
                              f"forward by {diff:.3g} of the largest logit: the cache may not carry the context")
                elif not cuda:
                    row["skipped"] = "graph decode needs CUDA (torch.cuda.graph)"
                else:
                    try:
                        row.update(stats(time_graph(fwd, ids, args.gen, args.warmup)))
                    except Exception as exc:  # reported, never replaced by another way of timing
                        row["skipped"] = f"capture failed: {type(exc).__name__}: {str(exc)[:300]}"
                rows.append(row)
        for row in rows[-1 - len(args.modes):]:
            what = f"skipped ({row['skipped']})" if "skipped" in row else f"median {row['median_ms']:.3f} ms"
            if "check_rel_diff" in row:
                what += f", step vs full forward: {row['check_rel_diff']:.3g} of the largest logit"
            print(f"plain {args.model} ctx {ctx} {row['phase']}: {what}", flush=True)
        del ids
        if cuda:
            torch.cuda.empty_cache()
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", required=True, help="one preset name from presets.json")
    ap.add_argument("-c", "--ctx", required=True, type=lambda s: [int(x) for x in s.split(",")],
                    help="prompt lengths in tokens, comma-separated integers")
    ap.add_argument("-n", "--gen", type=int, default=64, help="decode steps timed")
    ap.add_argument("--modes", default="eager,graph", type=lambda s: s.split(","), help="eager, graph")
    ap.add_argument("-t", "--dtype", default="bfloat16")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("-r", "--reps", type=int, default=5, help="timed prefills")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    if bad := [m for m in args.modes if m not in ("eager", "graph")]:
        sys.exit(f"plain_timer: unknown decode mode(s) {bad}; use eager, graph")
    rows = measure(args)
    out = {"rows": rows, "torch": torch.__version__, "transformers": sys.modules["transformers"].__version__,
           "edgebench_modules": sorted(m for m in sys.modules if m.split(".")[0] == "edgebench")}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
