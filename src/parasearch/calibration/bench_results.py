"""Benchmark results of a deployment, read back next to the plan.json they measured.

Three formats, each as the benchmark itself writes it:
- `vllm bench serve --save-result` (vLLM 0.33.0, vllm/benchmarks/serve.py): one JSON object with
  `output_throughput`, `mean_ttft_ms`, `mean_tpot_ms`, `max_concurrency`, `completed`,
  `total_input_tokens`, `total_output_tokens`, plus the `--metadata` pairs bench.sh adds;
- `python -m sglang.benchmark.serving --output-file` (SGLang 0.5.23, sglang/benchmark/serving.py):
  JSON lines, one per run, with the same throughput and latency keys and `server_info.version`;
- `trtllm-bench throughput --report_json` (TensorRT-LLM, bench/dataclasses/reporting.py):
  `performance.system_output_throughput_tok_s`, `streaming_metrics.avg_ttft_ms`/`avg_tpot_ms`,
  `request_info.avg_input_length`/`avg_output_length`, `engine.version`; it measures one replica.

Each measurement becomes a published-style row (`PublishedRow`) with max_batch = the benchmark's
concurrency per replica, so validation and calibration reuse the published-throughput machinery.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from .. import files
from ..errors import ParasearchError, SpecError
from .published import PublishedRow

MAX_BYTES = 50_000_000
FORMATS = ("vllm bench serve", "sglang.benchmark.serving", "trtllm-bench")


@dataclass(frozen=True)
class Measurement:
    file: str
    line: int
    tool: str
    engine_version: str
    concurrency: int | None      # requests the benchmark kept in flight (None: unbounded)
    input_tokens: float          # mean per request
    output_tokens: float
    output_tokens_per_s: float
    ttft_s: float | None         # means over requests
    tpot_s: float | None
    completed: int
    replicas_measured: str       # "all", or "1" for trtllm-bench
    world: tuple = ()            # trtllm-bench: (tp_size, pp_size, ep_size) the run used
    engine: str = ""             # the engine the result says it measured ("" when it does not say)


def _num(d: dict, *path, required: bool = True) -> float | None:
    cur = d
    for k in path:
        cur = cur.get(k) if isinstance(cur, dict) else None
    if isinstance(cur, bool) or not isinstance(cur, (int, float)) or not math.isfinite(cur):
        if required:
            raise ValueError(".".join(path))
        return None
    return float(cur)


def kind_of(doc) -> str | None:
    """Which benchmark wrote `doc` (one parsed result object), or None."""
    if not isinstance(doc, dict):
        return None
    if isinstance(doc.get("performance"), dict) and "system_output_throughput_tok_s" in doc["performance"]:
        return "trtllm-bench"
    if "output_throughput" not in doc:
        return None
    if "model_id" in doc or "endpoint_type" in doc:
        return "vllm bench serve"
    if "dataset_name" in doc or "total_output_tokens_retokenized" in doc or "server_info" in doc:
        return "sglang.benchmark.serving"
    return None


def _measurement(doc: dict, kind: str, file: str, line: int) -> Measurement:
    ms = lambda *p: (v / 1e3 if (v := _num(doc, *p, required=False)) is not None else None)  # noqa: E731
    if kind == "trtllm-bench":
        return Measurement(file, line, kind, str((doc.get("engine") or {}).get("version") or ""), None,
                           _num(doc, "request_info", "avg_input_length"), _num(doc, "request_info", "avg_output_length"),
                           _num(doc, "performance", "system_output_throughput_tok_s"),
                           ms("streaming_metrics", "avg_ttft_ms"), ms("streaming_metrics", "avg_tpot_ms"),
                           int(_num(doc, "request_info", "num_requests")), "1",
                           tuple(doc.get("world_info", {}).get(k) for k in ("tp_size", "pp_size", "ep_size")),
                           "trtllm")
    completed = int(_num(doc, "completed"))
    if completed <= 0:
        raise ValueError("completed")
    conc = _num(doc, "max_concurrency", required=False)
    if kind == "vllm bench serve":
        version = str(doc.get("engine_version") or "")
    else:
        version = str((doc.get("server_info") or {}).get("version") or "") if isinstance(doc.get("server_info"), dict) else ""
    return Measurement(file, line, kind, version, int(conc) if conc else None,
                       _num(doc, "total_input_tokens") / completed, _num(doc, "total_output_tokens") / completed,
                       _num(doc, "output_throughput"), ms("mean_ttft_ms"), ms("mean_tpot_ms"), completed, "all",
                       engine=str(doc.get("engine") or "") if kind == "vllm bench serve" else "")


def read_results(path: str | Path) -> list[Measurement]:
    """The measurements in one result file (a JSON object, or JSON lines); [] when the file holds
    none of the three formats (vLLM also writes a .pytorch.json list next to its result)."""
    p = Path(path)
    text = files.read_text(p, limit=MAX_BYTES, what="a benchmark result")  # regular files only: a FIFO blocks
    try:
        docs = [(1, json.loads(text, parse_int=files.parse_int))]
    except json.JSONDecodeError:
        docs = []
        for i, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    docs.append((i, json.loads(line, parse_int=files.parse_int)))
                except json.JSONDecodeError as exc:
                    raise SpecError(f"not JSON or JSON lines: {exc.msg}", file=str(p), line=i) from None
                except (ValueError, RecursionError) as exc:
                    raise SpecError(f"not usable JSON: {exc}", file=str(p), line=i) from None
    except (ValueError, RecursionError) as exc:  # an absurd integer, or nesting past the parser's depth
        raise SpecError(f"not usable JSON: {exc}", file=str(p)) from None
    out = []
    for line, doc in docs:
        kind = kind_of(doc)
        if kind is None:
            continue
        try:
            out.append(_measurement(doc, kind, str(p), line))
        except ValueError as exc:
            raise SpecError(f"a {kind} result without a usable `{exc}`", file=str(p), line=line) from None
    return out


def find_plan(result: Path, root: Path | None = None) -> Path | None:
    """The plan.json next to a result, or in a folder above it (bench.sh writes results/ beside
    plan.json), not above `root`."""
    folder = result.parent.resolve()
    stop = root.resolve() if root else None
    for _ in range(3):
        if (folder / "plan.json").is_file():
            return folder / "plan.json"
        if folder == stop or folder.parent == folder:
            break
        folder = folder.parent
    return None


def read_plan(path: str | Path) -> dict:
    p = Path(path)
    try:
        plan = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read: {getattr(exc, 'strerror', None) or exc}", file=str(p)) from None
    except json.JSONDecodeError as exc:
        raise SpecError(f"not JSON: {exc.msg}", file=str(p), line=exc.lineno) from None
    if not isinstance(plan, dict) or "placement" not in plan or "engine" not in plan:
        raise SpecError("not a plan.json written by `parasearch deploy`", file=str(p))
    if plan.get("kind") != "placement":
        raise SpecError("a cluster plan (ILP allocation) is measured as a whole; validate compares one "
                        "placement's plan.json (deploy a search row)", file=str(p))
    return plan


def collect(paths: list[str], plan_path: str | None = None) -> list[tuple[Measurement, dict, str]]:
    """(measurement, its plan, the plan's path) for result files and folders of them (searched
    recursively); each result's plan is `plan_path` or the nearest plan.json above it."""
    files: list[tuple[Path, Path | None]] = []
    for text in paths:
        p = Path(text)
        if p.is_dir():
            files += [(f, p) for f in sorted(p.rglob("*.json*")) if f.name != "plan.json" and f.is_file()]
        elif p.is_file():
            files.append((p, None))
        else:
            raise ParasearchError(f"{text}: no such file or folder")
    out = []
    plans: dict[Path, dict] = {}
    for f, root in files:
        found = read_results(f)
        if not found:
            continue
        plan_file = Path(plan_path) if plan_path else find_plan(f, root)
        if plan_file is None:
            raise ParasearchError(f"{f}: no plan.json next to it or above it",
                                  hint="keep bench.sh's results/ folder beside its plan.json, or give --plan")
        if plan_file not in plans:
            plans[plan_file] = read_plan(plan_file)
        for m in found:
            _same_layout(m, plans[plan_file], plan_file)
        out += [(m, plans[plan_file], str(plan_file)) for m in found]
    if not out:
        raise ParasearchError("no benchmark result found in " + ", ".join(paths),
                              hint="results of `vllm bench serve --save-result`, `python -m sglang.benchmark.serving "
                                   "--output-file` or `trtllm-bench throughput --report_json`")
    return out


def _same_layout(m: Measurement, plan: dict, plan_file: Path) -> None:
    """A result that names its engine (trtllm-bench; vLLM's with bench.sh's metadata) must have
    measured the plan's, and a trtllm-bench report the parallel sizes the plan deploys."""
    if m.engine and m.engine != plan["engine"]["framework"]:
        raise SpecError(f"the result measured {m.engine}, the plan in {plan_file} deploys "
                        f"{plan['engine']['framework']}", file=m.file,
                        hint="give the plan.json this run measured with --plan")
    if not m.world or not plan.get("servers"):
        return
    args = plan["servers"][0].get("args", {})
    planned = (args.get("--tp_size"), args.get("--pp_size"), args.get("--ep_size"))
    for name, got, want in zip(("tp_size", "pp_size", "ep_size"), m.world, planned):
        if got is not None and want is not None and got != want:
            raise SpecError(f"the run used {name} {got}, the plan in {plan_file} deploys {want}",
                            file=m.file, hint="give the plan.json this run measured with --plan")


def model_ref(plan: dict) -> str:
    return plan["model"].get("ref") or plan["model"]["name"]


def to_row(m: Measurement, plan: dict) -> PublishedRow:
    """The measurement as a published-throughput row: the plan's layout and precision, the measured
    lengths, max_batch = the benchmark's concurrency per replica (at most the plan's cap, which
    the engine was launched with)."""
    pl = plan["placement"]
    one = m.replicas_measured == "1"
    dp = 1 if one else int(pl["dp"])
    conc = m.concurrency or (plan.get("benchmark") or {}).get("concurrency")
    per_replica = min(math.ceil(conc / dp), int(pl["max_batch"])) if conc else None
    gpus = int(pl["gpus"]) // int(pl["dp"]) * dp
    return PublishedRow(
        line=m.line, source=f"{m.tool} ({Path(m.file).name})", engine=plan["engine"]["framework"],
        engine_version=m.engine_version or str(plan["engine"].get("version", "")), engine_detail="",
        model=model_ref(plan), hardware=plan["hardware"], gpus=gpus, tp=int(pl["tp"]), pp=int(pl["pp"]),
        ep=int(pl["ep"]), dp=dp, attn_dp=bool(pl["attn_dp"]), weights=plan["precision"]["weights"],
        kv_cache=plan["precision"]["kv_cache"], mode="serving", input_tokens=m.input_tokens,
        output_tokens=m.output_tokens, max_batch=per_replica, measured=m.output_tokens_per_s,
        notes=f"plan {plan.get('problem', '')}", split="check")
