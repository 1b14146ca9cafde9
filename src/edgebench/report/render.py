"""Render `Table`s as a terminal table, markdown, CSV, JSON or HTML (CSV and JSON are written by
`edgebench.report.render_data`, re-exported here).

Cells are formatted by their column's `fmt`: a Python format spec for numbers, "pct" for a fraction
shown as a percentage, "ratio" for a `RatioCI` shown as `1.23x` or `~1.02x` when its interval
includes 1. Missing values show as "-" (empty in CSV, null in JSON).

The terminal format uses rich up to `RICH_MAX_ROWS` rows per table; rich lays out about 500 rows a
second, so longer tables are written as plain aligned text (same columns, no borders); a cell
longer than `TEXT_CELL_CHARS` is cut there in this format (the others keep it whole). Text from the
logs is shown, never acted on: control characters are escaped in every format but JSON (which
escapes them itself), and rich gets plain `Text` (a model named `[red]x[/]` is shown as written).
"""
from __future__ import annotations

import html
import io
from typing import Any, Callable, Iterator

from edgebench.analysis.stats import RatioCI
from edgebench.logs.values import printable, printable_column, shorten
from edgebench.report.render_data import (BLOCK_ROWS, _within, iter_csv, iter_json, render_csv,
                                          render_json, tables_as_json)
from edgebench.report.tables import Column, Table

__all__ = ["MISSING", "RICH_MAX_ROWS", "format_cell", "iter_csv", "iter_json", "iter_markdown",
           "iter_text", "render_csv", "render_html", "render_json", "render_markdown",
           "render_text", "tables_as_json"]

RICH_MAX_ROWS = 2000
TEXT_CELL_CHARS = 200
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
    """Formatted cells, column-major; formatted a column at a time (one spec per column), control
    characters escaped."""
    return [printable_column(_column_cells(list(vals), c))
            for vals, c in zip(table.column_data(), table.columns)]


def _names(table: Table) -> list[str]:
    return [printable(c.name) for c in table.columns]


def _cells(table: Table) -> list[tuple[str, ...]]:
    """Formatted cells, row-major."""
    return list(zip(*_columns(table))) if table.n_rows else []


def iter_text(tables: list[Table], width: int | None = None) -> Iterator[str]:
    """`render_text` in pieces (a long table in blocks of rows)."""
    for t in tables:
        if t.n_rows <= RICH_MAX_ROWS:
            yield _rich(t, width)
        else:
            yield from _plain(t)
        yield "".join(f"  {printable(note)}\n" for note in t.notes) + "\n"


def render_text(tables: list[Table], width: int | None = None) -> str:
    return "".join(iter_text(tables, width))


def _rich(t: Table, width: int | None) -> str:
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    rt = RichTable(title=Text(t.title), title_justify="left")
    for c, name in zip(t.columns, _names(t)):
        rt.add_column(Text(name), justify="right" if c.fmt else "left", overflow="fold")
    for row in _cells(t):
        rt.add_row(*(Text(shorten(c, TEXT_CELL_CHARS)) for c in row))  # no markup, no emoji
    buf = io.StringIO()
    Console(file=buf, width=width or 240, color_system=None, highlight=False, markup=False,
            emoji=False).print(rt)
    return buf.getvalue()


def _plain(t: Table) -> Iterator[str]:
    names = _names(t)
    columns = ([[shorten(c, TEXT_CELL_CHARS) for c in col] if max(map(len, col)) > TEXT_CELL_CHARS
                else col for col in _columns(t)] if t.n_rows else []) or [()] * len(names)
    widths = [max(len(n), max(map(len, col), default=0)) for n, col in zip(names, columns)]
    line = "  ".join(f"{{:{'>' if c.fmt else '<'}{w}}}" for c, w in zip(t.columns, widths)).format
    yield f"{t.title}\n{line(*names).rstrip()}\n{line(*('-' * w for w in widths)).rstrip()}\n"
    rows = [line(*r).rstrip() for r in zip(*columns)]
    for start in range(0, len(rows), BLOCK_ROWS):
        yield "\n".join(rows[start:start + BLOCK_ROWS]) + "\n"


def iter_markdown(tables: list[Table]) -> Iterator[str]:
    """`render_markdown` in pieces (a long table in blocks of rows)."""
    for t in tables:
        yield f"### {t.title}\n\n"
        yield "| " + " | ".join(n.replace("|", "\\|") for n in _names(t)) + " |\n"
        yield "|" + "|".join("---:" if c.fmt else "---" for c in t.columns) + "|\n"
        if t.n_rows:  # escape | a column at a time, only in the columns that hold one
            columns = [[v.replace("|", "\\|") for v in col] if "|" in "".join(col) else col
                       for col in _columns(t)]
            rows = list(map(" | ".join, zip(*columns)))
            for start in range(0, len(rows), BLOCK_ROWS):
                yield "| " + " |\n| ".join(rows[start:start + BLOCK_ROWS]) + " |\n"
        yield "".join(f"\n_{printable(n)}_\n" for n in t.notes) + "\n"


def render_markdown(tables: list[Table]) -> str:
    return "".join(iter_markdown(tables))


def render_html(tables: list[Table]) -> str:
    parts = []
    for t in tables:
        parts.append(f'<h2 id="table-{t.name}">{html.escape(t.title)}</h2>')
        parts.append(f'<table class="data" data-table="{t.name}"><thead><tr>'
                     + "".join(f"<th>{html.escape(n)}</th>" for n in _names(t))
                     + "</tr></thead><tbody>")
        for row in _cells(t):
            parts.append("<tr>" + "".join(
                f'<td class="{"num" if c.fmt else "txt"}">{html.escape(v)}</td>'
                for v, c in zip(row, t.columns)) + "</tr>")
        parts.append("</tbody></table>")
        parts.extend(f'<p class="note">{html.escape(printable(n))}</p>' for n in t.notes)
    return "\n".join(parts)
