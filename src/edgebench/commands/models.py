"""`edgebench models`: the preset catalog with parameter counts and the memory that grows with context.

Columns: name, family, params (computed from the config on the meta device), max_ctx,
kv_bytes_per_token and state_bytes (from `edgebench.models.memory_model`, bf16, batch 1), backends,
source. `--json` prints a list of objects with the same keys. A value that cannot be computed here
(transformers missing, a remote-code preset) is null with a `<key>_why` reason.
"""
from __future__ import annotations

import argparse
import json

from edgebench.choices import FAMILIES

HELP = "list the model presets: family, parameters, context, KV bytes per token, SSM state bytes"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", choices=FAMILIES, help="only this family")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.add_argument("--tiny", action="store_true", help="include the tiny CPU test presets")


def rows(family: str | None = None, tiny: bool = False) -> list[dict]:
    from edgebench.models import memory_model
    from edgebench.errors import UserError
    from edgebench.models import catalog

    out = []
    for name in catalog.names(family):
        p = catalog.get(name)
        if p.tiny and not tiny:
            continue
        row = {"name": name, "family": p.family, "params": None, "max_ctx": p.max_ctx,
               "kv_bytes_per_token": memory_model.kv_bytes_per_token(p) if p.model_type != "hymba" else None,
               "state_bytes": memory_model.state_bytes(p) if p.model_type != "hymba" else None,
               "backends": list(p.backends), "source": p.source.get("hf") or p.source.get("note"),
               "published_params": p.published_params}
        if p.model_type == "hymba":
            why = "remote-code layout (meta tokens, cross-layer KV sharing) not modelled"
            row["kv_bytes_per_token_why"] = row["state_bytes_why"] = why
        try:
            row["params"] = catalog.counted_params(p)  # built: says whether this transformers can
        except UserError as exc:
            row["params_why"] = str(exc).split(";")[0].split(":")[0]
        out.append(row)
    return out


def main(args: argparse.Namespace) -> int:
    data = rows(args.family, args.tiny)
    if args.json:
        print(json.dumps(data, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(header_style="bold")
    for col, just in (("name", "left"), ("family", "left"), ("params", "right"), ("max_ctx", "right"),
                      ("KV/token", "right"), ("state", "right"), ("backends", "left"), ("source", "left")):
        table.add_column(col, justify=just, overflow="fold", no_wrap=col != "source")
    for r in data:
        table.add_row(r["name"], r["family"], _count(r["params"]), f"{r['max_ctx']:,}",
                      _bytes(r["kv_bytes_per_token"]), _bytes(r["state_bytes"]), ",".join(r["backends"]),
                      r["source"] or "")
    con = Console()
    con.print(table)
    con.print("KV/token and state: bf16, batch 1 (SSM recurrent state in fp32). "
              "Run one: edgebench run -m NAME; tiny CPU presets: --tiny")
    return 0


def _count(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}K"


def _bytes(n: int | None) -> str:
    if n is None:
        return "-"
    if n == 0:
        return "0"
    for unit, size in (("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
