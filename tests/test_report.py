"""`edgebench report`: PNG files, the self-contained HTML page, and the page rendered in Chromium."""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgebench.commands import report

sys.path.insert(0, str(Path(__file__).parent))
from test_compare import write_logs  # noqa: E402  (same synthetic two-model log)

FOREIGN = Path(__file__).parent / "fixtures" / "foreign"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    pytest.importorskip("matplotlib")
    logs_dir = tmp_path_factory.mktemp("logs")
    write_logs(logs_dir)
    out = tmp_path_factory.mktemp("report")
    parser = argparse.ArgumentParser()
    report.add_arguments(parser)
    args = parser.parse_args([str(logs_dir), str(FOREIGN), "-o", str(out), "--baseline", "qwen"])
    assert report.main(args) == 0
    return out


def test_pngs_exist_only_where_data_exists(built):
    names = sorted(p.name for p in built.glob("*.png"))
    assert names == ["memory_nvidia-jetson-orin-nano.png", "memory_orin-jet.png",
                     "ops_orin-jet.png", "prefill_nvidia-jetson-orin-nano.png", "prefill_orin-jet.png",
                     "prefill_orin.png", "tpot_nvidia-jetson-orin-nano.png", "tpot_orin-jet.png",
                     "tpot_orin.png"]  # no energy anywhere; llama-bench has no memory
    for p in built.glob("*.png"):
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 5000


def test_html_is_self_contained(built):
    page = (built / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 9
    assert not re.search(r'(src|href)="(https?:|//|[^"d#][^"]*\.(png|css|js))', page)
    assert "<script" not in page
    assert 'data-table="cases"' in page and 'data-table="crossover"' in page
    assert "pg512,64" in page  # skipped foreign lines are listed


# Appended only for the test: reports what the browser decoded into the DOM it dumps.
PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 100).length;
  document.body.setAttribute('data-probe', `images=${imgs.length} decoded=${ok}`);
});
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_page_renders_in_headless_chromium(built, tmp_path):
    probe_page = tmp_path / "probe.html"
    probe_page.write_text((built / "report.html").read_text().replace("</body>", PROBE + "</body>"))
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
           "--virtual-time-budget=5000", "--dump-dom", probe_page.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    assert 'data-probe="images=9 decoded=9"' in dom
    assert "Cases: device x model x context" in dom
    assert "Crossover: where one model overtakes another" in dom
    assert "<td class=\"txt\">mamba</td>" in dom and "~" in dom
    assert "40,960" in dom  # max-context table
    assert "55.0%" in dom  # operator share of the SSM scan
