"""The max-context search against fake probes with known thresholds."""
import math

import pytest

from edgebench.errors import UserError
from edgebench.execution import maxctx_search as maxctx
from edgebench.execution.maxctx_search import search


def threshold_probe(max_fitting, fail_status="oom"):
    calls = []

    def probe(ctx):
        calls.append(ctx)
        return "ok" if ctx <= max_fitting else fail_status
    return probe, calls


def probe_budget(start, limit, resolution):
    return math.ceil(math.log2(limit / start)) + math.ceil(math.log2(max(limit - start, 1) / resolution)) + 2


@pytest.mark.parametrize("max_fitting", [
    1024, 1500, 8192, 8193, 9215, 9216, 40000, 65536, 100_000, 131071, 200_000, 262_143,
])
def test_finds_threshold_within_resolution(max_fitting):
    probe, calls = threshold_probe(max_fitting)
    result = search(probe, start=1024, limit=262_144, resolution=1024)
    assert result.max_ok is not None and result.max_ok <= max_fitting
    assert result.min_fail > max_fitting
    assert result.min_fail - result.max_ok <= 1024
    assert result.max_ok % 1024 == 0 and result.min_fail % 1024 == 0
    assert result.probes == len(calls) == len(set(calls)) == len(result.trail)
    assert result.probes <= probe_budget(1024, 262_144, 1024)
    assert result.stopped is None


def test_exactly_at_power_of_two_needs_no_bisection_past_it():
    probe, calls = threshold_probe(8192)
    result = search(probe, start=1024, limit=1 << 20, resolution=1024)
    assert (result.max_ok, result.min_fail) == (8192, 9216)
    assert calls[:5] == [1024, 2048, 4096, 8192, 16384]


def test_everything_fits_up_to_limit():
    probe, calls = threshold_probe(10**9)
    result = search(probe, start=1024, limit=100_000, resolution=1024)
    assert result.max_ok == 100_000 and result.min_fail is None
    assert calls[-1] == 100_000 and calls[-2] == 65536


def test_start_fails():
    probe, calls = threshold_probe(500, fail_status="killed")
    result = search(probe, start=1024, limit=65536)
    assert result.max_ok is None and result.min_fail == 1024 and calls == [1024]


def test_start_rounded_up_to_resolution():
    probe, calls = threshold_probe(3000)
    result = search(probe, start=1000, limit=65536, resolution=1024)
    assert calls[0] == 1024 and result.max_ok == 2048 and result.min_fail == 3072


def test_limit_not_multiple_of_resolution():
    probe, calls = threshold_probe(99_500)
    result = search(probe, start=1024, limit=100_000, resolution=1024)
    assert result.max_ok == 99_328 and result.min_fail == 100_000
    assert all(c % 1024 == 0 or c == 100_000 for c in calls)


def test_fine_resolution():
    probe, _ = threshold_probe(12_345)
    result = search(probe, start=128, limit=65536, resolution=1)
    assert (result.max_ok, result.min_fail) == (12_345, 12_346)
    assert result.probes <= probe_budget(128, 65536, 1)


def test_error_before_any_pass_stops_search():
    result = search(lambda ctx: "error", start=1024, limit=65536)
    assert result.stopped == "error at ctx=1024" and result.max_ok is None and result.probes == 1


def test_error_after_a_pass_is_a_limit_below_which_the_search_bisects():
    """E.g. mamba_ssm's Mamba-2 Triton kernels fault past ~330K tokens, well inside the memory."""
    def probe(ctx):
        return "ok" if ctx <= 20_000 else "error"
    result = search(probe, start=1024, limit=65536)
    assert result.stopped is None and (result.max_ok, result.min_fail) == (19456, 20480)
    assert result.limited_by == "error" and result.to_record()["limited_by"] == "error"
    probe2, _ = threshold_probe(5000)
    assert search(probe2, 1024, 16384).limited_by == "oom"


def test_timeout_in_bisection_stops_search():
    def probe(ctx):
        if ctx == 3072:
            return "timeout"
        return "ok" if ctx <= 2500 else "oom"
    result = search(probe, start=1024, limit=65536)
    assert result.stopped == "timeout at ctx=3072" and result.max_ok == 2048


def test_record_fields():
    probe, _ = threshold_probe(5000)
    record = search(probe, 1024, 16384).to_record()
    assert record["max_ok_ctx"] == 4096 and record["min_fail_ctx"] == 5120
    assert record["resolution"] == 1024 and record["trail"][0] == [1024, "ok"]


@pytest.mark.parametrize("args", [(0, 1024, 1024), (2048, 1024, 1024), (1024, 4096, 0)])
def test_rejects_bad_bounds(args):
    probe, _ = threshold_probe(1)
    with pytest.raises(UserError):
        search(probe, *args)


def test_partial_result_of_an_unfinished_search():
    trail = [(4096, "ok"), (8192, "ok"), (16384, "oom"), (12288, "ok")]
    res = maxctx.partial(trail, 1024, "interrupted")
    assert (res.max_ok, res.min_fail, res.probes, res.stopped) == (12288, 16384, 4, "interrupted")
    assert res.limited_by == "oom"
    assert maxctx.partial([], 1024, "interrupted").to_record()["max_ok_ctx"] is None
    # an error before any pass is not a limit
    assert maxctx.partial([(4096, "error")], 1024, "x").min_fail is None


def test_callers_trail_keeps_the_probes_of_an_interrupted_search():
    trail: list = []

    def probe(ctx):
        if ctx > 4096:
            raise KeyboardInterrupt
        return "ok"

    with pytest.raises(KeyboardInterrupt):
        search(probe, 1024, 65536, 1024, trail)
    assert trail == [(1024, "ok"), (2048, "ok"), (4096, "ok")]
    assert maxctx.partial(trail, 1024, "interrupted").max_ok == 4096
