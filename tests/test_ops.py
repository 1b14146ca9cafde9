"""Operator categories (rules table against recorded kernel names) and the operator profile."""
from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest

from edgebench.analysis import ops_categories as oc
from edgebench.errors import UserError
from edgebench.measure import ops_profile as opsprofile

FIXTURES = Path(__file__).parent / "fixtures" / "kernels"
# Files whose lines carry no expected category: the categories their names may take.
ALLOWED = {"mamba_ssm_triton.txt": {"ssm_scan", "norm"}}


def _fixture_lines(path: Path) -> list[tuple[str, str | None]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, _, expected = line.partition("\t")
        rows.append((name, expected.strip() or None))
    return rows


def _all_fixture_names() -> list[tuple[str, str, str | None]]:
    """(file, name, expected category or None) from the name lists and the recorded profiles."""
    rows = [(p.name, name, exp) for p in sorted(FIXTURES.glob("*.txt"))
            for name, exp in _fixture_lines(p)]
    rows += [(p.name, line.rsplit("\t", 2)[0], None) for p in sorted(FIXTURES.glob("*.tsv"))
             for line in p.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    return rows


def test_fixture_files_exist_and_have_headers():
    files = sorted(FIXTURES.glob("*.txt")) + sorted(FIXTURES.glob("*.tsv"))
    assert {"mamba_ssm_triton.txt", "mamba_ssm_cuda.txt", "aten_cuda.txt", "aten_ops.txt"} <= {
        f.name for f in files}
    for f in files:
        assert f.read_text(encoding="utf-8").startswith("#"), f"{f.name} lacks its source header"


@pytest.mark.parametrize("source,name,expected", _all_fixture_names(),
                         ids=lambda v: v[:60] if isinstance(v, str) else None)
def test_every_fixture_name_is_classified(source, name, expected):
    got = oc.classify(name)
    assert got != "other", f"{source}: {name!r} matched no rule"
    if expected is not None:
        assert got == expected, f"{source}: {name!r} -> {got}, expected {expected}"
    if source in ALLOWED:
        assert got in ALLOWED[source]


def test_fused_gemm_kernels_are_flagged_not_hidden():
    for name in ("_bmm_chunk_fwd_kernel", "_chunk_state_fwd_kernel", "_chunk_scan_fwd_kernel"):
        assert oc.classify(name) == "ssm_scan" and oc.is_fused_gemm(name), name
    for name in ("_state_passing_fwd_kernel", "_chunk_cumsum_fwd_kernel",
                 "_selective_scan_update_kernel", "selective_scan_fwd_kernel",
                 "nvjet_tst_32x64_64x16_4x1_v_bz_TNN"):
        assert not oc.is_fused_gemm(name), name


def test_rules_table_is_valid_and_ordered():
    cats = oc.categories()
    assert cats[-1] == "other" and len(set(cats)) == len(cats) == 10
    data = json.loads(oc.RULES_PATH.read_text(encoding="utf-8"))
    assert all(r["category"] in cats for r in data["rules"])
    # a fill or a copy launched through the elementwise machinery is memory traffic, not math
    assert oc.classify("void at::native::vectorized_elementwise_kernel<4, at::native::"
                       "FillFunctor<float>, std::array<char*, 1ul> >") == "memory"
    assert oc.classify("totally_unknown_kernel_name") == "other"


def test_scoped_names_take_their_scope_category():
    lm_head = "edgebench:embedding_logits/nvjet_tst_128x256_64x4_1x2_h_bz_coopA_TNT"
    assert oc.classify(lm_head) == "embedding_logits"
    assert oc.classify("edgebench:embedding_logits/_bmm_chunk_fwd_kernel") == "embedding_logits"
    assert oc.is_fused_gemm("edgebench:embedding_logits/_bmm_chunk_fwd_kernel")
    assert oc.classify("edgebench:nonsense/nvjet_tst_64x64_64x8_2x1_v_bz_splitK_TNT") == "gemm"


def _synthetic_mamba2_prefill() -> list[tuple[str, float, int]]:
    """A prefill-shaped profile from fixture names: weights in us, one unknown kernel."""
    names = {n for f, n, _ in _all_fixture_names() if f.endswith(".txt")}
    weights = {"nvjet_tst_128x256_64x4_1x2_h_bz_coopA_TNT": 4200.0,
               "_chunk_scan_fwd_kernel": 900.0, "_chunk_state_fwd_kernel": 600.0,
               "_bmm_chunk_fwd_kernel": 400.0, "_state_passing_fwd_kernel": 120.0,
               "_chunk_cumsum_fwd_kernel": 80.0, "causal_conv1d_fwd_kernel": 300.0,
               "_layer_norm_fwd_1pass_kernel": 250.0, "CatArrayBatchedCopy": 90.0,
               "triton_poi_fused_mul_silu_2": 150.0}
    assert set(weights) <= names
    rows = [(n, us, 24) for n, us in weights.items()]
    rows += [(n, 3.0, 2) for n in sorted(names) if n not in weights]
    rows.append(("some_unknown_kernel_xyz", 100.0, 24))
    return rows


def test_categorize_sums_and_other_share():
    rows = _synthetic_mamba2_prefill()
    out = oc.categorize(rows, top_n=5)
    total_ms = math.fsum(us for _, us, _ in rows) / 1000
    assert math.isclose(out["kernel_ms"], total_ms, rel_tol=0, abs_tol=1e-9)
    assert abs(math.fsum(out["by_category_ms"].values()) - out["kernel_ms"]) < 1e-9
    assert abs(math.fsum(out["shares"].values()) - 1.0) < 1e-9
    assert set(out["shares"]) == set(oc.categories())
    assert math.isclose(out["uncategorized_share"], 0.1 / total_ms)
    assert out["uncategorized_share"] < 0.05
    assert math.isclose(out["fused_gemm_ms"], 1.9 + 0.003)  # + _bmm_chunk_bwd_kernel
    assert out["top"][0]["category"] == "gemm" and len(out["top"]) == 5
    assert out["top"][1] == {"kernel": "_chunk_scan_fwd_kernel", "category": "ssm_scan",
                             "ms": 0.9, "count": 24, "fused_gemm": True}


def test_categorize_merges_rows_and_handles_empty():
    out = oc.categorize([("aten::mm", 10.0, 1), ("aten::mm", 30.0, 3)])
    assert out["top"] == [{"kernel": "aten::mm", "category": "gemm", "ms": 0.04, "count": 4,
                           "fused_gemm": False}]
    empty = oc.categorize([])
    assert empty["kernel_ms"] == 0 and set(empty["shares"].values()) == {0.0}
    with pytest.raises(ValueError):
        oc.categorize([("aten::mm", -1.0, 1)])


def test_recorded_profiles_have_little_other():
    """Profiles recorded on a real GPU (name<TAB>total_us<TAB>count), when committed."""
    for path in sorted(FIXTURES.glob("*.tsv")):
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                name, us, count = line.rsplit("\t", 2)
                rows.append((name, float(us), int(count)))
        assert oc.categorize(rows)["uncategorized_share"] < 0.05, path.name


def test_ops_record_per_step_and_idle_share():
    rows = [("nvjet_tst_32x64_64x16_4x1_v_bz_TNN", 3000.0, 30), ("_chunk_scan_fwd_kernel", 1000.0, 30)]
    rec = opsprofile.ops_record("k1", "decode", rows, wall_ms=10.0, steps=10)
    assert rec["type"] == "ops" and rec["phase"] == "decode" and rec["key"] == "k1"
    assert rec["kernel_ms"] == 0.4 and rec["wall_ms"] == 1.0
    assert math.isclose(rec["gpu_idle_share"], 0.6)
    assert rec["top"][1] == {"kernel": "_chunk_scan_fwd_kernel", "category": "ssm_scan",
                             "ms": 0.1, "fused_gemm": True}
    assert rec["shares"]["gemm"] == 0.75 and rec["fused_gemm_ms"] == 0.1
    overlapped = opsprofile.ops_record("k1", "prefill", rows, wall_ms=2.0)
    assert overlapped["gpu_idle_share"] == 0.0
    from edgebench.logs.schema import dumps
    assert json.loads(dumps(rec)) == rec
    with pytest.raises(UserError):
        opsprofile.ops_record("k1", "warmup", rows, wall_ms=1.0)


def test_device_time_field_fallback():
    class Old:
        cuda_time_total = 12.5

    class New:
        self_device_time_total = 7.0
        cuda_time_total = 99.0

    assert opsprofile._device_us(Old()) == 12.5
    assert opsprofile._device_us(New()) == 7.0
    with pytest.raises(RuntimeError):
        opsprofile._device_us(object())


def test_cuda_profile_without_gpu_is_a_user_error():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(UserError, match="CUDA device"):
        opsprofile.profile_phase(lambda: None, device="cuda")
    with pytest.raises(UserError):
        opsprofile.profile_phase(lambda: None, device="tpu")


def test_cpu_profile_of_a_tiny_model(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    d, vocab = 64, 96

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(vocab, d)
            self.up = torch.nn.Linear(d, 4 * d)
            self.conv = torch.nn.Conv1d(4 * d, 4 * d, 4, groups=4 * d, padding=3)
            self.norm = torch.nn.RMSNorm(4 * d)
            self.down = torch.nn.Linear(4 * d, d)
            self.lm_head = torch.nn.Linear(d, vocab, bias=False)

        def forward(self, ids):
            x = self.up(self.embed(ids))
            x = self.conv(x.transpose(1, 2))[..., : ids.shape[1]].transpose(1, 2)
            x = self.down(torch.nn.functional.silu(self.norm(x)))
            return self.lm_head(x)

    model = Tiny().eval()
    ids = torch.randint(0, vocab, (2, 128))

    def step():
        with torch.no_grad():
            model(ids)

    step()
    prof = opsprofile.profile_phase(step, steps=3, device="cpu",
                                    scopes={"embedding_logits": [model.lm_head]},
                                    trace_path=tmp_path / "prefill")
    assert prof.steps == 3 and prof.wall_ms > 0
    names = {n for n, _, _ in prof.kernels}
    assert any(n.startswith("edgebench:embedding_logits/aten::") for n in names), names
    assert not any(n == "edgebench:embedding_logits" for n in names)
    out = oc.categorize(prof.kernels)
    for category in ("gemm", "causal_conv1d", "norm", "embedding_logits", "elementwise"):
        assert out["shares"][category] > 0, (category, out["shares"])
    assert out["shares"]["gemm"] > out["shares"]["norm"]
    assert out["uncategorized_share"] < 0.05, [n for n in names if oc.classify(n) == "other"]
    rec = opsprofile.ops_record("tiny", "prefill", prof.kernels, prof.wall_ms, steps=prof.steps)
    assert 0.0 <= rec["gpu_idle_share"] <= 1.0
    with gzip.open(tmp_path / "prefill.json.gz", "rt") as fh:
        assert "traceEvents" in json.load(fh)


def test_device_total_comes_from_raw_events_without_annotations():
    from torch.autograd import DeviceType

    class Ev:
        def __init__(self, dev, ns, ann=False):
            self._d, self._ns, self._a = dev, ns, ann

        def device_type(self):
            return self._d

        def duration_ns(self):
            return self._ns

        def is_user_annotation(self):
            return self._a
    events = [Ev(DeviceType.CUDA, 2000), Ev(DeviceType.CUDA, 3000), Ev(DeviceType.CPU, 10_000),
              Ev(DeviceType.CUDA, 9000, ann=True)]
    assert opsprofile.device_total_us(events) == 5.0
    rec = opsprofile.ops_record("k", "decode", [("nvjet_sm90_tst_gemm", 4.0, 1), ("elementwise_kernel", 1.0, 1)],
                                wall_ms=0.01, steps=1, device_total_us=5.0)
    assert rec["profiler_total_ms"] == 0.005 and rec["categorised_vs_total_pct"] == 0.0
    assert "profiler_total_ms" not in opsprofile.ops_record("k", "decode", [("x", 1.0, 1)], wall_ms=1.0)


def test_cudnn_kernels_count_as_convolution_only_when_named_so():
    """On the H100, qwen2.5-0.5b (no convolution) showed 1-2% under causal_conv1d through a bare
    `cudnn::` pattern. Names below are shaped like cuDNN's, written for this rule."""
    assert oc.classify("void cudnn::detail::implicit_convolve_sgemm<float, float>(int)") == "causal_conv1d"
    assert oc.classify("void cudnn::cnn::conv2d_grouped_direct_kernel<float>(float const*)") == "causal_conv1d"
    assert oc.classify("void cudnn::ops::nchwToNhwcKernel<float>(int)") != "causal_conv1d"


def test_cudnn_sdpa_split_kv_reduction_is_attention():
    """In decode, cuDNN SDPA follows each fprop kernel with this reduction (H100 traces, session 3);
    it was the only kernel left under "other" (up to 3.5% of qwen's decode)."""
    name = ("void cudnn::fusion::lean_reduction_kernel<false, false, false>(void*, float*, float*, float*, "
            "float*, float const*, float*, float*, float*, float*, float*, unsigned int, unsigned int)")
    assert oc.classify(name) == "attention"
    recorded = (FIXTURES / "h100_session3_traces.tsv").read_text(encoding="utf-8")
    assert "cudnn::fusion::lean_reduction_kernel" in recorded
