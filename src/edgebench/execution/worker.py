"""The worker process of `edgebench.execution.isolate`: `python -m edgebench.execution.worker REQUEST CHANNEL`.

REQUEST is a JSON file `{"target": "package.module:function", "payload": {...}}`. The worker calls
`target(payload)` and appends one final message to the CHANNEL file (JSON lines, after any
`report_partial` messages): `{"kind": "final", "status": "ok", "data": result}` or `{"kind": "final",
"status": "oom" | "error", "reason": ...}`. It exits 0 whenever that message was written, so the parent
can tell a clean failure from a death. It asks Linux to SIGKILL it if the parent dies, so a killed
runner leaves no worker holding the GPU. SIGTERM (a timeout) prints where every thread was; SIGINT,
which the parent sends on an intentional interrupt, ends it at once and silently (no Python handler,
so no traceback, even inside a long native call).
"""
from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import importlib
import json
import os
import signal
import sys
import traceback

from edgebench.execution import isolate

_PR_SET_PDEATHSIG = 1
_REASON_CHARS = 400  # keeps a failed case's log line well under 1 KB


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (exits at once if it already has)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def is_oom(exc: BaseException) -> bool:
    """torch.OutOfMemoryError (by class name, so torch need not be imported), MemoryError, or any
    exception whose message says "out of memory" (CUDA and NvMap errors do)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"OutOfMemoryError", "MemoryError"}) or "out of memory" in str(exc).lower()


def describe(exc: BaseException, where: bool) -> str:
    """"ExcType: first line of message", plus "(at file:line in function)" of the innermost frame."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    frames = traceback.extract_tb(exc.__traceback__)
    if where and frames:
        last = frames[-1]
        text += f" (at {os.path.basename(last.filename)}:{last.lineno} in {last.name})"
    return text[:_REASON_CHARS]


def _call(target: str, payload: dict) -> dict:
    module_name, _, func_name = target.partition(":")
    func = getattr(importlib.import_module(module_name), func_name)
    result = func(payload)
    if not isinstance(result, dict):
        raise TypeError(f"target {target} returned {type(result).__name__}, expected a dict")
    json.dumps(result)  # fails here, as an error record, if the result is not JSON-able
    return result


def main(argv: list[str]) -> int:
    die_with_parent()
    # A case stopped for its timeout gets SIGTERM: print where every thread was, so a hang is explained.
    faulthandler.register(signal.SIGTERM, chain=True)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # an interrupt from the parent: end quietly, now
    with contextlib.suppress(AttributeError, ValueError):  # lines reach the output file as printed
        sys.stdout.reconfigure(line_buffering=True)
    request_path, channel_path = argv
    with open(request_path, encoding="utf-8") as fh:
        request = json.load(fh)
    isolate.bind_channel(channel_path)
    try:
        message = {"status": "ok", "data": _call(request["target"], request["payload"])}
    except Exception as exc:  # noqa: BLE001 - every failure of a case becomes its record
        oom = is_oom(exc)
        if not oom:
            traceback.print_exc()
        message = {"status": "oom" if oom else "error", "reason": describe(exc, where=not oom)}
    sys.stdout.flush()
    isolate.append_message(channel_path, {"kind": "final", **message})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
