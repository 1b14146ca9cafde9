"""Render `Table`s as a terminal table, markdown, CSV, JSON or HTML.

Cells are formatted by their column's `fmt`: a Python format spec for numbers, "pct" for a fraction
shown as a percentage, "ratio" for a `RatioCI` shown as `1.23x` or `~1.02x` when its interval
includes 1. Missing values show as "-" (empty in CSV, null in JSON). CSV writes the ratio as four
columns (ratio, ci_lo, ci_hi, within_spread); JSON as an object. Several tables in one CSV are
separated by a blank line and a `# table: NAME` line.

The terminal format uses rich up to `RICH_MAX_ROWS` rows per table; rich lays out about 500 rows a
second, so longer tables are written as plain aligned text (same columns, no borders).
"""
from __future__ import annotations

import csv
import html
import io
import json
from typing import Any, Callable

from edgebench.analysis.stats import RatioCI
from edgebench.report.tables import Column, Table

RICH_MAX_ROWS = 2000
MISSING = "-"


def format_cell(value: Any, col: Column) -> str:
    return _formatter(col)(value)


def _formatter(col: Column) -> Callable[[Any], str]:
    """The cell formatter of one column (built once per column: tables reach 10^5 rows)."""
    spec = col.fmt

    def fmt(value: Any) -> str:
        if value is None:
            return MISSING
        t = type(value)
        if t is RatioCI:
            return f"{'~' if value.within_spread else ''}{value.ratio:.2f}x"
        if t is str or t is bool or not spec:
            return str(value)
        if spec == "pct":
            return f"{100.0 * value:.1f}%"
        try:
            return format(value, spec)
        except ValueError:  # an int spec given a float, e.g. an interpolated context
            return format(value, ".4g")

    return fmt


def _within(v: RatioCI) -> bool | None:
    """`v.within_spread`, inlined for whole columns."""
    lo, hi = v.lo, v.hi
    return None if lo is None or hi is None else lo <= 1.0 <= hi


def _column_cells(values: list[Any], col: Column) -> list[str]:
    spec = col.fmt
    if spec == "ratio" and all(type(v) is RatioCI or v is None for v in values):
        return [MISSING if v is None else f"{'~' if _within(v) else ''}{v.ratio:.2f}x"
                for v in values]
    if spec and spec not in ("pct", "ratio"):
        try:  # fast path: one format spec for a whole column of numbers
            return [MISSING if v is None else format(v, spec) for v in values]
        except (ValueError, TypeError):
            pass
    elif not spec:
        return [MISSING if v is None else str(v) for v in values]
    f = _formatter(col)
    return [f(v) for v in values]


def _columns(table: Table) -> list[list[str]]:
    """Formatted cells, column-major; formatted a column at a time (one spec per column)."""
    return [_column_cells(list(vals), c) for vals, c in zip(zip(*table.rows), table.columns)]


def _cells(table: Table) -> list[tuple[str, ...]]:
    """Formatted cells, row-major."""
    return list(zip(*_columns(table))) if table.rows else []


def render_text(tables: list[Table], width: int | None = None) -> str:
    out = io.StringIO()
    for t in tables:
        if len(t.rows) <= RICH_MAX_ROWS:
            out.write(_rich(t, width))
        else:
            out.write(_plain(t))
        for note in t.notes:
            out.write(f"  {note}\n")
        out.write("\n")
    return out.getvalue()


def _rich(t: Table, width: int | None) -> str:
    from rich.console import Console
    from rich.table import Table as RichTable

    rt = RichTable(title=t.title, title_justify="left")
    for c in t.columns:
        rt.add_column(c.name, justify="right" if c.fmt else "left", overflow="fold")
    for row in _cells(t):
        rt.add_row(*row)
    buf = io.StringIO()
    Console(file=buf, width=width or 240, color_system=None, highlight=False).print(rt)
    return buf.getvalue()


def _plain(t: Table) -> str:
    names = [c.name for c in t.columns]
    columns = (_columns(t) if t.rows else []) or [()] * len(names)
    widths = [max(len(n), max(map(len, col), default=0)) for n, col in zip(names, columns)]
    line = "  ".join(f"{{:{'>' if c.fmt else '<'}{w}}}" for c, w in zip(t.columns, widths)).format
    out = [t.title, line(*names).rstrip(), line(*("-" * w for w in widths)).rstrip()]
    out += [line(*r).rstrip() for r in zip(*columns)]
    return "\n".join(out) + "\n"


def render_markdown(tables: list[Table]) -> str:
    out = []
    for t in tables:
        out.append(f"### {t.title}\n")
        out.append("| " + " | ".join(c.name for c in t.columns) + " |")
        out.append("|" + "|".join("---:" if c.fmt else "---" for c in t.columns) + "|")
        if t.rows:  # escape | a column at a time, only in the columns that hold one
            columns = [[v.replace("|", "\\|") for v in col] if any("|" in v for v in col) else col
                       for col in _columns(t)]
            out += ["| " + " | ".join(row) + " |" for row in zip(*columns)]
        out.extend(f"\n_{n}_" for n in t.notes)
        out.append("")
    return "\n".join(out) + "\n"


def render_csv(tables: list[Table]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for i, t in enumerate(tables):
        if len(tables) > 1:
            buf.write(("\n" if i else "") + f"# table: {t.name}\n")
        header: list[str] = []
        for c in t.columns:
            header += ([c.name, f"{c.name}_ci_lo", f"{c.name}_ci_hi", f"{c.name}_within_spread"]
                       if c.fmt == "ratio" else [c.name])
        w.writerow(header)
        ratio_at = [i for i, c in enumerate(t.columns) if c.fmt == "ratio"]
        if not ratio_at:
            w.writerows(t.rows)  # csv writes None as an empty field
            continue
        if t.rows and len({len(r) for r in t.rows}) == 1 and ratio_at[-1] < len(t.rows[0]):
            columns = list(zip(*t.rows))  # expand each ratio column into four, a column at a time
            for i in reversed(ratio_at):
                cis = columns[i]
                if not all(type(v) is RatioCI or v is None for v in cis):
                    break
                columns[i:i + 1] = ([None if v is None else v.ratio for v in cis],
                                    [None if v is None else v.lo for v in cis],
                                    [None if v is None else v.hi for v in cis],
                                    [None if v is None else _within(v) for v in cis])
            else:
                w.writerows(zip(*columns))
                continue
        for row in t.rows:
            out = list(row)
            for i in reversed(ratio_at):
                v = row[i]
                out[i:i + 1] = ([v.ratio, v.lo, v.hi, v.within_spread] if v is not None
                                else [None] * 4)
            w.writerow(out)
    return buf.getvalue()


def tables_as_json(tables: list[Table]) -> list[dict[str, Any]]:
    def cell(v: Any) -> Any:
        return v.as_dict() if isinstance(v, RatioCI) else v

    return [{"name": t.name, "title": t.title, "notes": t.notes,
             "rows": [{c.name: cell(v) for c, v in zip(t.columns, row)} for row in t.rows]}
            for t in tables]


def render_json(tables: list[Table], extra: dict[str, Any] | None = None) -> str:
    """The JSON document {"tables": tables_as_json(tables), **extra}, compact. Written a column at
    a time: the same text json.dumps gives, without building a dict per row."""
    extra = extra or {}
    texts = [_table_json(t) for t in tables] if "tables" not in extra else [None]
    if any(x is None for x in texts):
        doc = {"tables": tables_as_json(tables), **extra}
        return json.dumps(doc, separators=(",", ":"), allow_nan=False) + "\n"
    tail = "," + _dumps(extra)[1:] if extra else "}"
    return '{"tables":[' + ",".join(texts) + "]" + tail + "\n"  # type: ignore[arg-type]


def _dumps(x: Any) -> str:
    return json.dumps(x, separators=(",", ":"), allow_nan=False)


_JSON_SCALARS = frozenset((int, float, bool, type(None)))
_encode_str = json.encoder.encode_basestring_ascii  # what json.dumps uses for str (ensure_ascii)


def _json_column(values: list[Any]) -> list[str]:
    """Each value's JSON text, as json.dumps writes it inside a document."""
    kinds = set(map(type, values))
    if kinds <= {str, type(None)}:  # each distinct string encoded once (devices, models repeat)
        memo = {v: "null" if v is None else _encode_str(v) for v in set(values)}
        return [memo[v] for v in values]
    if kinds <= _JSON_SCALARS:  # numbers, bools and nulls hold no comma: one dumps, then split
        return _dumps(values)[1:-1].split(",") if values else []
    if kinds <= {RatioCI, type(None)}:
        cis = [v for v in values if v is not None]
        fields = [_json_column(list(f)) for f in zip(*cis)] if cis else []
        within = _json_column([_within(v) for v in cis])
        objs = iter('{"ratio":%s,"ci_lo":%s,"ci_hi":%s,"method":%s,"within_spread":%s}'
                    % (*f, w) for f, w in zip(zip(*fields), within))
        return ["null" if v is None else next(objs) for v in values]
    return [_dumps(v.as_dict() if isinstance(v, RatioCI) else v) for v in values]


def _table_json(t: Table) -> str | None:
    """One table of `tables_as_json` as JSON text; None when it needs the general path (repeated
    column names, rows not as long as the columns)."""
    names = [c.name for c in t.columns]
    n = len(names)
    if not n or len(set(names)) < n or any(len(r) != n for r in t.rows):
        return None
    head = _dumps({"name": t.name, "title": t.title, "notes": t.notes})[:-1]
    row = "{" + ",".join(_encode_str(k).replace("%", "%%") + ":%s" for k in names) + "}"
    columns = [_json_column(list(vals)) for vals in zip(*t.rows)]
    return head + ',"rows":[' + ",".join([row % cells for cells in zip(*columns)]) + "]}"


def render_html(tables: list[Table]) -> str:
    parts = []
    for t in tables:
        parts.append(f'<h2 id="table-{t.name}">{html.escape(t.title)}</h2>')
        parts.append(f'<table class="data" data-table="{t.name}"><thead><tr>'
                     + "".join(f"<th>{html.escape(c.name)}</th>" for c in t.columns)
                     + "</tr></thead><tbody>")
        for row in _cells(t):
            parts.append("<tr>" + "".join(
                f'<td class="{"num" if c.fmt else "txt"}">{html.escape(v)}</td>'
                for v, c in zip(row, t.columns)) + "</tr>")
        parts.append("</tbody></table>")
        parts.extend(f'<p class="note">{html.escape(n)}</p>' for n in t.notes)
    return "\n".join(parts)
