"""`parasearch catalog`: what models, hardware and engines are known."""

from __future__ import annotations

import typer

from ..errors import ParasearchError
from ._common import out, print_json

KINDS = ("models", "hardware", "engines")


def catalog(
    kind: str = typer.Argument("models", help="models, hardware or engines."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the shipped catalogs."""
    from rich.table import Table

    from ..catalog import engines, hardware, models
    from ..cost.layout import Layout
    from ..cost.memory import weight_bytes_per_gpu

    if kind not in KINDS:
        raise ParasearchError(f"unknown catalog '{kind}'", hint="allowed: " + ", ".join(KINDS))
    rows: list[dict] = []
    if kind == "models":
        for n in models.catalog_names():
            m = models.load_model(n)
            params = float(weight_bytes_per_gpu(m, Layout.of(), "bf16")[0]) / 2
            g = m.groups[-1]
            rows.append({"name": n, "architecture": m.extras.get("architecture"), "params_b": round(params / 1e9, 1),
                         "layers": m.num_layers, "hidden": m.hidden, "attention": g.attention.kind,
                         "heads": g.attention.num_heads, "kv_heads": g.attention.num_kv_heads,
                         "experts": m.num_experts, "top_k": g.ffn.top_k})
    elif kind == "hardware":
        for n in hardware.catalog_names():
            h = hardware.load_hardware(n)
            rows.append({"name": n, "display_name": h.display_name, "hbm_gb": round(h.hbm_bytes / 1e9, 1),
                         "hbm_tb_per_s": h.hbm_bytes_per_s / 1e12, "bf16_tflops": h.peak_flops("bf16") / 1e12,
                         "fp8_tflops": h.flops_per_s.get("fp8", 0) / 1e12, "scale_up_domain": h.scale_up_domain_gpus,
                         "efficiency": "default" if h.efficiency.source.startswith("DEFAULT") else "fitted"})
    else:
        for n in engines.catalog_names():
            e = engines.load_engine(n)
            rows.append({"name": n, "description": e.description})
    if as_json:
        print_json(rows)
        return
    t = Table(title=f"{kind} catalog", title_justify="left")
    for col in rows[0]:
        t.add_column(col)
    for r in rows:
        t.add_row(*(str(v) for v in r.values()))
    out.print(t)
