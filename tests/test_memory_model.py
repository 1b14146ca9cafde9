"""The analytic memory model against tensors really allocated by a CPU prefill of the tiny presets."""
import pytest

from edgebench.analysis import memory_model
from edgebench.errors import UserError
from edgebench.models import catalog

TINY = [n for n in catalog.names() if catalog.get(n).tiny]


def _cache_tensors(obj, seen, out, depth=0):
    import torch

    if isinstance(obj, torch.Tensor):
        if obj.data_ptr() not in seen:
            seen.add(obj.data_ptr())
            out.append(obj)
        return
    if depth > 4:
        return
    items = (obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple))
             else vars(obj).values() if hasattr(obj, "__dict__") else ())
    for value in items:
        _cache_tensors(value, seen, out, depth + 1)


def _cache_tensor_list(cache):
    """Every distinct tensor the cache object holds (K/V, conv and recurrent states)."""
    out = []
    _cache_tensors(cache, set(), out)
    return out


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_kv_and_state_match_the_allocated_cache_exactly(name, dtype):
    torch = pytest.importorskip("torch", reason="torch is needed for a real prefill")
    from edgebench.models import loaders

    preset = catalog.get(name)
    m = loaders.load(preset, device="cpu", dtype=dtype)
    sizes = {}
    for ctx in (10, 30):
        ids = torch.randint(0, m.vocab_size, (2, ctx))
        logits, cache = m.prefill(ids)
        sizes[ctx] = sum(t.nbytes for t in _cache_tensor_list(cache))
        pred = memory_model.predict(preset, ctx, batch=2, dtype=dtype)
        assert sizes[ctx] == pred["kv_bytes"] + pred["ssm_state_bytes"], (ctx, sizes[ctx], pred)
        assert logits.nbytes == pred["logits_bytes"]
        all_logits, _ = m.prefill(ids, logits="all")
        assert all_logits.nbytes == memory_model.predict(preset, ctx, 2, dtype, logits="all")["logits_bytes"]
    per_token = (sizes[30] - sizes[10]) // (2 * 20)
    assert per_token == memory_model.kv_bytes_per_token(preset, dtype)
    assert (per_token == 0) == (preset.family == "ssm")
    assert m.info["param_bytes"] == memory_model.predict(preset, 1, dtype=dtype)["weights_bytes"]


def test_kv_grows_linearly_and_state_is_constant():
    preset = catalog.get("zamba2-1.2b")
    a, b = memory_model.predict(preset, 4096), memory_model.predict(preset, 8192, gen=0)
    assert b["kv_bytes"] == 2 * a["kv_bytes"] > 0
    assert b["ssm_state_bytes"] == a["ssm_state_bytes"] > 0
    persistent = b["weights_bytes"] + b["kv_bytes"] + b["ssm_state_bytes"]
    assert b["total_bytes"] == persistent + max(b["activation_bytes"], b["logits_bytes"] + b["head_bytes"])


def test_peak_is_the_larger_of_the_layers_and_the_lm_head():
    """The layers' transients are freed before the LM head runs: a full-logits peak is not their sum.
    Qwen's 152K vocabulary makes the head the peak in full-logits mode; Zamba2's layers stay the peak
    (measured on the H100: the same longest context under 8 GiB in both modes)."""
    qwen = memory_model.predict(catalog.get("qwen2.5-0.5b"), 16384, logits="all")
    assert qwen["logits_bytes"] + qwen["head_bytes"] > qwen["activation_bytes"]
    assert qwen["total_bytes"] == (qwen["weights_bytes"] + qwen["kv_bytes"] + qwen["logits_bytes"]
                                   + qwen["head_bytes"])
    zamba = catalog.get("zamba2-1.2b")
    last, full = (memory_model.predict(zamba, 24576, logits=m) for m in ("last", "all"))
    assert full["activation_bytes"] > full["logits_bytes"] + full["head_bytes"]
    assert full["total_bytes"] == last["total_bytes"]


def test_published_layouts():
    # Qwen2.5-0.5B: 24 layers x 2 kv heads x 64 x (K+V) x 2 bytes = 12 KiB per token.
    assert memory_model.kv_bytes_per_token(catalog.get("qwen2.5-0.5b")) == 12288
    assert memory_model.kv_bytes_per_token(catalog.get("mamba2-780m")) == 0
    # Zamba2-1.2B: 6 shared-attention call sites x 32 heads x 128 x 2 x 2 bytes.
    assert memory_model.kv_bytes_per_token(catalog.get("zamba2-1.2b")) == 6 * 32 * 128 * 4
    # Jamba-v0.1: layers 4, 12, 20, 28 hold attention; Nemotron-H-4B: four '*'; Bamba: 3 indices.
    assert memory_model.kv_bytes_per_token(catalog.get("jamba-v0.1")) == 4 * 8 * 128 * 4
    assert memory_model.kv_bytes_per_token(catalog.get("nemotron-h-4b")) == 4 * 8 * 128 * 4
    assert memory_model.kv_bytes_per_token(catalog.get("bamba-9b")) == 3 * 8 * 128 * 4
    # Mamba-130m: 24 layers x (conv 1536x4 bf16 + state 1536x16 fp32).
    assert memory_model.state_bytes(catalog.get("mamba-130m")) == 24 * (1536 * 4 * 2 + 1536 * 16 * 4)


def test_full_logits_dominate_at_long_context():
    pred = memory_model.predict(catalog.get("qwen2.5-0.5b"), 57344, logits="all")
    assert pred["logits_bytes"] == 57344 * 151936 * 2
    assert pred["logits_bytes"] > pred["kv_bytes"]


def test_bad_input():
    with pytest.raises(UserError, match="unknown dtype"):
        memory_model.predict(catalog.get("tiny-llama"), 8, dtype="int4")
    with pytest.raises(UserError, match="ctx and batch"):
        memory_model.predict(catalog.get("tiny-llama"), 0)


def test_longest_fit_is_the_last_context_under_the_budget():
    preset = catalog.get("qwen2.5-0.5b")
    budget = 8 * 2**30
    fit = memory_model.longest_fit(preset, budget, resolution=1024)
    assert memory_model.predict(preset, fit)["total_bytes"] <= budget
    assert memory_model.predict(preset, fit + 1024)["total_bytes"] > budget
    assert memory_model.longest_fit(preset, 2**20) is None  # not even the weights fit
