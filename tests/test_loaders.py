"""Loaders: random-weight builds, local directories, and the prefill/decode adapter on CPU."""
import importlib.util
import sys

import pytest

from edgebench.errors import MissingDependency, UserError
from edgebench.models import catalog, loaders

torch = pytest.importorskip("torch", reason="torch is needed to build models")
pytest.importorskip("transformers", reason="transformers is needed to build models")

# Decode against a full forward, every tiny preset and decode mode: test_decode_correctness.py.


def test_random_weights_land_on_the_device_in_the_dtype():
    m = loaders.load(catalog.get("tiny-falcon-h1"), device="cpu", dtype="bfloat16", attn="eager")
    dtypes = {p.dtype for p in m.model.parameters()}
    assert dtypes == {torch.bfloat16}
    assert m.attn == "eager" and m.info["weights"] == "random"
    assert m.info["param_bytes"] == 2 * m.info["params"] == 2 * catalog.param_count(m.preset)
    assert loaders.load(catalog.get("tiny-mamba"), device="cpu").attn is None


def test_local_directory_loads_offline(tmp_path):
    src = loaders.load(catalog.get("tiny-llama"), device="cpu", dtype="float32")
    src.model.save_pretrained(tmp_path)
    preset = catalog.resolve(str(tmp_path))
    m = loaders.load(preset, device="cpu", dtype="float32")
    assert m.info["weights"] == "pretrained"
    ids = torch.randint(0, m.vocab_size, (1, 8))
    torch.testing.assert_close(m.prefill(ids)[0], src.prefill(ids)[0])


def test_local_directory_with_config_only_gets_random_weights(tmp_path):
    loaders.load(catalog.get("tiny-mamba2"), device="cpu").model.config.save_pretrained(tmp_path)
    m = loaders.load(catalog.resolve(str(tmp_path)), device="cpu", dtype="float32")
    assert m.info["weights"] == "random" and m.preset.family == "ssm"


@pytest.mark.parametrize("kwargs, match", [
    ({"attn": "flash"}, "unknown attention"),
    ({"dtype": "fp8"}, "unknown dtype"),
    ({"backend": "vllm"}, "unknown backend"),
    ({"device": "tpu"}, "unknown device"),
])
def test_bad_arguments_fail_before_loading(kwargs, match):
    with pytest.raises(UserError, match=match):
        loaders.load(catalog.get("tiny-llama"), **{"device": "cpu", **kwargs})


def test_mamba_ssm_backend_only_for_mamba_presets():
    with pytest.raises(UserError, match="no mamba_ssm backend"):
        loaders.load(catalog.get("tiny-llama"), backend="mamba_ssm", device="cpu")


@pytest.mark.skipif(importlib.util.find_spec("flash_attn") is not None, reason="flash_attn is installed")
def test_flash_attention_without_flash_attn_names_the_install():
    with pytest.raises(MissingDependency, match="pip install flash-attn"):
        loaders.load(catalog.get("tiny-llama"), device="cpu", attn="flash_attention_2")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(UserError, match="no CUDA GPU"):
        loaders.load(catalog.get("tiny-llama"), device="cuda")


def test_mamba_ssm_missing_names_the_fix():
    try:
        import mamba_ssm  # noqa: F401
        pytest.skip("mamba_ssm imports here")
    except Exception:
        pass
    with pytest.raises(MissingDependency, match="mamba-ssm causal-conv1d.*edgebench kernels build"):
        loaders.load(catalog.get("tiny-mamba"), backend="mamba_ssm", device="cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", ["tiny-mamba", "tiny-mamba2"])
def test_mamba_ssm_backend_decode_matches_full_forward(name):
    pytest.importorskip("mamba_ssm", reason="mamba_ssm is not importable")
    torch.manual_seed(0)
    m = loaders.load(catalog.get(name), backend="mamba_ssm", device="cuda", dtype="float32")
    ids = torch.randint(0, m.vocab_size, (1, 20), device="cuda")
    full, _ = m.prefill(ids, logits="all")
    if name == "tiny-mamba2":  # its chunked scan ran mamba_ssm's autotuned Triton kernels: the choice is named
        from edgebench.models import kernel_detect
        tuned = kernel_detect.autotuned("mamba_ssm") or {}
        assert any("chunk" in k for k in tuned) and all("num_warps=" in v for v in tuned.values()), tuned
    logits, cache = m.prefill(ids[:, :16])
    for i in range(16, 19):
        logits, cache = m.decode(ids[:, i:i + 1], cache)
        torch.testing.assert_close(logits[:, -1], full[:, i], atol=1e-3 * full.abs().max().item(), rtol=0)


# ---- which kernels ran (edgebench.models.kernel_detect)
from edgebench.models import kernel_detect as kernels  # noqa: E402


@pytest.mark.parametrize("name, attn, expect", [
    ("tiny-llama", "sdpa", {"ssm_scan": None, "conv1d": None, "attention": "sdpa-flash"}),
    ("tiny-llama", "eager", {"ssm_scan": None, "conv1d": None, "attention": "eager"}),
    ("tiny-mamba", "sdpa", {"ssm_scan": "torch-reference", "conv1d": "torch-conv1d", "attention": None}),
    ("tiny-falcon-h1", "eager", {"ssm_scan": "torch-reference", "conv1d": "torch-conv1d", "attention": "eager"}),
])
def test_detect_reports_the_cpu_paths_that_ran(name, attn, expect):
    m = loaders.load(catalog.get(name), device="cpu", dtype="float32", attn=attn)
    ids = torch.randint(0, m.vocab_size, (1, 16))
    assert kernels.detect(lambda: m.prefill(ids)) == expect
    _, cache = m.prefill(ids)
    assert kernels.detect(lambda: m.decode(ids[:, :1], cache))["ssm_scan"] == expect["ssm_scan"]


def test_classify_gpu_kernel_names():
    cuda = {"void selective_scan_fwd_kernel<Ktraits>(SSMParamsBase)", "causal_conv1d_fwd_kernel<...>",
            "aten::_scaled_dot_product_flash_attention", "aten::softplus"}
    assert kernels.classify(cuda) == {"ssm_scan": "mamba_ssm-cuda", "conv1d": "causal_conv1d",
                                      "attention": "sdpa-flash"}
    triton = {"_chunk_scan_fwd_kernel", "aten::_scaled_dot_product_efficient_attention"}
    assert kernels.classify(triton) == {"ssm_scan": "mamba_ssm-triton", "conv1d": None,
                                        "attention": "sdpa-efficient"}
    assert kernels.classify({"flash_attn::_flash_attn_forward", "aten::softmax"})["attention"] == "flash"


def _fake_triton_autotuner(monkeypatch):
    """A stand-in for triton.runtime.autotuner (Triton is not installed on the CPU machines): its
    Autotuner keeps the chosen Config per tuning key in `cache`, the tuned function in `base_fn`."""
    import types

    class Config:
        def __init__(self, kwargs, num_warps=4, num_stages=3, maxnreg=None):
            self.kwargs, self.num_warps, self.num_stages, self.maxnreg = kwargs, num_warps, num_stages, maxnreg

        def all_kwargs(self):
            return {**self.kwargs, "num_warps": self.num_warps, "num_stages": self.num_stages,
                    "maxnreg": self.maxnreg}

    class Autotuner:
        def __init__(self, fn):
            self.base_fn, self.cache = fn, {}

    mod = types.ModuleType("triton.runtime.autotuner")
    mod.Autotuner, mod.Config = Autotuner, Config
    monkeypatch.setitem(sys.modules, "triton.runtime.autotuner", mod)
    return Autotuner, Config


def test_autotuned_names_the_config_each_tuned_kernel_ran_and_nothing_untuned(monkeypatch):
    import types
    monkeypatch.delitem(sys.modules, "triton.runtime.autotuner", raising=False)
    assert kernels.autotuned("mamba_ssm") is None  # no Triton autotuner loaded: nothing to say

    Autotuner, Config = _fake_triton_autotuner(monkeypatch)

    def _chunk_scan_fwd_kernel():
        """Stands for the Triton kernel of that name: only its name is read."""

    def _chunk_state_fwd_kernel():
        """Stands for the Triton kernel of that name: only its name is read."""

    scan, state, idle = Autotuner(_chunk_scan_fwd_kernel), Autotuner(_chunk_state_fwd_kernel), Autotuner(len)
    scan.cache[(64, 128, "torch.bfloat16")] = Config({"BLOCK_SIZE_M": 64, "BLOCK_SIZE_N": 32}, num_stages=4)
    state.cache[(64, 128)] = Config({"BLOCK_SIZE_M": 128}, num_warps=8)
    state.cache[(80, 128)] = Config({"BLOCK_SIZE_M": 64}, num_warps=4)  # a second key (another model)
    ops = types.ModuleType("mamba_ssm.ops.triton.fake_ssd")
    wrapped = types.SimpleNamespace(fn=state)  # as @triton.heuristics wraps an autotuned kernel
    ops.scan, ops.state, ops.idle, ops.other = scan, wrapped, idle, object()
    monkeypatch.setitem(sys.modules, "mamba_ssm.ops.triton.fake_ssd", ops)
    elsewhere = types.ModuleType("mamba_ssm_lookalike")  # not under the prefix
    elsewhere.tuned = scan
    monkeypatch.setitem(sys.modules, "mamba_ssm_lookalike", elsewhere)

    got = kernels.autotuned("mamba_ssm")
    assert got == {"_chunk_scan_fwd_kernel": "BLOCK_SIZE_M=64,BLOCK_SIZE_N=32,num_warps=4,num_stages=4",
                   "_chunk_state_fwd_kernel": "BLOCK_SIZE_M=128,num_warps=8,num_stages=3 | "
                                              "BLOCK_SIZE_M=64,num_warps=4,num_stages=3"}
    assert kernels.autotuned("causal_conv1d") is None  # nothing tuned under that prefix

    class Unwalkable(types.ModuleType):  # a module whose attributes cannot be listed
        def __getattribute__(self, name):
            if name == "__dict__":
                raise RuntimeError("lazy module")
            return super().__getattribute__(name)
    monkeypatch.setitem(sys.modules, "mamba_ssm.zz_lazy", Unwalkable("mamba_ssm.zz_lazy"))
    got = kernels.autotuned("mamba_ssm")
    assert got["_chunk_scan_fwd_kernel"].startswith("BLOCK_SIZE_M=64")  # what was found before it stays
    assert "RuntimeError: lazy module" in got["scan_error"]


def test_a_prefill_line_carries_the_workers_autotune_choice_and_its_decode_lines_do_not(tmp_path):
    from edgebench.execution.point_lines import point_lines
    from edgebench.logs import schema

    chosen = {"_chunk_scan_fwd_kernel": "BLOCK_SIZE_M=64,num_warps=4,num_stages=4"}
    result = {"status": "ok", "reason": None, "prefill_ms": {"median": 5.0, "p10": 5.0, "p90": 5.0, "n": 3},
              "autotune": chosen, "decode": {"eager": {"status": "ok", "tpot_ms": {"median": 1.0, "n": 8}}},
              "decoding": None}
    pre, dec = point_lines([result], ("eager",))
    assert pre["autotune"] == chosen and "autotune" not in dec["eager"]
    assert schema.LINE_KINDS["case"]["autotune"].type is dict


def test_fallback_warning_names_the_fix():
    ran = {"ssm_scan": "torch-reference", "conv1d": "torch-conv1d", "attention": "sdpa-flash"}
    warnings = kernels.fallback_warnings(ran, "hybrid")
    assert len(warnings) == 2 and all("edgebench kernels build" in w for w in warnings)
    assert kernels.fallback_warnings(ran, "transformer") == []
    fast = {"ssm_scan": "mamba_ssm-cuda", "conv1d": "causal_conv1d", "attention": None}
    assert kernels.fallback_warnings(fast, "ssm") == []


def test_available_reports_each_package_with_a_reason():
    info = kernels.available()
    assert set(info) >= {"mamba_ssm", "causal_conv1d", "flash_attn", "triton"}
    for entry in info.values():
        assert entry["ok"] or entry["why"]
