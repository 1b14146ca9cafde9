"""Scopes for replayed CUDA-graph kernels, mapped from one eager reference step (edgebench.measure.ops_replay)."""
from __future__ import annotations

import pytest
from torch.autograd import DeviceType

from edgebench.measure import ops_replay as opsreplay
from edgebench.analysis import ops_categories as oc


class Ev:
    """The part of torch's _KinetoEvent that opsreplay reads."""

    def __init__(self, name, start, end, device=DeviceType.CPU, corr=0, annotation=False):
        self._n, self._s, self._e, self._d, self._c, self._a = name, start, end, device, corr, annotation

    def name(self): return self._n
    def start_ns(self): return self._s
    def end_ns(self): return self._e
    def duration_ns(self): return self._e - self._s
    def device_type(self): return self._d
    def correlation_id(self): return self._c
    def is_user_annotation(self): return self._a


RED, MUL, GEMM = "reduce_kernel<MeanOps>", "elementwise_kernel<mul>", "nvjet_gemm"


def _eager_step():
    """One step: a norm (reduce + mul, launched inside edgebench:norm), then a GEMM and a mul outside."""
    cuda = DeviceType.CUDA
    return [
        Ev("edgebench:norm", 100, 300, annotation=True),
        Ev("cudaLaunchKernel", 110, 120, corr=1), Ev("cudaLaunchKernel", 150, 160, corr=2),
        Ev("aten::mm", 400, 500), Ev("cudaLaunchKernel", 410, 420, corr=3),
        Ev("cudaLaunchKernel", 600, 610, corr=4),
        # GPU side, listed out of order on purpose; the GPU copy of the annotation is not a kernel
        Ev(GEMM, 2000, 2400, cuda, corr=3), Ev(RED, 1000, 1300, cuda, corr=1),
        Ev(MUL, 1400, 1500, cuda, corr=2), Ev(MUL, 2500, 2600, cuda, corr=4),
        Ev("edgebench:norm", 1000, 1500, cuda, annotation=True),
    ]


def test_ordered_lists_kernels_in_gpu_order_with_the_scope_of_their_launch():
    got = opsreplay.ordered(_eager_step())
    assert got == [(RED, 0.3, "edgebench:norm"), (MUL, 0.1, "edgebench:norm"),
                   (GEMM, 0.4, None), (MUL, 0.1, None)]


def test_replayed_kernels_take_the_scope_of_their_counterpart():
    ref = opsreplay.ordered(_eager_step())
    # two replays: no CPU launches at all, only the kernels (a graph launch has one runtime call)
    replay = [(RED, 0.3, None), (MUL, 0.1, None), (GEMM, 0.4, None), (MUL, 0.2, None)] * 2
    rows = {name: (round(us, 6), n) for name, us, n in opsreplay.label(replay, ref)}
    assert rows == {f"edgebench:norm/{RED}": (0.6, 2), f"edgebench:norm/{MUL}": (0.2, 2),
                    GEMM: (0.8, 2), MUL: (0.4, 2)}
    shares = oc.categorize(list(opsreplay.label(replay, ref)))["shares"]
    assert round(shares["norm"], 3) == round(0.8 / 2.0, 3)  # the same multiply, split by position


def test_no_labels_unless_the_sequences_match_one_for_one():
    ref = opsreplay.ordered(_eager_step())
    assert opsreplay.label([(RED, 0.3, None), (GEMM, 0.4, None)], ref) is None          # shorter
    swapped = [(RED, 0.3, None), (GEMM, 0.4, None), (MUL, 0.1, None), (MUL, 0.1, None)]
    assert opsreplay.label(swapped, ref) is None                                        # other order
    assert opsreplay.label([(RED, 0.3, None)] * 5, ref) is None                          # not whole steps
    assert opsreplay.label([], ref) is None and opsreplay.label(ref, []) is None


@pytest.mark.gpu
def test_graph_replay_of_a_norm_keeps_its_scope_on_a_gpu():
    """A real CUDA graph: an RMSNorm-like module (generic kernels) inside a norm scope, then a matmul."""
    import torch

    from edgebench.measure import ops_profile as opsprofile

    class Norm(torch.nn.Module):
        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)

    norm, w = Norm(), torch.randn(256, 256, device="cuda")
    x = torch.randn(8, 256, device="cuda")
    out = torch.empty(8, 256, device="cuda")

    def step():  # no copy_: a graph replays a device copy as a memcpy kernel, eagerly it is a Memcpy
        torch.matmul(norm(x), w, out=out)

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        step()
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    plain = opsprofile.profile_phase(graph.replay, steps=3, scopes={"norm": [norm]})
    mapped = opsprofile.profile_phase(graph.replay, steps=3, scopes={"norm": [norm]}, reference=step)
    assert plain.replay_scopes is None and mapped.replay_scopes == "mapped", mapped
    share = lambda p: oc.categorize(p.kernels)["shares"]["norm"]  # noqa: E731
    assert share(plain) == 0.0 < share(mapped)
    assert sum(n for _, _, n in mapped.kernels) == sum(n for _, _, n in plain.kernels)
