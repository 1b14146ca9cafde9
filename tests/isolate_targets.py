"""Targets for tests/test_isolate.py, imported inside worker processes (tests/ goes on PYTHONPATH)."""
import os
import signal
import time

from edgebench.execution.isolate import report_partial


def returns(payload):
    return {"doubled": payload["x"] * 2, "pid": os.getpid()}


def raises_oom(payload):
    try:
        import torch
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    except ImportError:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB") from None


def raises_runtime_oom_text(payload):
    raise RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be reported later")


def raises_value_error(payload):
    raise ValueError("bad shape (1, 2)")


def kills_itself(payload):
    os.kill(os.getpid(), signal.SIGKILL)


def sleeps(payload):
    time.sleep(payload["sleep_s"])
    return {"slept": True}


def partial_then_dies(payload):
    report_partial({"prefill_ms": 12.5, "phase": "prefill"})
    report_partial({"phase": "decode"})
    os.kill(os.getpid(), signal.SIGKILL)


def partial_then_oom(payload):
    report_partial({"prefill_ms": 3.0})
    raise MemoryError()


def returns_list(payload):
    return [1, 2]


def exits_nonzero(payload):
    os._exit(3)


def checks_cuda_untouched(payload):
    import sys
    return {"torch_in_parent_imported_here": "torch" in sys.modules}


def allocates_under_budget(payload):
    """Cap the allocator at budget_bytes on cuda:0, then allocate alloc_bytes (a real CUDA OOM when
    it does not fit)."""
    import torch

    from edgebench.execution.budget import apply_budget

    fraction = apply_budget(payload["budget_bytes"], 0)
    report_partial({"fraction": fraction})
    block = torch.empty(payload["alloc_bytes"], dtype=torch.uint8, device="cuda:0")
    torch.cuda.synchronize()
    return {"allocated_bytes": block.numel()}


def starts_thread_on_import():
    """Imported by a zygote preload test: a module that leaves a Python thread running."""
    import threading
    threading.Thread(target=time.sleep, args=(30,), daemon=True, name="leftover").start()


def uses_cuda(payload):
    import torch
    x = torch.ones(1024, device="cuda")
    return {"sum": float(x.sum().item()), "device": torch.cuda.get_device_name(0)}


def prints_then_raises(payload):
    """Output through Python's streams and straight to the file descriptors (as C libraries write)."""
    import sys
    print("python stdout line", flush=True)
    print("python stderr line", file=sys.stderr, flush=True)
    os.write(1, b"fd1 line from C\n")
    os.write(2, b"fd2 line from C\n")
    for i in range(30):
        print(f"noise {i}")
    raise ValueError("failed after printing")


def prints_slowly(payload):
    print("first line", flush=True)
    time.sleep(payload["sleep_s"])
    print("second line")  # no flush: a worker's stdout is line-buffered even into a file
    return {"done": True}


def reports_env(payload):
    return {name: os.environ.get(name) for name in payload["names"]}


def runs_profiler(payload):
    """torch.profiler once, as `case` does for kernel counts (Kineto prints its USDT lines here)."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]):
        torch.ones(8).sum()
    return {"profiled": True}


def writes_pid_then_sleeps(payload):
    """Write this worker's pid to payload["pid_file"], then sleep (a worker to be stopped)."""
    with open(payload["pid_file"], "w") as fh:
        fh.write(str(os.getpid()))
    time.sleep(payload["sleep_s"])
    return {"slept": True}


def module_loaded(payload):
    import sys
    return {"loaded": payload["name"] in sys.modules, "ppid": os.getppid()}
