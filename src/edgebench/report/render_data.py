"""Render `Table`s as CSV or JSON, a column at a time (tables reach 10^5 rows).

CSV writes the ratio as four columns (ratio, ci_lo, ci_hi, within_spread); JSON as an object.
Several tables in one CSV are separated by a blank line and a `# table: NAME` line. The text is the
same, byte for byte, as `csv.writer` row by row and `json.dumps(..., separators=(",", ":"),
allow_nan=False)` of `tables_as_json`: each column's numbers are written by one `orjson.dumps`
call where orjson writes them as Python does (see `number_texts`), by the stdlib otherwise. CSV
text cells and column names have their control characters (but tab and newline, which CSV quotes)
escaped (`logvalues.printable`), as the terminal formats do; JSON escapes them itself.
"""
from __future__ import annotations

import csv
import io
import json
from typing import Any, Iterator

from edgebench.analysis.stats import RatioCI
from edgebench.logs.values import printable
from edgebench.report.tables import Table

try:
    from orjson import dumps as _orjson_dumps
except ImportError:  # pragma: no cover - installed without its dependencies
    _orjson_dumps = None

_NONE = type(None)
_JSON_SCALARS = frozenset((int, float, bool, _NONE))
_NUMBERS = frozenset((int, float, _NONE))
_encode_str = json.encoder.encode_basestring_ascii  # what json.dumps uses for str (ensure_ascii)
BLOCK_ROWS = 8192  # rows written at a time: their cells stay in cache, their memory is reused
_checked: list[bool] = []  # [whether orjson writes numbers as Python does], once per process


def _within(v: RatioCI) -> bool | None:
    """`v.within_spread`, inlined for whole columns."""
    lo, hi = v.lo, v.hi
    return None if lo is None or hi is None else lo <= 1.0 <= hi


def _dumps(x: Any) -> str:
    return json.dumps(x, separators=(",", ":"), allow_nan=False)


def number_texts(values: list[Any]) -> list[str] | None:
    """Each int / float / bool / None of `values` as JSON text (null for None), written by orjson,
    or None where orjson would not write what `json.dumps` writes: it writes 1e-7 and 0.00001 where
    Python writes 1e-07 and 1e-05 (so any text with "e-" or "0.0000" goes to the stdlib), null for
    NaN and infinities (the stdlib refuses them), and refuses ints past 64 bits. Floats are the
    shortest text that reads back the same in both; a self-check at first use confirms it."""
    if _orjson_dumps is None:
        return None
    if not _checked:
        _checked.append(_self_check())
    if not _checked[0]:
        return None
    try:
        text = _orjson_dumps(values)
    except TypeError:
        return None
    if b"e-" in text or b"0.0000" in text or text.count(b"null") != values.count(None):
        return None
    return text.decode()[1:-1].split(",") if values else []


def _self_check() -> bool:
    """Whether this orjson writes a spread of numbers as json.dumps does (another version could
    format them otherwise)."""
    sample = [0.0, -0.0, 1.0, 0.1, 1 / 3, 2 / 3e3, 123456.789, 1e15, 1e16, 1.5e16, 2.0 ** 60, 1e22,
              1e300, 9.999999999999999e15, 5e-324, 0.0001, 0.00012, 7.0e-4, 10 ** 18, -5, True,
              None] + [1.2345678901234567 * 10.0 ** e for e in range(-3, 300, 7)]
    try:
        return _orjson_dumps(sample).decode() == _dumps(sample)
    except TypeError:  # pragma: no cover
        return False


def _json_column(values: list[Any]) -> list[str]:
    """Each value's JSON text, as json.dumps writes it inside a document."""
    kinds = set(map(type, values))
    if kinds <= {str, _NONE}:  # each distinct string encoded once (devices, models repeat)
        memo = {v: "null" if v is None else _encode_str(v) for v in set(values)}
        return list(map(memo.__getitem__, values))
    if kinds <= _JSON_SCALARS:  # numbers, bools and nulls hold no comma: one dumps, then split
        texts = number_texts(values)
        return texts if texts is not None else _dumps(values)[1:-1].split(",") if values else []
    if kinds <= {RatioCI, _NONE}:
        r, lo, hi, method, within = _ratio_fields(values)
        texts = map(_RATIO_JSON.__mod__, zip(*map(_json_column, (r, lo, hi, method, within))))
        if _NONE not in kinds:
            return list(texts)
        return ["null" if v is None else next(texts) for v in values]
    return [_dumps(v.as_dict() if isinstance(v, RatioCI) else v) for v in values]


_RATIO_JSON = '{"ratio":%s,"ci_lo":%s,"ci_hi":%s,"method":%s,"within_spread":%s}'
_NO_CI = (None, None, None, None)


def _ratio_fields(values: list[Any], keep_none: bool = False) -> list[list[Any]]:
    """ratio, lo, hi, method and within_spread of a column of RatioCI (and None) as five columns:
    of the RatioCI cells only, or with None in all five where a cell is None (`keep_none`)."""
    cis = [_NO_CI if v is None else v for v in values] if keep_none else \
        [v for v in values if v is not None]
    if not cis:
        return [[] for _ in range(5)]
    r, lo, hi, method = map(list, zip(*cis))
    return [r, lo, hi, method, [None if a is None or b is None else a <= 1.0 <= b
                                for a, b in zip(lo, hi)]]


def _json_fits(t: Table) -> bool:
    """Whether `_table_json_parts` can write the table (else the general path: repeated column
    names, rows not as long as the columns)."""
    names = [c.name for c in t.columns]
    n = len(names)
    return bool(n) and len(set(names)) == n and (not t.n_rows or t.row_length() == n)


def _table_json_parts(t: Table) -> Iterator[str]:
    """One table of `tables_as_json` as JSON text, in pieces of BLOCK_ROWS rows."""
    yield _dumps({"name": t.name, "title": t.title, "notes": t.notes})[:-1] + ',"rows":['
    row = "{" + ",".join(_encode_str(c.name).replace("%", "%%") + ":%s" for c in t.columns) + "}"
    data = t.column_data()
    for start in range(0, t.n_rows, BLOCK_ROWS):
        columns = [_json_column(list(col[start:start + BLOCK_ROWS])) for col in data]
        yield ("," if start else "") + ",".join(map(row.__mod__, zip(*columns)))
    yield "]}"


def tables_as_json(tables: list[Table]) -> list[dict[str, Any]]:
    def cell(v: Any) -> Any:
        return v.as_dict() if isinstance(v, RatioCI) else v

    return [{"name": t.name, "title": t.title, "notes": t.notes,
             "rows": [{c.name: cell(v) for c, v in zip(t.columns, row)} for row in t.rows]}
            for t in tables]


def iter_json(tables: list[Table], extra: dict[str, Any] | None = None) -> Iterator[str]:
    """`render_json` in pieces (a long table in blocks of rows)."""
    extra = extra or {}
    if "tables" in extra or not all(_json_fits(t) for t in tables):
        doc = {"tables": tables_as_json(tables), **extra}
        yield json.dumps(doc, separators=(",", ":"), allow_nan=False) + "\n"
        return
    yield '{"tables":['
    for i, t in enumerate(tables):
        if i:
            yield ","
        yield from _table_json_parts(t)
    yield "]" + ("," + _dumps(extra)[1:] if extra else "}") + "\n"


def render_json(tables: list[Table], extra: dict[str, Any] | None = None) -> str:
    """The JSON document {"tables": tables_as_json(tables), **extra}, compact. Written a column at
    a time: the same text json.dumps gives, without building a dict per row."""
    return "".join(iter_json(tables, extra))


class _CsvQuoter:
    """CSV text of single fields, as `csv.writer` writes them inside a row of several fields
    (quoted where needed), each distinct string worked out once by csv itself."""

    def __init__(self) -> None:
        self.buf = io.StringIO()
        self.writer = csv.writer(self.buf, lineterminator="\n")
        self.memo: dict[str, str] = {}

    def __call__(self, s: str) -> str:
        q = self.memo.get(s)
        if q is None:
            self.buf.seek(0)
            self.buf.truncate()
            self.writer.writerow((printable(s, field=True), "x"))
            q = self.memo[s] = self.buf.getvalue()[:-3]  # less ",x\n"
        return q

    def column(self, values: list[Any]) -> list[str]:
        kinds = set(map(type, values))
        if kinds <= {str, _NONE}:
            memo = {v: "" if v is None else self(v) for v in set(values)}
            return list(map(memo.__getitem__, values))
        if kinds <= _NUMBERS:  # csv writes str(v): for a float its repr, as JSON does
            texts = number_texts(values)
            if texts is not None:
                return ["" if t == "null" else t for t in texts] if _NONE in kinds else texts
            return ["" if v is None else str(v) for v in values]
        return ["" if v is None else self(v if type(v) is str else str(v)) for v in values]


def _csv_header(t: Table) -> list[str]:
    header: list[str] = []
    for c in t.columns:
        name = printable(c.name, field=True)
        header += ([name, f"{name}_ci_lo", f"{name}_ci_hi", f"{name}_within_spread"]
                   if c.fmt == "ratio" else [name])
    return header


def iter_csv(tables: list[Table]) -> Iterator[str]:
    """`render_csv` in pieces (a long table in blocks of rows)."""
    quoter = _CsvQuoter()
    for i, t in enumerate(tables):
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        if len(tables) > 1:
            buf.write(("\n" if i else "") + f"# table: {t.name}\n")
        w.writerow(_csv_header(t))
        ratio_at = [i for i, c in enumerate(t.columns) if c.fmt == "ratio"]
        length, data = t.row_length(), t.column_data()
        if length is not None and length > 1 and (not ratio_at or ratio_at[-1] < length) and all(
                set(map(type, data[i])) <= {RatioCI, _NONE} for i in ratio_at):
            yield buf.getvalue()  # (a row of one empty field would be written as "")
            for start in range(0, t.n_rows, BLOCK_ROWS):
                columns = [list(col[start:start + BLOCK_ROWS]) for col in data]
                for i in reversed(ratio_at):  # each ratio column expands into four
                    r, lo, hi, _, within = _ratio_fields(columns[i], keep_none=True)
                    columns[i:i + 1] = [r, lo, hi, within]
                texts = [quoter.column(col) for col in columns]
                yield "\n".join(map(",".join, zip(*texts))) + "\n"
            continue
        for row in t.rows:
            out = list(row)
            for i in reversed(ratio_at):
                v = row[i]
                out[i:i + 1] = ([v.ratio, v.lo, v.hi, v.within_spread] if v is not None
                                else [None] * 4)
            w.writerow([printable(v, field=True) if type(v) is str else v for v in out])
        yield buf.getvalue()


def render_csv(tables: list[Table]) -> str:
    return "".join(iter_csv(tables))
