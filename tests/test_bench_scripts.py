"""bench/ scripts read logs through edgebench's readers: compressed logs, old schema versions and a
line cut short by an interrupted run are handled like `edgebench compare` handles them."""
from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"  # recorded GPU results: in the repo, not in the sdist
SWEEP = RESULTS / "h100-2026-11-22b" / "logs" / "sweep_h100.jsonl"
pytestmark = pytest.mark.skipif(not SWEEP.exists(), reason="needs the repo's bench/results")


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_decode_floor_reads_a_gzipped_log_with_a_cut_line_and_matches_the_recorded_table(tmp_path):
    log = tmp_path / "sweep.jsonl.gz"
    text = SWEEP.read_text()
    with gzip.open(log, "wt") as fh:
        fh.write(text + text.splitlines()[-1][:40])  # the last line again, cut short
    out = _run("decode_floor.py", str(log), "--env", str(SWEEP.parents[1] / "env.json"))
    assert out.returncode == 0, out.stderr
    assert "sweep.jsonl.gz:52:" in out.stderr  # the cut line is reported, the rest is used
    recorded = (RESULTS / "h100-2026-11-22b" / "decode_floor.md").read_text().splitlines()
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) > 10 and set(rows) <= set(recorded)
