"""The claims table `edgebench claims` prints and `edgebench report` leads with, from
`edgebench.analysis.claims` results: one row per device, method and claim (claim 1 once per memory
budget searched). `claims_table(results, numbers=False)`: the columns device, method, claim,
measured, published, verdict and "points used / needs" (text, as the terminal and markdown show
them); with `numbers` (CSV, JSON) also the measured and published values and the threshold as numbers.
"""
from __future__ import annotations

from edgebench.analysis.claim_data import METHODS
from edgebench.analysis.claims import NOT_MEASURED, Result
from edgebench.report.tables import Column, Table

TITLE = "Published claims (arXiv 2507.12442) on each device"


def claims_table(results: list[Result], numbers: bool = False) -> Table:
    cols = [Column("device"), Column("method"), Column("claim"), Column("measured"), Column("published"),
            Column("verdict"), Column("points used / needs")]
    if numbers:
        cols += [Column("measured_value", ".4g"), Column("published_value", ".4g"), Column("threshold", ".4g")]
    rows = []
    for r in results:
        detail = f"needs {r.needs}" if r.verdict == NOT_MEASURED else "; ".join(r.points)
        if r.verdict != NOT_MEASURED and r.points == []:
            detail = "-"
        row = [r.device, r.method, r.title, r.shown, r.published_shown, r.verdict, detail]
        if numbers:
            row += [r.value, r.published, r.threshold]
        rows.append(row)
    notes = [f"method {m.name}: {m.title}" for m in METHODS] + [
        "verdicts: a claim of an F-fold advantage holds at sqrt(F) or more measured (claim 4: a 50% "
        "majority of the kernel time); the rules are in edgebench.analysis.claims"]
    return Table("claims", TITLE, cols, rows, notes)
