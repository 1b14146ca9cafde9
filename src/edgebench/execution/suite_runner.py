"""A suite's run (`edgebench run --suite paper-desktop`): its grids through the grid planner, one
executor run per profile setting, then its max-context searches, every table's in one executor run
(`maxctx_planner.TablesPlanner`), all into one log; and its dry-run text. A `Spec` that is not a `Suite` runs through `grid_planner` alone.

A rerun resumes: the grids' lines already in the log are not measured again, and a search already
recorded for the device, backend, dtype and budget is not searched again (`searched`).
"""
from __future__ import annotations

from edgebench.execution import executor, grid_planner


def _shard(spec, shard: str | None) -> list:
    """The plan's lines, or one shard's (`edgebench.sweep.shards`)."""
    cases = spec.plan()
    if not shard:
        return cases
    from edgebench.sweep import shards
    return shards.select(cases, shard, reps=spec.reps, warmup=spec.warmup)[0]


def dry_run(spec, shard: str | None, suite: str | None, devices: str | None = None) -> str:
    """The grid plan (`grid_planner.dry_run`), then a suite's grids and searches and the estimated
    time (`edgebench.sweep.suite_plan`; with --devices, also on that many GPUs). A suite that cannot run on this machine's CPU (mamba_ssm,
    say) is planned for CUDA, with a note, when no --device was forced: its size is what was asked."""
    import dataclasses

    from edgebench.errors import UserError
    from edgebench.sweep import plan, suite_plan
    from edgebench.sweep.suite import Suite
    units = suite_plan.shard_units(spec, shard)
    cases = _shard(spec, shard)
    device, how = (spec.device, f"--device {spec.device}") if spec.device != "auto" else \
        plan.device_class(spec.device)
    notes = []
    if devices and spec.device == "auto" and device == "cpu":  # --devices names GPUs: plan for them
        # (a cluster's login node has none)
        spec, device = dataclasses.replace(spec, device="cuda"), "cuda"
    if isinstance(spec, Suite) and spec.device == "auto" and device == "cpu":
        try:  # the whole suite, not this shard: every task of an array plans for the same device
            plan.check(spec, spec.plan(), "cpu")
            from edgebench.execution.maxctx_planner import MaxctxPlanner
            for s, models, modes in spec.searches_for(spec.search_units()):
                MaxctxPlanner(s.options("cpu", None, {}, models, modes)).check("cpu")
        except UserError as exc:
            notes.append(f"note: planned for CUDA: no GPU here ({how}), and on the CPU: "
                         f"{str(exc).splitlines()[-1].strip()}")
            spec, device = dataclasses.replace(spec, device="cuda"), "cuda"
    if cases:
        text = grid_planner.dry_run(spec, shard=shard, suite=suite)
    else:
        text = (f"dry run: {'suite ' + suite + ', ' if suite else ''}0 cases on {device}; nothing is "
                f"loaded or measured\nlog: {spec.output or executor.default_output(suite)}")
    first, _, rest = text.partition("\n")
    head, _, log = rest.rpartition("log: ")
    return "\n".join([first, *notes, *filter(None, head.split("\n")),
                      *suite_plan.describe(spec, cases, units, device, plan.devices_count(devices)),
                      f"log: {log}"])


def run(spec, opts, suite: str | None, env: dict | None) -> tuple[str, list[dict]]:
    """A suite's grids (one executor run per profile setting), then its max-context searches (one
    run for every table), into one log; see the module doc."""
    import dataclasses
    import sys

    from edgebench.execution import prestart
    from edgebench.execution.maxctx_planner import MaxctxPlanner, TablesPlanner
    from edgebench.sweep import suite_plan
    cases = _shard(spec, opts.shard)
    units = suite_plan.shard_units(spec, opts.shard)
    header = {"suite": suite, "suite_shard": opts.shard}
    for s, models, modes in spec.searches_for(units):  # every search checked before anything runs
        MaxctxPlanner(s.options(spec.device, None, header, models, modes)).check(
            None if spec.device == "auto" else spec.device)
    out = spec.output or executor.default_output(suite)
    env = env or executor.snapshot_env()
    recs: list[dict] = []
    with prestart.keeping_servers(*loaded_models(spec, cases, units)):  # one preload serves every group
        for profile, sub in spec.groups(cases):
            run_opts = dataclasses.replace(opts, shard=None, profile_ops=opts.profile_ops or profile == "ops",
                                           extra_header={**opts.extra_header, **header})
            recs += grid_planner.run(dataclasses.replace(sub, output=out), run_opts, suite=suite, env=env)[1]
        device = executor.resolve_device(spec.device, env)
        total = env["gpus"][int(device.split(":")[1])]["total_bytes"] if device.startswith("cuda") else None
        done = searched(out, executor.device_label(device, env), env)
        planners = []
        for s, models, modes in spec.searches_for(units):
            dtype = executor.resolve_dtype(s.dtype, device)
            budget = s.options(spec.device, total).budget
            left = [m for m in models if (m, modes[0], s.backend, dtype, budget) not in done]
            if not left:
                continue
            if s.budget_note(total):
                print(f"note: {s.budget_note(total)}", file=sys.stderr)
            planners.append(MaxctxPlanner(s.options(spec.device, total, header, left, modes)))
        if planners:  # every table's searches in one run, dealt together (--devices: no table's tail)
            planner = planners[0] if len(planners) == 1 else TablesPlanner(planners, header)
            ex = executor.Executor(out, opts.wait_lock, opts.verbose, opts.quiet)
            ex.prepare(spec.device, env, planner.check_device, devices=opts.devices)
            ex.execute(planner)
    return out, recs


def loaded_models(spec, cases=None, units=None) -> tuple[list, tuple]:
    """(presets, backends) of every model a spec's grids and (a suite's) searches load: `cases` and
    `units` a shard's, by default all of them."""
    from edgebench.models import catalog
    from edgebench.sweep.suite import Suite
    cases = spec.plan() if cases is None else cases
    pairs = [(c.model, c.backend) for c in cases]
    if isinstance(spec, Suite):
        units = spec.search_units() if units is None else units
        pairs += [(m, table.backend) for table, models, _ in spec.searches_for(units) for m in models]
    return ([catalog.resolve(m) for m in dict.fromkeys(m for m, _ in pairs)],
            tuple(dict.fromkeys(b for _, b in pairs)))


def searched(out: str, label: str, env: dict) -> set[tuple]:
    """(model, logits mode, backend, dtype, budget) of the max-context results already in the log
    for this device."""
    import os

    from edgebench.logs.loader import device_label, load
    if not os.path.exists(out):
        return set()
    logs = load([out])
    here = device_label(label, (env.get("host") or {}).get("hostname"))
    found = set()
    for r in logs.maxctx:
        spec = ((logs.runs.get(r.get("run")) or {}).get("spec") or {}).get("maxctx") or {}
        if r.get("device") == here:
            found.add((r.get("model"), r.get("mode"), r.get("backend") or spec.get("backend") or "hf",
                       r.get("dtype"), r.get("budget_bytes")))
    return found
