"""A deployment: what `parasearch deploy` writes, built from a search row or an ILP cluster plan.

Everything engine-neutral lives here: the servers and nodes (`topology`), the memory fraction
(`memory`), the checkpoint to load, the context length, the benchmark's load, the predictions
with their error bands, and plan.json. The engine modules only spell it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources

from ..catalog.engines import Engine
from ..cost.precision import Precision
from ..errors import ParasearchError
from . import topology as T
from .memory import MemoryFraction, memory_fraction

CONTEXT_ROUND = 256     # --max-model-len rounds up to this: random prompts re-tokenize a few tokens off
PROMPTS_PER_SLOT = 8    # bench.sh: requests = 8 x concurrency (at least 64), so the ramp-up and the
MIN_PROMPTS = 64        # drain of the last wave are a small part of the run


@dataclass
class Deployment:
    problem: object                  # spec.problem.Problem
    engine: Engine
    checkpoint: str                  # what the engine loads (launch.sh's $MODEL)
    precision: Precision
    input_tokens: int                # per request, fixed in the benchmark
    output_tokens: int
    max_model_len: int
    servers: list[T.Server]
    nodes: list[T.Node]
    memory: dict[int, MemoryFraction]  # by server index
    online_quantization: str | None  # weight format the engine quantizes a bf16 checkpoint to at load
    concurrency: int                 # requests in flight over the whole deployment (bench.sh)
    request_rate: float | None       # the plan's target arrival rate, if any
    kind: str                        # "placement" (a search row) or "cluster-plan" (ILP)
    profile_ref: str                 # the engine profile, as `load_engine` reads it back
    placement: dict                  # plan.json's placement (a Pareto row) or allocation
    predicted: dict
    notes: list[str] = field(default_factory=list)

    @property
    def model(self):
        return self.problem.model

    @property
    def disaggregated(self) -> bool:
        return any(s.role != "aggregated" for s in self.servers)

    @property
    def num_prompts(self) -> int:
        return max(PROMPTS_PER_SLOT * self.concurrency, MIN_PROMPTS)

    def engine_on(self, server: T.Server) -> Engine:
        return self.engine.on(server.hardware)


def catalog_repo(name: str) -> str | None:
    from ..catalog import _yaml

    res = resources.files("parasearch") / "model_catalog" / "repos.yaml"
    return _yaml.loads(res.read_text(), "model_catalog/repos.yaml").data.get(name)


def default_checkpoint(model) -> str:
    """The repository (or folder) the engine should load for a problem's model: a catalog model's
    Hugging Face repo, a repo id as given, or the folder of a config.json path."""
    from pathlib import Path

    if model.source.startswith("catalog:"):
        repo = catalog_repo(model.source.split(":", 1)[1])
        if repo:
            return repo
    if "/" in model.name and not Path(model.source).is_file():
        return model.name
    if Path(model.source).is_file():
        return str(Path(model.source).resolve().parent)
    return model.name


def model_reference(model) -> str:
    """What `load_model` reads the problem's model back from: the catalog name, the repo id, or
    the config.json path."""
    from pathlib import Path

    if model.source.startswith("catalog:"):
        return model.source.split(":", 1)[1]
    if "/" in model.name and not Path(model.name).exists():
        return model.name
    return str(Path(model.source).resolve()) if Path(model.source).is_file() else model.name


def online_quantization(model, weights: str, notes: list[str], framework: str) -> str | None:
    """The weight format to ask the engine to quantize to at load time, for a checkpoint stored
    in another format; engines quantize only bf16 checkpoints, and only to FP8, themselves."""
    native = model.native_weights
    if weights == native:
        return None
    if native == "bf16" and weights == "fp8" and framework in ("vllm", "sglang"):
        return "fp8"
    notes.append(f"the checkpoint holds {native} weights and the plan assumes {weights}: give --checkpoint a "
                 f"{weights} checkpoint of the same model (e.g. an NVIDIA ModelOpt or AWQ/GPTQ export)")
    return None


def context_length(input_tokens: float, output_reserved: float, kv_block_tokens: int = 1) -> int:
    """--max-model-len: prompt + reserved output, rounded up to whole KV blocks of the engine and to
    CONTEXT_ROUND tokens."""
    step = math.lcm(CONTEXT_ROUND, kv_block_tokens)
    return int(math.ceil((input_tokens + output_reserved) / step) * step)


def band_dict(band) -> dict:
    return {"error": band.error, "median_ratio": band.median_ratio, "rows": band.rows, "text": band.text}


def predicted(value: float | None, band) -> dict:
    """A prediction with its error band. Bands are measured on output throughput (published rows
    hold no latencies), so TTFT and TPOT carry the same relative band."""
    e = band.error if band else None
    rng = [value * (1 - e), value * (1 + e)] if e is not None and value is not None else None
    return {"value": value, "range": rng, "error_band": band_dict(band) if band else None}


def from_search(problem, result, pick: int, engine_module, checkpoint: str | None, profile_ref: str) -> Deployment:
    """The deployment of row `pick` (1-based) of the search's Pareto table."""
    from ..calibration.bands import for_placements
    from ..cost.layout import Layout
    from ..report.rows import result_dict

    rows = result_dict(problem, result)["pareto"]
    if not rows:
        raise ParasearchError("nothing to deploy: the search found no feasible placement")
    if not 1 <= pick <= len(rows):
        raise ParasearchError(f"--pick {pick}: the Pareto table has rows 1 to {len(rows)}")
    row = rows[pick - 1]
    pool = problem.pool
    shape = T.Shape(row["tp"], row["pp"], row["ep"], row["attn_dp"])
    group = T.Group("aggregated", pool.name, pool.hardware, pool.nodes, pool.gpus_per_node, shape, row["dp"],
                    row["max_batch"])
    band = for_placements(problem.engine, pool.hardware, problem.model,
                          Layout.of(shape.tp, shape.pp, shape.ep, row["dp"], shape.attn_dp))[0]
    placement = {k: row[k] for k in ("placement", "hardware", "tp", "pp", "dp", "ep", "attn_dp", "batch",
                                     "max_batch", "gpus")}
    preds = {"output_tokens_per_s": predicted(row["output_tokens_per_s"], band),
             "ttft_s": predicted(row["ttft_s"], band), "tpot_s": predicted(row["tpot_s"], band)}
    return _build(problem, [group], engine_module, checkpoint, profile_ref, "placement", placement, preds,
                  concurrency=row["batch"] * row["dp"], request_rate=None)


def from_plan(problem, plan_result, engine_module, checkpoint: str | None, profile_ref: str) -> Deployment:
    """The deployment of an ILP cluster plan: every allocation row, prefill and decode servers
    and a router when the plan disaggregates."""
    from ..calibration.bands import for_placements
    from ..cost.layout import Layout

    plan = plan_result.plan
    pools = {p.name: p for p in problem.pools}
    groups = []
    for r in plan["allocation"]:
        p = pools[r["pool"]]
        shape = T.Shape(r["tp"], r["pp"], r["ep"], r["attn_dp"])
        groups.append(T.Group(r["role"], p.name, p.hardware, p.nodes, p.gpus_per_node, shape, r["replicas"],
                              r.get("max_batch") or r.get("prompts_per_pass") or 1))
    serving = [r for r in plan["allocation"] if r["role"] != "prefill"]
    first = serving[0] if serving else plan["allocation"][0]
    hw = pools[first["pool"]].hardware
    band = for_placements(problem.engine, hw, problem.model,
                          Layout.of(first["tp"], first["pp"], first["ep"], 1, first["attn_dp"]))[0]
    worst = lambda key: max((r[key] for r in plan["allocation"] if r.get(key) is not None), default=None)  # noqa: E731
    preds = {"output_tokens_per_s": predicted(plan["served_output_tokens_per_s"], band),
             "ttft_s": predicted(worst("ttft_s"), band), "tpot_s": predicted(worst("tpot_s"), band),
             "requests_per_s": plan["served_rate"]}
    placement = {"allocation": plan["allocation"], "gpus": plan["gpus_used"],
                 "disaggregated": plan["disaggregation"]["chosen"], "objective": plan["objective"]}
    concurrency = sum(r["max_batch"] * r["replicas"] for r in serving)
    return _build(problem, groups, engine_module, checkpoint, profile_ref, "cluster-plan", placement, preds,
                  concurrency=max(concurrency, 1), request_rate=problem.workload.arrival_rate)


def _build(problem, groups, engine_module, checkpoint, profile_ref, kind, placement, preds, *, concurrency,
           request_rate) -> Deployment:
    model, prec, wl = problem.model, problem.precision, problem.workload
    notes: list[str] = []
    servers, nodes = T.lay_out(groups, lambda g: engine_module.per_server(g, model))
    memory = {s.index: memory_fraction(model, s.hardware, problem.engine, s.shape, prec.weights,
                                       engine_module.MEMORY_FLAG_MEANS) for s in servers}
    reserved = wl.output_tokens_reserved or wl.output_tokens
    if reserved != wl.output_tokens:
        notes.append(f"output lengths vary ({problem.output_description}); the benchmark uses their mean, "
                     f"{round(wl.output_tokens)} tokens, and --max-model-len covers {round(reserved)}")
    dep = Deployment(problem=problem, engine=problem.engine, checkpoint=checkpoint or default_checkpoint(model),
                     precision=prec, input_tokens=int(round(wl.input_tokens)), output_tokens=int(round(wl.output_tokens)),
                     max_model_len=context_length(wl.input_tokens, reserved, problem.engine.kv_block_tokens),
                     servers=servers, nodes=nodes,
                     memory=memory, online_quantization=online_quantization(model, prec.weights, notes,
                                                                            problem.engine.framework),
                     concurrency=int(concurrency), request_rate=request_rate, kind=kind,
                     profile_ref=profile_ref, placement=placement,
                     predicted=preds, notes=notes)
    return dep


def plan_json(dep: Deployment, server_args: list[dict], bench: dict, tool_version: str) -> dict:
    """plan.json: what was deployed and what the oracle predicts for it; `parasearch validate`
    reads it next to the benchmark's results."""
    p = dep.problem
    first = dep.servers[0]
    return {
        "parasearch": tool_version,
        "kind": dep.kind,
        "problem": p.name,
        "problem_file": p.file or None,
        "model": {"name": p.model.name, "ref": model_reference(p.model), "checkpoint": dep.checkpoint,
                  "moe": p.model.is_moe},
        "engine": {"name": dep.engine.name, "framework": dep.engine.framework, "version": dep.engine.version,
                   "profile": dep.profile_ref},
        "hardware": first.hardware.name,
        "cluster": [{"pool": q.name, "hardware": q.hardware.name, "nodes": q.nodes, "gpus_per_node": q.gpus_per_node}
                    for q in p.pools],
        "precision": {"weights": dep.precision.weights, "kv_cache": dep.precision.kv_cache,
                      "checkpoint_weights": p.model.native_weights, "online_quantization": dep.online_quantization},
        "workload": {"input_tokens": dep.input_tokens, "output_tokens": dep.output_tokens,
                     "max_model_len": dep.max_model_len, "arrival_rate": dep.request_rate},
        "placement": dep.placement,
        "predicted": dep.predicted,
        "servers": [{"index": s.index, "role": s.role, "pool": s.pool, "hardware": s.hardware.name,
                     "placement": s.shape.label(s.replicas), "replicas": s.replicas, "gpus": s.gpus,
                     "nodes": [sl.node for sl in s.slots], "port": s.port, "memory": dep.memory[s.index].as_dict(),
                     "args": args}
                    for s, args in zip(dep.servers, server_args)],
        "benchmark": bench,
        "notes": dep.notes,
    }
