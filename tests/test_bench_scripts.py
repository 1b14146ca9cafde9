"""bench/ scripts read logs through edgebench's readers: compressed logs, old schema versions and a
line cut short by an interrupted run are handled like `edgebench compare` handles them."""
from __future__ import annotations

import gzip
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"  # recorded GPU results: in the repo, not in the sdist
SWEEP = RESULTS / "h100-2026-11-22b" / "logs" / "sweep_h100.jsonl"
pytestmark = pytest.mark.skipif(not SWEEP.exists(), reason="needs the repo's bench/results")


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], capture_output=True,
                          text=True, env=env, timeout=120)


def _module(name: str):
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_decode_floor_reads_a_gzipped_log_with_a_cut_line_and_matches_the_recorded_table(tmp_path):
    log = tmp_path / "sweep.jsonl.gz"
    text = SWEEP.read_text()
    with gzip.open(log, "wt") as fh:
        fh.write(text + text.splitlines()[-1][:40])  # the last line again, cut short
    out = _run("decode_floor.py", str(log), "--env", str(SWEEP.parents[1] / "env.json"))
    assert out.returncode == 0, out.stderr
    assert "sweep.jsonl.gz:52:" in out.stderr  # the cut line is reported, the rest is used
    recorded = (RESULTS / "h100-2026-11-22b" / "decode_floor.md").read_text().splitlines()
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) > 10 and set(rows) <= set(recorded)


def test_decode_floor_takes_the_copy_bandwidth_from_the_run_header_without_env(tmp_path):
    """bench/decode_floor.py is a caller of edgebench.analysis.floors: a log whose run header holds
    the micro-benchmarks needs no --env file; one without them is refused, naming --env."""
    import json

    def case(mode, tpot):
        return {"v": 1, "type": "case", "run": "r1", "key": mode, "model": "tiny-llama", "backend": "hf",
                "dtype": "bfloat16", "ctx": 1024, "gen": 8, "batch": 1, "decode_mode": mode, "logits": "last",
                "status": "ok", "device": "GPU", "tpot_ms": {"median": tpot, "p10": tpot, "p90": tpot,
                                                             "stdev": 0.0, "n": 8}}
    micro = {"ok": True, "why": None, "gpus": [{"index": 0, "copy_bw_bytes_per_s": 1e9}]}
    head = {"v": 1, "type": "run", "run": "r1", "t": "2026-12-01T00:00:00+00:00", "device": "GPU",
            "spec": {"device": "auto"}, "env": {"gpus": [{"index": 0, "name": "GPU"}], "micro": micro}}
    log = tmp_path / "a.jsonl"
    log.write_text("".join(json.dumps(x) + "\n" for x in (head, case("eager", 5.0), case("graph", 1.0))))
    out = _run("decode_floor.py", str(log))
    assert out.returncode == 0, out.stderr
    # 541,312 bytes per step (tests/test_floors.py) at 1 GB/s: 0.541 ms
    assert "| tiny-llama | 1024 | 1 | 0.541 | 5.000 | 1.000 | 5.00x | 9.2x | 1.8x |" in out.stdout
    del head["env"]["micro"]
    log.write_text("".join(json.dumps(x) + "\n" for x in (head, case("eager", 5.0))))
    out = _run("decode_floor.py", str(log))
    assert out.returncode != 0 and "pass --env ENV.json" in out.stderr


def test_run_overhead_accounts_an_existing_logs_wall_time_in_four_parts():
    """bench/run_overhead.py --log LOG --wall-s S: the run's wall time split into outside the points,
    per-point set-up, cold first calls and timed work, which add up to it; bad input is refused."""
    log = RESULTS / "h200-2026-11-30b" / "call3" / "vm-default-gpu.jsonl"
    out = _run("run_overhead.py", "--label", "call3", "--log", str(log), "--wall-s", "140")
    assert out.returncode == 0, out.stderr
    parts = {}
    for line in out.stdout.splitlines():
        for name in ("outside the points", "per-point set-up", "cold first calls", "timed work",
                     "detect_kernels"):
            if line.strip().startswith(name):
                parts[name] = float(re.search(r"(-?[\d.]+) s(  |$)", line).group(1))
    assert "accounting of 140.0 s wall, 9 points (sum of their wall_s 106.2 s)" in out.stdout
    assert parts["outside the points"] == pytest.approx(33.8, abs=0.05)
    assert parts["detect_kernels"] == pytest.approx(6.8, abs=0.05)
    whole = sum(parts[k] for k in ("outside the points", "per-point set-up", "cold first calls",
                                   "timed work"))
    assert whole == pytest.approx(140, abs=0.3)
    refused = _run("run_overhead.py", "--log", str(log))
    assert refused.returncode == 2 and "--wall-s" in refused.stderr
    # a log from before the point executor has no worker wall times: said, not split into negatives
    old = RESULTS / "h200-2026-11-30e" / "call1" / "before-default-gpu.jsonl"
    out = _run("run_overhead.py", "--log", str(old), "--wall-s", "222.3")
    assert out.returncode == 0 and "accounting of 222.3 s wall: not split" in out.stdout
    assert " -" not in out.stdout.split("accounting", 1)[1].split("timeline")[0]


def test_run_overhead_accounts_a_devices_run_in_device_seconds_and_only_the_new_runs(tmp_path):
    """--devices runs points on several GPUs at once: the parts are device-seconds (GPUs x wall) and
    nothing comes out negative; a log that also holds an older run counts only the runs written
    since the command started."""
    mod = _module("run_overhead")
    log = RESULTS / "h200-2026-11-30c" / "call2" / "devices_all.jsonl"
    got = mod.timed_work(str(log))
    assert got["devices"] == 2 and got["points"] == 9
    acc = mod.accounting(got, 144.8)
    assert acc["outside_points_s"] == pytest.approx(2 * 144.8 - 174.6, abs=0.05) and acc["outside_points_s"] > 0
    assert sum(acc.values()) == pytest.approx(2 * 144.8, abs=0.01)
    assert "289.6 device-seconds (2 GPUs x 144.8 s wall)" in mod.show_accounting(got, 144.8)
    both = tmp_path / "resumed.jsonl"  # an older one-GPU run, then the devices run
    both.write_text((RESULTS / "h200-2026-11-30c" / "call2" / "devices_one.jsonl").read_text() + log.read_text())
    assert mod.timed_work(str(both))["points"] == 18
    newer = mod.timed_work(str(both), since="2026-11-30T14:00:00")
    assert newer["points"] == 9 and newer["points_wall_s"] == pytest.approx(174.6, abs=0.05)


def test_run_overhead_names_the_parts_outside_the_points_from_the_logs_timeline(tmp_path):
    """A log whose header has `startup_s` / `preload_s` and whose run ends with an `end` record:
    run_overhead splits the run's wall time before, between and after the points into named parts
    (the environment snapshot, the fork servers' preload left after it, their shutdown, the summary
    and exit), which chain from the process's start to the wall time."""
    import json
    src = RESULTS / "h200-2026-11-30b" / "call3" / "vm-default-gpu.jsonl"
    lines = [json.loads(x) for x in src.read_text().splitlines() if x.strip()]
    head = lines[0]
    head["startup_s"] = {"main": 0.5, "prestart": 0.6, "env_start": 0.8, "env": 12.0, "log_open": 12.3,
                         "preload_ready": 25.0, "header": 25.1}
    head["preload_s"] = {"cuda:0": [0.6, 12.3, 25.0]}
    end = {"v": 2, "type": "end", "run": head["run"], "t": head["t"],
           "teardown_s": {"first_point": 25.2, "points_done": 132.0, "servers_closed": 133.5}}
    log = tmp_path / "timeline.jsonl"
    log.write_text("".join(json.dumps(x) + "\n" for x in [*lines, end]))
    out = _run("run_overhead.py", "--log", str(log), "--wall-s", "140")
    assert out.returncode == 0, out.stderr
    parts = {}
    for line in out.stdout.split("timeline of run")[1].splitlines()[1:]:
        m = re.match(r"  ([^:\s][^:]*?)\s+(-?[\d.]+) s$", line)
        if m:
            parts[m.group(1)] = float(m.group(2))
    assert parts["environment snapshot (a worker)"] == pytest.approx(11.2)
    assert parts["log open to fork servers READY (preload left)"] == pytest.approx(12.7)
    assert parts["fork servers' shutdown (or hand-over to the next group)"] == pytest.approx(1.5)
    assert parts["after the end record (summary, exit)"] == pytest.approx(6.5)
    assert sum(parts.values()) == pytest.approx(140, abs=0.01)  # chained from 0 to the wall time
    assert "fork server cuda:0: started 0.6, models named 12.3, READY 25.0" in out.stdout
    from edgebench.cli import main  # and the end record is one the readers accept
    assert main(["validate", str(log)]) == 0


def test_a_points_untimed_steps_are_recorded_and_run_overhead_names_them(tmp_path):
    """Each prefill line's `setup_ms` holds its worker's untimed steps (device init, telemetry,
    memory model, release between decode modes) and the worker's whole run; the named steps fit
    inside the worker, the worker inside the point's wall time, and run_overhead lists them (and the
    process's start and exit) under the per-point set-up."""
    import json
    log = tmp_path / "run.jsonl"
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-m", "edgebench", "run", "-m", "tiny-llama", "-c", "32,64", "-n", "2",
                    "-r", "1", "--warmup", "0", "--decode-mode", "eager", "-q", "-o", str(log)],
                   check=True, capture_output=True, env=env, timeout=300)
    pre = [x for x in map(json.loads, log.read_text().splitlines()) if x["type"] == "case" and "wall_s" in x]
    assert len(pre) == 2
    for x in pre:
        parts = x["setup_ms"]
        assert {"device_init", "telemetry", "predict", "release", "worker"} <= set(parts)
        assert sum(v for k, v in parts.items() if k != "worker") <= parts["worker"] <= x["wall_s"] * 1e3 + 50
    out = _run("run_overhead.py", "--log", str(log), "--wall-s", "30")
    assert out.returncode == 0, out.stderr
    setup = out.stdout.split("per-point set-up")[1].split("cold first calls")[0]
    assert "process start and exit (wall_s - worker)" in setup and "telemetry" in setup


DEVICES = RESULTS / "h200-2026-11-30e" / "call5"  # one `edgebench run` on one GPU, then with --devices all


def _records(path: Path) -> list[dict]:
    import json
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_devices_compare_reads_the_wall_ratio_schedule_and_line_ratios_from_the_two_logs():
    """bench/devices_compare.py ONE ALL: the wall ratio from each log's own `end` record, every point
    of the --devices run under the GPU that ran it, and each line's all/one ratio; on the recorded H200
    pair the lines no flag marks (graph TPOT, the 16K prefills) agree within 2%."""
    one, both = DEVICES / "devices_one.jsonl", DEVICES / "devices_all.jsonl"
    out = _run("devices_compare.py", str(one), str(both))
    assert out.returncode == 0, out.stderr
    recs = {name: _records(path) for name, path in (("one", one), ("all", both))}
    wall = {name: next(r for r in rs if r["type"] == "end")["teardown_s"]["servers_closed"]
            for name, rs in recs.items()}
    printed = re.search(r"^wall .*: ratio ([\d.]+)x$", out.stdout, re.M)
    assert printed and float(printed.group(1)) == pytest.approx(wall["one"] / wall["all"], abs=0.0051)

    # the per-GPU schedule: each prefill line (it holds the point's wall_s) once, under its device
    prefill = [r for r in recs["all"] if r["type"] == "case" and "wall_s" in r]
    want = sorted((str(r["device_index"]), r["model"], str(r["ctx"]), f"{r['wall_s']:.1f}") for r in prefill)
    got = []
    for m in re.finditer(r"^  cuda:(\S+) +([\d.]+) s busy: (.*)$", out.stdout, re.M):
        entries = [e.split() for e in m.group(3).split(", ")]
        got += [(m.group(1), *e) for e in entries]
        assert float(m.group(2)) == pytest.approx(sum(float(e[2]) for e in entries), abs=0.1 * len(entries))
    assert len(prefill) == 9 and sorted(got) == want
    assert len({g[0] for g in got}) == 2  # both GPUs of the --devices run held points

    # each line's all/one ratio, computed here from the two logs' medians
    def lines(rs):
        return {(r["model"], str(r["ctx"]), r.get("decode_mode") or "prefill"): r
                for r in rs if r["type"] == "case"}
    a, b = lines(recs["one"]), lines(recs["all"])
    assert a.keys() == b.keys()
    table = {}
    for row in out.stdout.splitlines():
        f = row.split()
        if len(f) >= 8 and (f[0], f[1], f[2]) in a:  # model ctx line status dev one all all/one flags
            table[(f[0], f[1], f[2])] = (float(f[7]), "".join(f[8:]))
    assert table.keys() == a.keys()
    unflagged = []
    for key in a:
        metric = "prefill_ms" if key[2] == "prefill" else "tpot_ms"
        ratio = b[key][metric]["median"] / a[key][metric]["median"]
        flagged = any(r.get(k) for r in (a[key], b[key]) for k in ("host_bound", "unstable"))
        assert table[key][0] == pytest.approx(ratio, abs=0.0006)
        assert bool(table[key][1]) == flagged, key
        if not flagged:
            unflagged.append((key, ratio))
    assert {k for k in a if k[2] == "graph"} <= {k for k, _ in unflagged}
    assert any(k[2] == "prefill" and k[1] == "16384" for k, _ in unflagged)
    for key, ratio in unflagged:
        assert abs(ratio - 1) <= 0.02, (key, ratio)
    worst = max(abs(r - 1) for _, r in unflagged)
    assert f"GPU-bound lines (no flag): all/one within {100 * worst:.1f}%" in out.stdout


@pytest.fixture
def devices_compare(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # it imports run_overhead from its own directory
    return _module("devices_compare")


def test_devices_compare_span_bound_chains_an_autotune_groups_carrier(devices_compare):
    """span_bound: no schedule on n GPUs ends the points before sum / n, nor before the Mamba-2
    autotune group's carrier (the point with the longest cold first forward) plus the rest of its
    group spread over n; points of other models are not in the group."""
    def pt(model, ctx, wall, first):
        return {"model": model, "ctx": ctx, "wall_s": wall, "first_forward_s": first}

    qwen = [pt("qwen2.5-0.5b", 1024, 10.0, 3.0), pt("qwen2.5-0.5b", 4096, 4.0, 0.5)]
    got = devices_compare.span_bound(qwen, 2)  # (a) no autotune group
    assert got["bound_s"] == pytest.approx(7.0) and got["group_rest_s"] == 0

    # (b) the carrier is the longest first forward, not the longest point (35 s, a warm mamba point)
    points = [pt("mamba2-780m", 16384, 30.0, 25.0), pt("mamba2-780m", 4096, 35.0, 2.0),
              pt("mamba2-780m", 1024, 8.0, 1.0), *qwen]
    got = devices_compare.span_bound(points, 2)
    assert got["carrier"] == "mamba2-780m 16384" and got["carrier_s"] == pytest.approx(30.0)
    assert got["group_rest_s"] == pytest.approx(43.0)  # the qwen points' 14 s are not in it
    assert got["sum_s"] == pytest.approx(87.0)
    assert got["bound_s"] == pytest.approx(30.0 + 43.0 / 2)  # 51.5 > 87 / 2
    # a short carrier: sum / n is the larger bound
    light = [pt("mamba2-780m", 1024, 10.0, 5.0), pt("mamba2-780m", 4096, 2.0, 1.0),
             pt("qwen2.5-0.5b", 1024, 30.0, 1.0), pt("qwen2.5-0.5b", 4096, 30.0, 1.0)]
    assert devices_compare.span_bound(light, 2)["bound_s"] == pytest.approx(72.0 / 2)

    # a model outside the group with the longest cold first forward does not hide the group
    slow_start = [pt("qwen2.5-0.5b", 16384, 5.0, 60.0), *points]
    got = devices_compare.span_bound(slow_start, 2)
    assert got["carrier"] == "mamba2-780m 16384" and got["bound_s"] == pytest.approx(51.5)

    # the scheduler's groups are per dtype: a bfloat16 and a float32 run of one model autotune apart
    two = [dict(pt("mamba2-780m", 16384, 30.0, 25.0), dtype="bfloat16"),
           dict(pt("mamba2-780m", 16384, 30.0, 24.0), dtype="float32"),
           dict(pt("mamba2-780m", 1024, 4.0, 1.0), dtype="float32")]
    got = devices_compare.span_bound(two, 2)
    assert got["group_rest_s"] == pytest.approx(4.0) and got["bound_s"] == pytest.approx(64.0 / 2)

    # (c) one GPU: the points run one after another
    assert devices_compare.span_bound(points, 1)["bound_s"] == pytest.approx(87.0)
    assert devices_compare.span_bound(qwen, 1)["bound_s"] == pytest.approx(14.0)


def test_devices_compare_refuses_a_log_without_its_end_record(tmp_path):
    """A --devices run killed before its `end` record has no timeline to take its wall time from:
    devices_compare says so and exits non-zero, not with a traceback."""
    lines = (DEVICES / "devices_all.jsonl").read_text().splitlines()
    assert _records(DEVICES / "devices_all.jsonl")[-1]["type"] == "end"
    cut = tmp_path / "killed.jsonl"
    cut.write_text("\n".join(lines[:-3]) + "\n" + lines[-3][:50])  # two lines and the end record gone
    out = _run("devices_compare.py", str(DEVICES / "devices_one.jsonl"), str(cut))
    assert out.returncode != 0
    assert "killed.jsonl: no timeline" in out.stderr and "end record" in out.stderr
    assert "Traceback" not in out.stderr


def _with(tmp_path: Path, name: str, path: Path, change) -> Path:
    """A copy of the log at `path` with `change(record)` applied to each record."""
    import json
    recs = _records(path)
    for r in recs:
        change(r)
    out = tmp_path / name
    out.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return out


def _tune(config: str):
    def change(r):
        if r["type"] == "case" and r["model"] != "qwen2.5-0.5b" and "wall_s" in r:  # Mamba-2 prefill lines
            r["autotune"] = {"_chunk_scan_fwd_kernel": config}
    return change


def test_devices_compare_flags_a_only_where_both_runs_name_their_autotune_choice_and_they_differ(
        tmp_path, devices_compare):
    """A: both runs' prefill lines name an autotune choice and the choices differ; a log from before the
    `autotune` field (or a line whose worker recorded none) against a newer one is no evidence of a
    different choice and flags nothing."""
    one, both = DEVICES / "devices_one.jsonl", DEVICES / "devices_all.jsonl"
    newer = _with(tmp_path, "all_tuned.jsonl", both, _tune("BLOCK_SIZE_M=64,num_warps=4"))
    rows = devices_compare.compare(str(one), str(newer))["rows"]
    assert not [r for r in rows if "A" in r["flags"]]

    older = _with(tmp_path, "one_tuned.jsonl", one, _tune("BLOCK_SIZE_M=32,num_warps=2"))
    rows = devices_compare.compare(str(older), str(newer))["rows"]
    flagged = {(r["model"], r["line"]) for r in rows if "A" in r["flags"]}
    assert {m for m, _ in flagged} == {"mamba2-780m", "zamba2-1.2b"}
    assert {line for _, line in flagged} == {"prefill", "eager", "graph"}  # decode lines by their prefill's
    same = _with(tmp_path, "one_same.jsonl", one, _tune("BLOCK_SIZE_M=64,num_warps=4"))
    assert not [r for r in devices_compare.compare(str(same), str(newer))["rows"] if "A" in r["flags"]]


def test_devices_compare_refuses_two_runs_of_different_plans(tmp_path):
    """The two logs must be the same plan (a leg kept from an earlier call with other arguments, e.g.
    --runs 3 against --runs 1, gives a meaningless ratio): the differing settings are named, exit non-zero."""
    def three_runs(r):
        if r["type"] == "run":
            r["spec"]["runs"] = 3
    one = _with(tmp_path, "one_runs3.jsonl", DEVICES / "devices_one.jsonl", three_runs)
    out = _run("devices_compare.py", str(one), str(DEVICES / "devices_all.jsonl"))
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "different plans" in out.stderr and "runs 3 / 1" in out.stderr


def test_gpu_session_devices_stage_never_compares_a_leg_left_by_an_earlier_call(tmp_path):
    """tools/lent-gpu/gpu_session.sh `devices`: a leg keeps its log in $STATE so that a later call can run
    the other leg; a leg that fails before writing a log must not leave the earlier call's log of that leg
    in its place, or the stage compares two runs of different calls as if they were one pair."""
    script = (ROOT / "tools" / "lent-gpu" / "gpu_session.sh").read_text()
    body = re.search(r"^devices\(\) \{.*?^\}$", script, re.M | re.S).group(0)
    stub = tmp_path / "py"  # as python3: a leg writes its log only when LEG_OK is set; compare says so
    stub.write_text('#!/bin/bash\ncase "$*" in\n  *devices_compare.py*) echo "compared $2 $3"; exit 0;;\n'
                    '  *run_overhead.py*) [ -n "${LEG_OK:-}" ] || exit 1; mkdir -p edgebench-logs\n'
                    '    echo new > edgebench-logs/vm.jsonl; exit 0;;\nesac\nexit 2\n')
    stub.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()

    def stage(*args: str, ok: bool) -> str:
        shell = f'set -uo pipefail\nlog() {{ echo "== $*"; }}\n{body}\ndevices {" ".join(args)}\n'
        env = {"PATH": "/usr/bin:/bin", "PY": str(stub), "STATE": str(state), "OUT": str(tmp_path),
               **({"LEG_OK": "1"} if ok else {})}
        out = subprocess.run(["bash", "-c", shell], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        return out.stdout

    for leg in ("one", "all"):
        (state / f"devices_{leg}.jsonl").write_text("earlier call\n")
    assert "compared" not in stage("5", "cold", "all", ok=False)  # the failed leg: nothing to compare
    assert (state / "devices_one.jsonl").read_text() == "earlier call\n"  # the other leg is kept
    assert f"compared {state}/devices_one.jsonl {state}/devices_all.jsonl" in stage("5", "cold", "all", ok=True)
    assert (state / "devices_all.jsonl").read_text() == "new\n"


def test_devices_compare_pairs_lines_of_one_dtype_whatever_order_the_runs_wrote_them(tmp_path, devices_compare):
    """A plan with two dtypes (or backends, batches ...) has two lines per (model, ctx, line): each is
    compared with its own counterpart, not with whichever the other log wrote last (a --devices log
    writes lines as GPUs finish, in another order than the one-GPU log)."""
    import json

    def add_float16(path: Path, name: str, first: bool) -> Path:
        recs = _records(path)
        cases = [r for r in recs if r["type"] == "case"]
        copies = []
        for r in cases:
            c = json.loads(json.dumps(r))
            c["dtype"] = "float16"
            for metric in ("prefill_ms", "tpot_ms"):
                if c.get(metric):
                    c[metric] = {k: v * 2 if k in ("median", "p10", "p90") else v for k, v in c[metric].items()}
            copies.append(c)
        body = copies + cases if first else cases + copies
        out = tmp_path / name
        out.write_text("".join(json.dumps(r) + "\n" for r in [recs[0], *body, *recs[len(cases) + 1:]]))
        return out

    one = add_float16(DEVICES / "devices_one.jsonl", "one.jsonl", first=False)
    both = add_float16(DEVICES / "devices_all.jsonl", "all.jsonl", first=True)
    plain = {(r["model"], r["ctx"], r["line"]): r["ratio"]
             for r in devices_compare.compare(str(DEVICES / "devices_one.jsonl"), str(DEVICES / "devices_all.jsonl"))["rows"]}
    rows = devices_compare.compare(str(one), str(both))["rows"]
    assert len(rows) == 2 * len(plain)
    for r in rows:  # each dtype's all/one as in the plain pair (both sides' medians doubled for float16)
        assert r["ratio"] == pytest.approx(plain[(r["model"], r["ctx"], r["line"])], rel=1e-9), r
