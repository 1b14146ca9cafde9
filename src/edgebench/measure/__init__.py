"""Timing loops for prefill and decode, CUDA-graph decode, memory and energy per phase."""
