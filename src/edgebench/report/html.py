"""One self-contained HTML page: the compare tables and the PNG plots inlined as base64 data URIs,
CSS inline, no scripts and no external assets, so the file can be mailed or archived alone. Text
from the logs is HTML-escaped, its control characters shown as escapes (`logvalues.printable`).
The page leads with the published study's claims (`claims`: their table, then the plots that carry
them, `edgebench.report.claim_plots`) when it is given them."""
from __future__ import annotations

import base64
import html
from pathlib import Path

from edgebench.logs.loader import Logs
from edgebench.logs.values import printable
from edgebench.report.plots import Plot
from edgebench.report.render import render_html
from edgebench.report.tables import Table

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table.data{border-collapse:collapse;font-size:12px;margin:.5em 0 1em}
table.data th,table.data td{border:1px solid #ccc;padding:2px 6px}
table.data th{background:#f0f0f0;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
p.note{font-size:12px;color:#555;margin:.2em 0}
figure{display:inline-block;margin:.5em}figcaption{font-size:12px;color:#555}
ul.problems{font-size:12px;font-family:monospace}
"""
_KIND_TITLES = (("prefill", "Prefill vs context"), ("tpot", "Decode (TPOT) vs context"),
                ("memory", "Peak memory vs context"), ("energy", "Energy per token"),
                ("ops", "Operator shares"))


def _img(plot: Plot) -> str:
    data = base64.b64encode(Path(plot.path).read_bytes()).decode("ascii")
    alt = html.escape(plot.title)
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{alt}" '
            f'data-kind="{plot.kind}"><figcaption>{alt}</figcaption></figure>')


def build_page(logs: Logs, tables: list[Table], plots: list[Plot],
               title: str = "edgebench report", max_problems: int = 200,
               claims: tuple[Table, list[Plot]] | None = None, notes: list[str] | None = None) -> str:
    devices = sorted({r["device"] for r in logs.cases})
    title = printable(title)
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p>{len(logs.cases)} cases from {len(logs.runs)} runs on {len(devices)} devices: "
             f"{html.escape(printable(', '.join(devices)))}</p>"]
    if notes:  # what the logs say about themselves (compare prints the same), read before the numbers
        parts.append('<h2 id="notes">Notes</h2><ul class="notes">' +
                     "".join(f"<li>{html.escape(printable(n))}</li>" for n in notes) + "</ul>")
    if claims is not None:
        table, claim_plots = claims
        parts.append('<section id="claims">')
        parts.append(render_html([table]))
        parts.extend(_img(p) for p in claim_plots)
        parts.append("</section>")
    for kind, heading in _KIND_TITLES:
        mine = [p for p in plots if p.kind == kind]
        if mine:
            parts.append(f'<h2 id="plots-{kind}">{heading}</h2>')
            parts.extend(_img(p) for p in mine)
    parts.append(render_html(tables))
    if logs.problems:
        shown = logs.problems[:max_problems]
        parts.append(f'<h2 id="problems">Skipped or partly used lines ({len(logs.problems)})</h2>'
                     '<ul class="problems">' + "".join(f"<li>{html.escape(printable(str(p)))}</li>"
                                                       for p in shown) + "</ul>")
        if len(logs.problems) > len(shown):
            parts.append(f"<p class=\"note\">... and {len(logs.problems) - len(shown)} more; "
                         "edgebench validate lists them all</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
