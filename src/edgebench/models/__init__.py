"""Model catalog (published architectures as data, no weights), loaders and backends.

- `catalog`: presets from `presets.json` (`get`, `names`, `resolve`, `param_count`).
- `loaders`: `load(preset, backend, device, dtype, attn) -> Loaded` with `prefill` / `decode`.
- `kernels`: which SSM/attention kernels are importable, and which actually ran (`detect`).
The analytic memory model lives in `edgebench.models.memory_model`.
"""
