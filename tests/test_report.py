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
    assert names == ["claims-prefill_orin-jet.png",  # the edgebench method: last logits, graph decode
                     "claims-share_orin-jet.png", "claims-tpot_orin-jet.png", "memory_nvidia-jetson-orin-nano.png", "memory_orin-jet.png",
                     "ops_orin-jet.png", "prefill_nvidia-jetson-orin-nano.png", "prefill_orin-jet.png",
                     "prefill_orin.png", "tpot_nvidia-jetson-orin-nano.png", "tpot_orin-jet.png",
                     "tpot_orin.png"]  # no energy anywhere; llama-bench has no memory
    for p in built.glob("*.png"):
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 5000


def test_html_is_self_contained(built):
    page = (built / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 12
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
    assert 'data-probe="images=12 decoded=12"' in dom
    assert "Cases: device x model x context" in dom
    assert "Crossover: where one model overtakes another" in dom
    assert "<td class=\"txt\">mamba</td>" in dom and "~" in dom
    assert "40,960" in dom  # max-context table
    assert "55.0%" in dom  # operator share of the SSM scan


def run_report(*argv) -> int:
    parser = argparse.ArgumentParser()
    report.add_arguments(parser)
    return report.main(parser.parse_args([str(a) for a in argv]))


def test_a_log_without_cases_gives_its_tables_and_says_so(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import json
    lines = [{"v": 1, "type": "run", "run": "m1", "t": "2026-11-22T10:00:00+00:00"},
             {"v": 1, "type": "maxctx", "run": "m1", "model": "qwen", "mode": "last",
              "max_ok_ctx": 40960, "min_fail_ctx": 45056}]
    (tmp_path / "maxctx.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert run_report(tmp_path / "maxctx.jsonl", "-o", tmp_path / "out") == 0
    assert "no measured cases in these logs" in capsys.readouterr().out
    page = (tmp_path / "out" / "report.html").read_text()
    assert 'data-table="maxctx"' in page and "40,960" in page


def test_output_errors_are_one_line_with_the_fix(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import errno

    from edgebench.errors import UserError
    write_logs(tmp_path)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UserError, match="file.txt is a file, not a folder; this command writes "
                                        "several files"):
        run_report(tmp_path, "-o", tmp_path / "file.txt")
    with pytest.raises(UserError, match="cannot write /dev/full/x: Not a directory"):
        run_report(tmp_path, "-o", "/dev/full/x")
    (tmp_path / "out" / "report.html").mkdir(parents=True)  # the page's name taken by a folder
    with pytest.raises(UserError, match="report.html: Is a directory; that is a folder"):
        run_report(tmp_path, "-o", tmp_path / "out")
    import matplotlib.figure

    def full(self, path, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    with pytest.raises(UserError, match=r"cannot write .*\.png: No space left on device; free "
                                        "space on that disk or write elsewhere"):
        run_report(tmp_path, "-o", tmp_path / "out2")


def test_plot_text_is_plain_text(tmp_path, capsys):
    """Model and device names with `$` (matplotlib math), markup and escapes draw as written."""
    pytest.importorskip("matplotlib")
    import json
    rows = []
    for model in ("a$b", "$\\frac$", "[red]x[/]\x1b[31m"):
        for ctx in (1024, 4096):
            rows.append({"v": 1, "type": "case", "run": "p1", "model": model, "ctx": ctx,
                         "status": "ok", "device": "GPU $x$ \x1b[2J",
                         "prefill_ms": {"median": ctx / 100}, "tpot_ms": {"median": 2.0},
                         "mem": {"peak_allocated_bytes": ctx * 1000}})
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    assert run_report(tmp_path / "a.jsonl", "-o", tmp_path / "out") == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and len(list((tmp_path / "out").glob("*.png"))) == 4  # + claims-prefill
    page = (tmp_path / "out" / "report.html").read_text()
    assert "\x1b" not in page and "GPU $x$ \\x1b[2J" in page


def test_the_page_notes_merged_logs_that_ran_different_autotune_choices(tmp_path, capsys):
    """Two H200 hosts whose Triton caches chose different configs for a Mamba-2 kernel: the page says
    so above the numbers (and stderr), as compare does; the notes section is absent without it."""
    pytest.importorskip("matplotlib")
    from test_compare import _tuned_log
    _tuned_log(tmp_path / "a.jsonl", "node1", "BLOCK_SIZE_M=32,num_warps=2,num_stages=5")
    _tuned_log(tmp_path / "b.jsonl", "node2", "BLOCK_SIZE_M=64,num_warps=4,num_stages=3")
    assert run_report(tmp_path / "a.jsonl", tmp_path / "b.jsonl", "-o", tmp_path / "out") == 0
    page = (tmp_path / "out" / "report.html").read_text()
    notes = page.split('<h2 id="notes">', 1)[1].split("</ul>", 1)[0]
    assert "mamba2-780m" in notes and "_chunk_scan_fwd_kernel" in notes and "node1" in notes
    assert page.index('id="notes"') < page.index("<table")
    assert "note: mamba2-780m (hf, bfloat16) on NVIDIA H200" in capsys.readouterr().err
    assert run_report(tmp_path / "a.jsonl", "-o", tmp_path / "one") == 0
    assert 'id="notes"' not in (tmp_path / "one" / "report.html").read_text()
