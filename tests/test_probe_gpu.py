"""The native probe on a real GPU (run on the lent H100 via tools/lent-gpu/gpu_session.sh)."""
from __future__ import annotations

import pytest

import edgebench.probe as probe

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def torch():
    import torch
    if not probe.cuda_ready():
        pytest.fail(f"a GPU is visible to torch but the native CUDA probe is not live: {probe.why}")
    return torch


def test_event_timing_agrees_with_torch_events(torch):
    a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ a
    torch.cuda.synchronize()
    timer = probe.Timer("cuda", capacity=64)
    t0, t1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    native, ref = [], []
    for _ in range(10):
        t0.record()
        timer.mark()
        for _ in range(20):
            a @ a
        timer.mark()
        t1.record()
        t1.synchronize()
        ref.append(t0.elapsed_time(t1))
    native = timer.pairs_ms()
    assert timer.kind == "native-cuda-events"
    for n, r in zip(native, ref):
        assert n == pytest.approx(r, rel=0.01), (native, ref)


def test_mem_get_info_agrees_with_torch(torch):
    free, total = probe.mem_get_info(0)
    t_free, t_total = torch.cuda.mem_get_info(0)
    assert total == t_total
    assert abs(free - t_free) <= 64 * 2**20


def test_device_info_is_complete(torch):
    info = probe.device_info(0)
    p = torch.cuda.get_device_properties(0)
    assert info["name"] == p.name
    assert info["sm_count"] == p.multi_processor_count
    assert info["compute_capability"] == f"{p.major}.{p.minor}"
    assert info["total_bytes"] == p.total_memory
    assert info["integrated"] is False or info["integrated"] is True


def test_micro_benchmarks_are_plausible(torch):
    m = probe.microbench(0, copy_bytes=1 << 30)
    info = probe.device_info(0)
    bw, peak = m["copy_bw_bytes_per_s"], info["theoretical_bw_bytes_per_s"]
    # A device copy reaches 50-100% of the datasheet bandwidth (H100 SXM: ~3.0 of 3.35 TB/s).
    assert peak and 0.5 * peak < bw <= 1.05 * peak, (bw, peak)
    assert 0.5 < m["host_us_per_launch"] < 50
    assert 0.5 < m["device_us_per_launch"] < 50
    assert 0 < m["event_resolution_us"] < 10


def test_microbench_measures_a_positive_bf16_matmul_rate_within_its_budget(torch):
    m = probe.microbench(0)
    name = torch.cuda.get_device_name(0)
    print(f"{name}: bf16 matmul {m['matmul_bf16_flop_s'] / 1e12:.1f} TFLOP/s (n={m['matmul_n']}, "
          f"{m['matmul_reps']} reps), copy {m['copy_bw_bytes_per_s'] / 1e9:.0f} GB/s, {m['wall_ms']:.0f} ms")
    # positive, and below any GPU's dense bf16 peak (B200: 2.25 PFLOP/s)
    assert 1e12 < m["matmul_bf16_flop_s"] < 2.5e15, m
    assert m["matmul_n"] >= 512 and m["matmul_reps"] >= 3
    assert m["copy_bw_bytes_per_s"] > 0 and m["wall_ms"] < 3000, m


def test_run_environment_carries_the_micro_benchmarks_of_every_gpu(torch):
    from edgebench.analysis import floors
    from edgebench.telemetry import environment
    snap = environment.snapshot_for_run({"deep": True})
    micro = snap["micro"]
    assert micro["ok"], micro
    assert [m["index"] for m in micro["gpus"]] == [g["index"] for g in snap["gpus"]]
    total_ms = sum(m["wall_ms"] for m in micro["gpus"])
    print(f"micro-benchmarks of {len(micro['gpus'])} GPUs: {total_ms:.0f} ms")
    rates = floors.rates_from_env(snap, 0)
    assert rates.copy_bytes_per_s > 0 and rates.matmul_flop_s > 0 and rates.why is None


def test_nvml_answers_on_a_desktop_gpu(torch):
    native = probe.native_module()
    assert native.nvml_init() == ""
    q = native.nvml_query(0)
    assert q["power_mw"] is None or q["power_mw"] > 0
    assert q["mem_total_bytes"] and q["mem_total_bytes"] >= torch.cuda.get_device_properties(0).total_memory


def test_nvml_power_reading_kind_and_value(torch):
    """Ampere and later give NVML_FI_DEV_POWER_INSTANT; the sampler reads it instead of the 1 s average."""
    native = probe.native_module()
    source = native.nvml_power_source(0)
    assert source in ("instant", "average")
    mw = native.nvml_power_mw(0)
    assert mw is not None and 10_000 < mw < 1_500_000, mw
    if torch.cuda.get_device_capability(0) >= (8, 0):
        print("NVML power reading on", torch.cuda.get_device_name(0), ":", source)
