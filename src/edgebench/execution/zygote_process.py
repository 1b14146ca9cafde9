"""The fork server's own process (`python -m edgebench.execution.zygote_process FD MODULES`): it
imports MODULES, then the PRELOAD line's, checks that forking stays safe, answers READY and forks a
case worker per request. The protocol and the parent's side are in `edgebench.execution.forkserver`.
"""
from __future__ import annotations

import ctypes
import gc
import importlib
import json
import os
import sys
import threading
import warnings

_CUDA_ERROR_NOT_INITIALIZED = 3


def cuda_driver_initialised() -> bool:
    """True when this process already called cuInit (forked children could not use CUDA then).
    Only asks a libcuda that is already loaded, so the check itself initialises nothing."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as fh:
            if "libcuda.so" not in fh.read():
                return False
        lib = ctypes.CDLL("libcuda.so.1", mode=os.RTLD_NOLOAD | os.RTLD_GLOBAL)
    except OSError:
        return False
    count = ctypes.c_int(0)
    return lib.cuDeviceGetCount(ctypes.byref(count)) != _CUDA_ERROR_NOT_INITIALIZED


def fork_unsafe_reason() -> str | None:
    """Why forking this process would be unsafe, or None."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "torch initialised CUDA during the preload"
    if cuda_driver_initialised():
        return "the CUDA driver was initialised during the preload"
    if threading.active_count() > 1:
        names = ", ".join(t.name for t in threading.enumerate() if t is not threading.current_thread())
        return f"the preload started Python threads ({names})"
    # Native thread pools (numpy's OpenBLAS starts one at import) are left: BLAS and OpenMP runtimes
    # reset their pools in the child through pthread_atfork handlers.
    return None


def serve(out_fd: int, modules: list[str]) -> int:
    from edgebench.execution import worker
    # Python >= 3.12 warns on fork() with native threads alive; see fork_unsafe_reason for why it is safe.
    warnings.filterwarnings("ignore", message=r".*use of fork\(\) may lead to deadlocks", category=DeprecationWarning)
    worker.die_with_parent()
    out = os.fdopen(out_fd, "w", buffering=1)
    try:
        _import(modules)
        line = sys.stdin.readline()  # ["PRELOAD", [more modules]] (see the module doc)
        if not line:
            return 0  # the parent went away before naming them
        tag, more = json.loads(line)
        if tag != "PRELOAD":
            raise ValueError(f"expected the PRELOAD line first, got {line.strip()[:80]!r}")
        _import(more)
        why = fork_unsafe_reason()
    except Exception as exc:  # noqa: BLE001 - any preload failure means: spawn workers instead
        why = f"preloading failed: {type(exc).__name__}: {exc}".replace("\n", " ")[:300]
    out.write("READY ok\n" if why is None else f"READY no {why}\n")
    if why is not None:
        return 0
    # Keep the preloaded objects out of the collector, so children do not copy their pages by merely
    # scanning them (copy-on-write: what a child does not write stays shared, which matters on a
    # Jetson's unified memory).
    gc.freeze()
    for line in sys.stdin:
        request, channel, output = json.loads(line)
        sys.stdout.flush()  # or the child writes the zygote's buffered text again
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker: what `python -m edgebench.execution.worker REQUEST CHANNEL` would do
            code = 1
            try:
                os.setsid()
                out.close()
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
                if output is not None:
                    fd = os.open(output, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                    os.dup2(fd, 1)
                    os.dup2(fd, 2)
                    os.close(fd)
                code = worker.main([request, channel])
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        out.write(f"PID {pid}\n")
        _, status = os.waitpid(pid, 0)
        out.write(f"EXIT {pid} {os.waitstatus_to_exitcode(status)}\n")
    return 0


def _import(modules: list[str]) -> None:
    for name in modules:  # "?name": optional (a model class the installed transformers lacks, a
        try:              # kernel package whose build does not match the installed torch)
            importlib.import_module(name.lstrip("?"))
        except Exception as exc:  # noqa: BLE001 - an optional module's failure of any kind is said, not fatal
            if not name.startswith("?"):
                raise
            if not isinstance(exc, ImportError):
                print(f"edgebench fork server: optional {name[1:]} failed to import "
                      f"({type(exc).__name__}: {exc}); workers import it themselves", file=sys.stderr)


if __name__ == "__main__":
    code = serve(int(sys.argv[1]), [m for m in sys.argv[2].split(",") if m])
    sys.stdout.flush()
    sys.stderr.flush()
    # Every child was waited for: skip the interpreter's teardown of the preloaded modules (torch,
    # transformers: tenths of a second to seconds), which the parent's close would wait for.
    os._exit(code)
