"""GPU and system descriptions from `hardware_catalog/*.yaml` (SI units, a source for every number)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ParasearchError, SpecError
from . import _yaml

PRECISIONS = ("bf16", "fp8", "fp4")


@dataclass(frozen=True)
class Efficiency:
    """What fraction of the datasheet a real kernel reaches, per kernel family.

    Fitted from kernel measurements by `parasearch calibrate` (see docs/calibration.md).
    """

    gemm_bw: float = 0.9              # fraction of hbm_bytes_per_s reached streaming GEMM operands
    gemm_flops: float = 0.75          # fraction of dense peak FLOP/s at large token counts
    gemm_m_half: float = 30.0         # token count at which compute efficiency is half its plateau
    gemm_blend_p: float = 6.0         # p-norm joining memory and compute time (1: sum, large: max)
    grouped_bw: float = 0.8           # the same for grouped (MoE expert) GEMMs
    grouped_flops: float = 0.65
    grouped_m_half: float = 30.0      # in tokens per expert
    grouped_blend_p: float = 6.0
    attn_decode_bw: float = 0.9       # fraction of hbm_bytes_per_s for decode attention KV reads
    attn_cta_bytes_per_s: float = 45e9  # KV streaming rate of one thread block (latency-bound)
    attn_prefill_flops: float = 0.65  # plateau fraction of dense peak for causal prefill attention
    attn_prefill_ctas_half: float = 170.0  # thread blocks at which prefill efficiency is half
    elementwise_bw: float = 0.9       # fraction of hbm_bytes_per_s for elementwise kernels (copy)
    kernel_launch_s: float = 2.0e-6   # device time of a tiny kernel inside a CUDA graph
    host_dispatch_s: float = 2.0e-5   # eager per-call host overhead seen in kernel timings (not used in graphs)
    # Plateau compute efficiency of FP8 and FP4 GEMMs, as fractions of those peaks; fitted on their
    # own (quantized kernels reach a different share of their peak than bf16). None: gemm_flops.
    gemm_flops_fp8: float | None = None
    gemm_flops_fp4: float | None = None
    # Their ramp: the token count at which compute efficiency is half its plateau (quantized
    # kernels tile M more coarsely, so small batches fill them less). None: gemm_m_half.
    gemm_m_half_fp8: float | None = None
    gemm_m_half_fp4: float | None = None
    source: str = "defaults"

    def gemm_flops_for(self, fmt: str) -> float:
        """Plateau efficiency of a GEMM whose math runs in `fmt` (bf16, fp8 or fp4)."""
        own = {"fp8": self.gemm_flops_fp8, "fp4": self.gemm_flops_fp4}.get(fmt)
        return own if own is not None else self.gemm_flops

    def gemm_m_half_for(self, fmt: str) -> float:
        own = {"fp8": self.gemm_m_half_fp8, "fp4": self.gemm_m_half_fp4}.get(fmt)
        return own if own is not None else self.gemm_m_half

    @property
    def is_default(self) -> bool:
        """Carried over from other GPUs rather than fitted to this one."""
        return self.source.startswith("DEFAULT")


@dataclass(frozen=True)
class Hardware:
    name: str
    display_name: str
    vendor: str
    hbm_bytes: float
    hbm_bytes_per_s: float
    flops_per_s: dict  # precision -> dense peak FLOP/s
    sm_count: int
    scale_up_domain_gpus: int
    scale_up_bytes_per_s: float       # per GPU, per direction
    scale_up_latency_s: float         # one collective's fixed cost inside the domain
    scale_out_bytes_per_s: float      # per GPU, per direction (its NIC share)
    scale_out_latency_s: float
    collective_efficiency: float      # fraction of link bandwidth collectives reach
    power_w: float
    efficiency: Efficiency
    scale_up_spans_nodes: bool = False  # the domain reaches across nodes (GB200 NVL72 trays)
    family: str = ""                  # architecture generation: hopper, blackwell, ampere, ada, cdna3
    # Fixed cost of a one-shot all-reduce kernel inside the domain (0: the fabric has none, as on
    # PCIe cards, where engines fall back to NCCL).
    scale_up_oneshot_latency_s: float = 0.0

    def math_format(self, precision: str) -> str:
        """The format GEMMs on `precision` weights compute in: that one, or the next wider one the
        chip has (FP8 checkpoints on an A100 run weight-only, with bf16 math)."""
        for p in PRECISIONS[PRECISIONS.index(precision)::-1]:
            if self.flops_per_s.get(p):
                return p
        raise ParasearchError(f"{self.name} has no peak FLOP/s for {precision}")

    def peak_flops(self, precision: str) -> float:
        """Dense peak for a precision; a precision the chip lacks runs at the next wider one."""
        return float(self.flops_per_s[self.math_format(precision)])

    def with_efficiency(self, eff: Efficiency) -> "Hardware":
        return replace(self, efficiency=eff)

    def in_nodes_of(self, gpus_per_node: int) -> "Hardware":
        """The same GPU in a cluster with `gpus_per_node`: a scale-up domain that does not span
        nodes cannot be larger than a node (4-GPU H100 servers have 4-GPU NVLink domains)."""
        if self.scale_up_spans_nodes or gpus_per_node >= self.scale_up_domain_gpus:
            return self
        return replace(self, scale_up_domain_gpus=gpus_per_node)


class HardwareError(ParasearchError):
    pass


# Physical bounds of each efficiency parameter: what a file may hold, and what `calibrate` may fit
# (a fit that lands on a bound is clamped there and says so). Bandwidth fractions may pass 1 a
# little (caches serve part of the traffic); compute fractions cannot. A kernel inside a CUDA graph
# still costs a few microseconds (the catalog's assumption, after NVIDIA's CUDA Graphs blog); a fit
# below half a microsecond means the measurements are not per step, so 0.5 us is the floor.
EFFICIENCY_BOUNDS: dict[str, tuple[float, float]] = {
    "gemm_bw": (0.05, 1.5), "gemm_flops": (0.05, 1.0), "gemm_m_half": (0.0, 1e6), "gemm_blend_p": (1.0, 100.0),
    "grouped_bw": (0.05, 1.5), "grouped_flops": (0.05, 1.0), "grouped_m_half": (0.0, 1e6),
    "grouped_blend_p": (1.0, 100.0), "attn_decode_bw": (0.05, 1.5), "attn_cta_bytes_per_s": (1e6, 1e13),
    "attn_prefill_flops": (0.05, 1.0), "attn_prefill_ctas_half": (0.0, 1e7), "elementwise_bw": (0.05, 1.5),
    "kernel_launch_s": (0.5e-6, 1e-3), "host_dispatch_s": (0.0, 1e-2),
}

def efficiency_bounds(name: str) -> tuple[float, float]:
    """The bounds of a parameter, or of the family it refines (`gemm_flops_fp8` is a `gemm_flops`)."""
    family = max((k for k in EFFICIENCY_BOUNDS if name.startswith(k)), key=len, default=None)
    return EFFICIENCY_BOUNDS[family] if family else (0.0, math.inf)


# What a real GPU or system has, with room to spare: a larger value is a typo (bytes for GB, say).
_HARDWARE_TOPS = {"hbm_bytes": 1e13, "hbm_bytes_per_s": 1e14, "flops_per_s": 1e18, "sm_count": 100_000,
                  "domain_gpus": 100_000, "bytes_per_s": 1e13, "latency_s": 1.0, "collective_efficiency": 1.0,
                  "power_w": 100_000}


def _num(doc: _yaml.Located, path: tuple, *, positive: bool = True, optional: bool = False,
         bounds: tuple[float, float] | None = None, integer: bool = False) -> Any:
    """The number at `path`: positive, or (positive=False) non-negative, within `bounds` (or the
    table of what real hardware has), and whole when `integer`."""
    cur: Any = doc.data
    for k in path:
        if not isinstance(cur, dict) or k not in cur:
            if optional:
                return None
            raise SpecError("missing", file=doc.file, line=doc.line_of(path), field=".".join(map(str, path)))
        cur = cur[k]
    if cur is None and optional:
        return None
    field = ".".join(map(str, path))
    if (isinstance(cur, bool) or not isinstance(cur, (int, float)) or not math.isfinite(cur) or cur < 0
            or (positive and cur == 0) or (integer and cur != int(cur))):
        kind = "integer" if integer else "number"
        raise SpecError(f"must be a {'positive' if positive else 'non-negative'} {kind}, got {str(cur)[:40]}",
                        file=doc.file, line=doc.line_of(path), field=field)
    last = str(path[-1])
    top = next((v for k, v in _HARDWARE_TOPS.items() if last.endswith(k)), None)
    lo, hi = bounds or (0.0, top if top is not None else math.inf)
    if not lo <= cur <= hi:
        raise SpecError(f"must be between {lo:g} and {hi:g}, got {cur:g}", file=doc.file, line=doc.line_of(path),
                        field=field)
    return float(cur)


def efficiency_from_mapping(doc: _yaml.Located, base: tuple = ("efficiency",)) -> Efficiency:
    data = doc.data
    for k in base:
        data = (data or {}).get(k) if isinstance(data, dict) else None
    if data is None:
        return Efficiency()
    if not isinstance(data, dict):
        raise SpecError("must be a mapping", file=doc.file, line=doc.line_of(base), field=".".join(base))
    known = {f.name for f in fields(Efficiency)}
    values: dict[str, Any] = {}
    for key in data:
        if key not in known:
            raise SpecError(f"unknown efficiency parameter; allowed: {', '.join(sorted(known))}",
                            file=doc.file, line=doc.line_of(base + (key,)), field=".".join(base + (key,)))
        # Ramp constants may be zero (no ramp); every efficiency and rate must be positive.
        values[key] = str(data[key])[:500] if key == "source" else _num(
            doc, base + (key,), positive="m_half" not in key, bounds=efficiency_bounds(key))
    if values.get("gemm_blend_p", 1.0) < 1 or values.get("grouped_blend_p", 1.0) < 1:
        raise SpecError("blend exponents must be >= 1", file=doc.file, line=doc.line_of(base), field=".".join(base))
    return Efficiency(**values)


def _from_doc(doc: _yaml.Located) -> Hardware:
    d = doc.data
    if not isinstance(d, dict):
        raise SpecError("a hardware file must be a mapping", file=doc.file, line=1)
    flops = {}
    for p in PRECISIONS:
        v = _num(doc, ("compute", f"{p}_flops_per_s"), optional=True)
        if v:
            flops[p] = v
    if "bf16" not in flops:
        raise SpecError("missing", file=doc.file, line=doc.line_of(("compute",)), field="compute.bf16_flops_per_s")
    return Hardware(
        name=str(d.get("name") or Path(doc.file).stem),
        display_name=str(d.get("display_name") or d.get("name")),
        vendor=str(d.get("vendor", "")),
        hbm_bytes=_num(doc, ("memory", "hbm_bytes")),
        hbm_bytes_per_s=_num(doc, ("memory", "hbm_bytes_per_s")),
        flops_per_s=flops,
        sm_count=int(_num(doc, ("compute", "sm_count"), integer=True)),
        scale_up_domain_gpus=int(_num(doc, ("scale_up", "domain_gpus"), integer=True)),
        scale_up_bytes_per_s=_num(doc, ("scale_up", "bytes_per_s")),
        scale_up_latency_s=_num(doc, ("scale_up", "latency_s")),
        scale_out_bytes_per_s=_num(doc, ("scale_out", "bytes_per_s")),
        scale_out_latency_s=_num(doc, ("scale_out", "latency_s")),
        collective_efficiency=_num(doc, ("collective_efficiency",)),
        power_w=_num(doc, ("power_w",)),
        efficiency=efficiency_from_mapping(doc),
        scale_up_spans_nodes=bool((d.get("scale_up") or {}).get("spans_nodes", False)),
        family=str(d.get("family") or ""),
        scale_up_oneshot_latency_s=_num(doc, ("scale_up", "oneshot_latency_s"), optional=True) or 0.0,
    )


def _catalog_root():
    """The shipped catalog: inside the installed wheel, or at the repository root of a source
    checkout (an editable install maps only `src/`)."""
    shipped = resources.files("parasearch") / "hardware_catalog"
    if shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parents[3] / "hardware_catalog"


def catalog_names() -> list[str]:
    root = _catalog_root()
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def load_hardware(name_or_path: str | Path) -> Hardware:
    """A catalog name (`h100-sxm`) or a path to a hardware YAML of the same form."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        return _from_doc(_yaml.load(text))
    key = text.lower()
    if key not in catalog_names():
        raise HardwareError(f"unknown hardware '{text}'", hint="catalog: " + ", ".join(catalog_names()))
    res = _catalog_root() / f"{key}.yaml"
    return _from_doc(_yaml.loads(res.read_text(), f"hardware_catalog/{key}.yaml"))
