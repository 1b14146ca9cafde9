"""The values each measured dimension may take, declared once.

The sweep spec (`edgebench.sweep.spec`), the model loaders (`edgebench.models.loaders`), the catalog,
the memory model, the log schema and the CLI all validate against these tuples and print them in their
error messages; add a backend, dtype, attention kind, logits mode, decode mode or family here, then
teach the code that acts on it (ARCHITECTURE.md says where). This module imports nothing, so every
layer can use it without an import cycle.
"""
from __future__ import annotations

BACKENDS = ("hf", "mamba_ssm")  # how a model is built and called (models/loaders.py)
DTYPES = ("float32", "float16", "bfloat16")  # weight/activation dtypes a loader builds
AUTO_DTYPE = "auto"  # a sweep's "auto": float32 on the CPU, bfloat16 on a GPU (resolved before loading)
ATTN_KINDS = ("sdpa", "eager", "flash_attention_2")  # transformers attn_implementation values
LOGITS_MODES = ("last", "all")  # logits kept at prefill: the last position, or every position
DECODE_MODES = ("eager", "graph", "compile")  # decode step run as Python calls, replayed as a CUDA
# graph, or compiled by torch.compile (CUDA-graph-backed on CUDA)
FAMILIES = ("transformer", "ssm", "hybrid")  # model families in the catalog and in logs
