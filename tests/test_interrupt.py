"""An interrupted `edgebench run` (Ctrl-C or SIGTERM while a case runs) leaves a valid log that says it
was interrupted, prints no stack dump, and the same command resumes it."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# The first case is quick; the second takes seconds (Mamba-1's reference prefill loops over its 16K
# tokens), so the signal lands while its worker runs.
RUN = ["run", "-m", "tiny-mamba", "-c", "32,16384", "-n", "2", "-r", "1", "--warmup", "0", "--device", "cpu"]


def _cases(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(x) for x in log.read_text().splitlines() if '"type":"case"' in x]


def _start_then_signal(log: Path, sig: int) -> tuple[subprocess.Popen, str]:
    """Start the run, wait until the first point is recorded (its prefill and decode lines), send `sig`
    a moment later (while the second point's worker runs), and return the process with its stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "edgebench", *RUN, "-o", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ.copy())
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and not _cases(log):
        time.sleep(0.05)
    time.sleep(1.5)  # inside the second case's worker
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    assert len(_cases(log)) == 2, "the run ended or went on before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc, err


@pytest.mark.parametrize("sig, reason", [(signal.SIGINT, "received SIGINT (Ctrl-C)"),
                                         (signal.SIGTERM, "received SIGTERM")])
def test_interrupted_run_records_it_without_a_stack_dump(tmp_path, sig, reason):
    log = tmp_path / "i.jsonl"
    proc, err = _start_then_signal(log, sig)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "most recent call first" not in err and 'File "' not in err, err
    assert "interrupted" in err and "rerun the same command to resume" in err
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["type"] for x in lines] == ["run", "case", "case", "interrupted"]
    mark = lines[-1]
    assert mark["run"] == lines[0]["run"] and mark["reason"] == reason
    assert mark["cases_recorded"] == 2 and mark["cases_left"] == 2  # lines: one point of two
    # The stopped worker did not dump its stack into its output file either.
    for f in Path(f"{log}.workers").glob("*.txt"):
        text = f.read_text()
        assert "most recent call first" not in text and "KeyboardInterrupt" not in text, (f, text)
    check = subprocess.run([sys.executable, "-m", "edgebench", "validate", str(log)],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0 and "0 problems" in check.stdout, check.stdout + check.stderr
    report = subprocess.run([sys.executable, "-m", "edgebench", "compare", str(log)],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0 and "Traceback" not in report.stderr, report.stderr[-2000:]
    if sig == signal.SIGINT:  # the same command again measures what the interruption left
        again = subprocess.run([sys.executable, "-m", "edgebench", *RUN, "-o", str(log)],
                               capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr[-3000:]
        assert "2 of 4 lines already recorded" in again.stderr
        types = [json.loads(x)["type"] for x in log.read_text().splitlines()]
        assert types == ["run", "case", "case", "interrupted", "run", "case", "case", "end"]
