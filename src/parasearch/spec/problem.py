"""Loading a problem file into a frozen `Problem`, with `file:line: field: message` errors."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import ValidationError

from .. import files
from ..catalog import _yaml
from ..catalog.engines import Engine, load_engine, resolve_name
from ..catalog.hardware import Hardware, load_hardware
from ..catalog.models import ModelSpec, load_model
from ..calibration.profile import load_profile
from ..cost.load import Target
from ..cost.precision import Precision
from ..cost.serving import Workload
from ..errors import ParasearchError, SpecError
from ..traffic.model import Traffic
from . import _schema as S


@dataclass(frozen=True)
class Pool:
    name: str
    hardware: Hardware
    nodes: int
    gpus_per_node: int
    price_per_gpu_hour: float | None = None

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node


@dataclass(frozen=True)
class Slo:
    ttft_s: float | None = None          # limits on the means
    tpot_s: float | None = None
    e2e_s: float | None = None
    percentiles: tuple[Target, ...] = ()  # limits on percentiles: {ttft_s: {p99: 2.0}}

    @property
    def targets(self) -> list[Target]:
        """Every limit, means and percentiles, as the load model checks them."""
        means = [Target(m, "mean", v) for m, v in (("ttft", self.ttft_s), ("tpot", self.tpot_s),
                                                     ("e2e", self.e2e_s)) if v]
        return means + list(self.percentiles)


@dataclass(frozen=True)
class SearchLimits:
    tp: tuple[int, ...] | None = None
    pp: tuple[int, ...] | None = None
    ep: tuple[int, ...] | None = None
    dp: tuple[int, ...] | None = None
    attn_dp: tuple[bool, ...] | None = None
    max_batch: tuple[int, ...] | None = None
    min_gpus: int | None = None
    max_gpus: int | None = None
    disaggregation: bool | None = None
    whole_replicas: bool = False    # every replica within one node or on whole nodes (what engines start)


@dataclass(frozen=True)
class OptunaOptions:
    trials: int = 300
    seed: int | None = None       # None: 0 for an in-memory study, a fresh one per worker on shared storage
    sampler: str = "nsga2"
    population: int = 40
    storage: str | None = None
    study: str | None = None


@dataclass(frozen=True)
class IlpOptions:
    solver: str = "highs"
    time_limit_s: float = 60.0
    objective: str = "goodput"
    kv_transfer_bytes_per_s: float | None = None
    pareto_points: int = 6


@dataclass(frozen=True)
class Problem:
    name: str
    model: ModelSpec
    precision: Precision
    pools: tuple[Pool, ...]
    workload: Workload
    slo: Slo
    engine: Engine
    objectives: tuple[str, ...] = ("throughput_per_gpu", "tokens_per_user")
    limits: SearchLimits = SearchLimits()
    method: str = "auto"
    optuna: OptunaOptions = OptunaOptions()
    ilp: IlpOptions = IlpOptions()
    price_per_gpu_hour: float | None = None
    output_description: str = ""
    file: str = ""
    declared_pools: bool = False
    ranking: str | None = None  # "cluster" or "per-gpu" to override `fixed_fleet`'s rule
    extras: dict = field(default_factory=dict, compare=False, hash=False)
    traffic: Traffic | None = field(default=None, compare=False, hash=False)

    @property
    def under_load(self) -> bool:
        """Whether latencies are percentiles under traffic: a trace, an arrival process or percentile
        SLOs were given (then the load model and goodput apply), rather than the steady state."""
        return self.traffic is not None and (self.traffic.declared or bool(self.slo.percentiles))

    def traffic_or_default(self) -> Traffic:
        """The problem's traffic, or Poisson arrivals with the workload's mean lengths."""
        if self.traffic is not None:
            return self.traffic
        wl = self.workload
        return Traffic(np.array([round(wl.input_tokens)]), np.array([max(round(wl.output_tokens), 1)]), 1.0,
                       "poisson", rate=wl.arrival_rate)

    @property
    def total_gpus(self) -> int:
        return sum(p.gpus for p in self.pools)

    @property
    def fixed_fleet(self) -> bool:
        """Whether the cluster is a given, so layouts are ranked by what the whole cluster delivers.
        With a target arrival rate, a GPU-count range or several pools, the number of GPUs is being
        chosen and throughput per GPU of the layout is the measure (unless `ranking` says otherwise)."""
        if self.ranking:
            return self.ranking == "cluster"
        lim = self.limits
        return not (self.workload.arrival_rate or lim.min_gpus or lim.max_gpus or len(self.pools) > 1)

    @property
    def pool(self) -> Pool:
        """The single pool of a one-pool problem."""
        return self.pools[0]


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def output_lengths(o: S.OutputIn | int) -> tuple[float, float, str]:
    """(mean generated tokens, tokens reserved per sequence, a description). Generation stops at
    `max`, so the mean is that of min(X, max); without a max the reservation is the 99th percentile."""
    if isinstance(o, int):
        return float(o), float(o), f"{o}"
    cap = float(o.max) if o.max else None
    if o.distribution == "fixed":
        mean = min(o.mean, cap) if cap else o.mean
        return mean, cap or mean, f"{mean:g}"
    if o.distribution == "exponential":
        m = o.mean
        mean = m * (1 - math.exp(-cap / m)) if cap else m
        reserve = cap or m * math.log(100.0)
        return mean, reserve, f"exponential(mean {m:g}{f', max {cap:g}' if cap else ''})"
    s = o.sigma
    mu = math.log(o.median) if o.median else math.log(o.mean) - s * s / 2
    full = math.exp(mu + s * s / 2)
    if cap:
        z = (math.log(cap) - mu) / s
        mean = full * _phi(z - s) + cap * (1 - _phi(z))
        reserve = cap
    else:
        mean, reserve = full, math.exp(mu + 2.3263 * s)
    return mean, reserve, f"lognormal(median {math.exp(mu):g}, sigma {s:g}{f', max {cap:g}' if cap else ''})"


def output_sample(o: S.OutputIn | int, k: int = 4096) -> np.ndarray:
    """k output lengths standing for the distribution (its quantiles at the midpoints of k strata),
    whole tokens, at least 1 and at most `max`."""
    if isinstance(o, int):
        return np.full(1, o, dtype=np.int64)
    u = (np.arange(k) + 0.5) / k
    cap = float(o.max) if o.max else np.inf
    if o.distribution == "fixed":
        x = np.full(1, o.mean)
    elif o.distribution == "exponential":
        x = -o.mean * np.log1p(-u)
    else:
        from scipy.special import ndtri

        mu = math.log(o.median) if o.median else math.log(o.mean) - o.sigma ** 2 / 2
        x = np.exp(mu + o.sigma * ndtri(u))
    return np.clip(np.round(x), 1, cap).astype(np.int64)


_TYPE_TAGS = ("int", "str", "bool", "float", "list", "dict")


def _is_tag(part: Any) -> bool:
    """pydantic's names for union members and validators, which are not keys of the file."""
    return isinstance(part, str) and (part[:1].isupper() or "-" in part or part in _TYPE_TAGS)


def _value_at(data: Any, path: tuple) -> Any:
    for k in path:
        if isinstance(data, dict) and k in data:
            data = data[k]
        elif isinstance(data, list) and isinstance(k, int) and k < len(data):
            data = data[k]
        else:
            return None
    return data


def _pick(doc: _yaml.Located, errors: list[dict]) -> dict:
    """Of a union's per-member errors, report the one for the member the user meant: the
    mapping form when they wrote a mapping, the scalar form otherwise."""
    def key(e: dict) -> int:
        loc = e["loc"]
        tag_at = next((i for i, p in enumerate(loc) if _is_tag(p)), len(loc))
        union_input = _value_at(doc.data, tuple(p for p in loc[:tag_at]))
        model_branch = any(_is_tag(p) and any(ch.isupper() for ch in p) for p in loc)
        return 0 if isinstance(union_input, dict) == model_branch else 1
    return sorted(errors, key=key)[0]


def _pydantic_error(doc: _yaml.Located, exc: ValidationError) -> SpecError:
    e = _pick(doc, exc.errors())
    path = tuple(p for p in e["loc"] if not _is_tag(p))
    line = doc.line_of(path)
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
        allowed = _allowed_keys(path[:-1])
        msg = f"unknown key; allowed: {', '.join(allowed)}" if allowed else "unknown key"
    elif e["type"] == "missing":
        msg = "required but missing"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    name = ".".join(str(p) for p in path) or None
    return SpecError(msg, file=doc.file, line=line, field=name)


def _allowed_keys(path: tuple) -> list[str]:
    """Keys the schema allows at `path` (a mapping)."""
    model: Any = S.ProblemIn
    for part in path:
        if isinstance(part, int):
            continue
        fld = model.model_fields.get(part)
        if fld is None:
            return []
        nxt = None
        stack = [fld.annotation]
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, S.BaseModel):
                nxt = t
                break
            stack.extend(getattr(t, "__args__", ()))
        if nxt is None:
            return []
        model = nxt
    return list(model.model_fields)


def _located(doc: _yaml.Located, path: tuple, exc: ParasearchError) -> SpecError:
    return SpecError(exc.message, file=doc.file, line=doc.line_of(path), field=".".join(map(str, path)), hint=exc.hint)


def problem_from_doc(doc: _yaml.Located, base_dir: Path | None = None, overrides: dict[str, Any] | None = None) -> Problem:
    if doc.data is None:
        raise SpecError("the file is empty; a problem names model, cluster and workload", file=doc.file, line=1)
    if not isinstance(doc.data, dict):
        raise SpecError("a problem file must be a mapping with keys model, cluster, workload (see problems/)",
                        file=doc.file, line=doc.line_of(()) or 1)
    try:
        p = S.ProblemIn.model_validate(doc.data)
    except ValidationError as exc:
        raise _pydantic_error(doc, exc) from None
    base_dir = base_dir or Path(".")

    def resolve(path: str) -> str:
        q = Path(path)
        return str(q if q.is_absolute() or files.exists(q) else base_dir / q)

    def model_ref(text: str) -> str:
        """A config.json path is read relative to the problem file; `org/name` is a path only if
        such a folder exists, else a Hugging Face repo id."""
        if text.endswith(".json") or ("/" in text and (Path(text).exists() or (base_dir / text).exists())):
            return resolve(text)
        return text

    try:
        model = load_model(model_ref(p.model))
    except ParasearchError as exc:
        raise _located(doc, ("model",), exc) from None
    profile = None
    if p.calibration:
        try:
            profile = load_profile(resolve(p.calibration))
        except ParasearchError as exc:
            raise _located(doc, ("calibration",), exc) from None

    def hardware(name: str, path: tuple) -> Hardware:
        try:
            hw = load_hardware(resolve(name) if name.endswith((".yaml", ".yml")) else name)
        except ParasearchError as exc:
            raise _located(doc, path, exc) from None
        if profile and profile[0] in (None, hw.name):
            hw = hw.with_efficiency(profile[1])
        return hw

    c = p.cluster
    if c.pools is None:
        pools = (Pool(c.hardware, hardware(c.hardware, ("cluster", "hardware")).in_nodes_of(c.gpus_per_node),
                      c.nodes, c.gpus_per_node, p.price_per_gpu_hour),)
    else:
        pools = tuple(Pool(q.name or f"{q.hardware}-{i}",
                           hardware(q.hardware, ("cluster", "pools", i, "hardware")).in_nodes_of(q.gpus_per_node),
                           q.nodes, q.gpus_per_node, q.price_per_gpu_hour or p.price_per_gpu_hour)
                      for i, q in enumerate(c.pools))
        names = [q.name for q in pools]
        if len(set(names)) != len(names):
            raise SpecError("pool names must be unique", file=doc.file, line=doc.line_of(("cluster", "pools")),
                            field="cluster.pools")
    eng_in = p.engine if isinstance(p.engine, S.EngineIn) else S.EngineIn(name=p.engine)
    try:
        engine = load_engine(resolve(eng_in.name) if eng_in.name.endswith((".yaml", ".yml")) else eng_in.name)
    except ParasearchError as exc:
        raise _located(doc, ("engine",), exc) from None
    engine = engine.with_overrides(**eng_in.model_dump(exclude={"name"}))
    notes = [n for n in (resolve_name(eng_in.name)[1],) if n]
    traffic, wl, desc = _traffic(doc, p.workload, base_dir)
    s = p.search
    limits = SearchLimits(*(tuple(v) if v is not None else None for v in (s.tp, s.pp, s.ep, s.dp, s.attn_dp,
                                                                          s.max_batch)),
                          s.min_gpus, s.max_gpus, s.disaggregation, bool(s.whole_replicas))
    if s.ep and any(v > 1 for v in s.ep) and not model.is_moe:
        raise SpecError(f"{model.name} is dense: expert parallelism needs a mixture-of-experts model",
                        file=doc.file, line=doc.line_of(("search", "ep")), field="search.ep")
    _check_limits(doc, s, model)
    _check_context(doc, model, wl, p.workload.output_tokens)
    if profile and profile[0] and all(q.hardware.name != profile[0] for q in pools):
        raise SpecError(f"the calibration profile was fitted for '{profile[0]}', which no pool uses",
                        file=doc.file, line=doc.line_of(("calibration",)), field="calibration")
    wants_cost = "cost" in p.objectives or p.ilp.objective == "cost"
    if wants_cost and any(q.price_per_gpu_hour is None for q in pools):
        where = ("objectives",) if "cost" in p.objectives else ("ilp", "objective")
        raise SpecError("the cost objective needs price_per_gpu_hour (at the top level or on every pool)",
                        file=doc.file, line=doc.line_of(where), field=".".join(where))
    opts = dict(p.optuna.model_dump())
    if opts["storage"] is not None:
        opts["storage"] = _file_storage(doc, opts["storage"], base_dir)
    opts.update({k: v for k, v in (overrides or {}).items() if k in opts and v is not None})
    return Problem(
        name=p.name or Path(doc.file).stem,
        model=model,
        precision=Precision(p.precision.weights or model.native_weights, p.precision.kv_cache),
        pools=pools,
        workload=wl,
        slo=_slo(p.slo),
        engine=engine,
        objectives=_objectives(doc, p, traffic),
        limits=limits,
        method=p.method,
        optuna=OptunaOptions(**opts),
        ilp=IlpOptions(**p.ilp.model_dump()),
        price_per_gpu_hour=p.price_per_gpu_hour,
        output_description=desc,
        file=doc.file,
        declared_pools=c.pools is not None,
        traffic=traffic,
        extras={"notes": notes, "lines": {k: doc.line_of(k) for k in (("search",), ("cluster",), ("workload",))}},
    )


def _objectives(doc: _yaml.Located, p: S.ProblemIn, traffic: Traffic) -> tuple[str, ...]:
    """The file's objectives; by default, under traffic, goodput per GPU against tokens/s per user."""
    loaded = traffic.declared or bool(_slo(p.slo).percentiles)
    if "objectives" not in p.model_fields_set and loaded:
        return ("goodput_per_gpu", "tokens_per_user")
    if "goodput_per_gpu" in p.objectives and not loaded:
        raise SpecError("goodput needs traffic: give a trace, an arrival process or percentile SLOs", file=doc.file,
                        line=doc.line_of(("objectives",)), field="objectives")
    return tuple(dict.fromkeys(p.objectives))


def _slo(slo: S.SloIn) -> Slo:
    means: dict[str, float | None] = {}
    pct: list[Target] = []
    for name in ("ttft", "tpot", "e2e"):
        v = getattr(slo, f"{name}_s")
        if isinstance(v, S.PercentileSloIn):
            means[name] = v.mean
            pct += [Target(name, k, getattr(v, k)) for k in ("p50", "p90", "p95", "p99") if getattr(v, k)]
        else:
            means[name] = v
    return Slo(means["ttft"], means["tpot"], means["e2e"], tuple(pct))


def _traffic(doc: _yaml.Located, w: S.WorkloadIn, base_dir: Path) -> tuple[Traffic, Workload, str]:
    """The traffic (lengths, arrival process, target rate) and the steady-state workload of its means."""
    from ..traffic.trace import read_trace

    rate = w.rate or w.arrival_rate
    declared = w.trace is not None or w.arrival is not None or w.rate is not None
    if w.trace is not None:
        path = Path(w.trace) if Path(w.trace).is_absolute() else base_dir / w.trace   # next to the problem file
        try:
            tr = read_trace(path, w.time_scale or 1.0)
        except SpecError as exc:
            if exc.line is None:   # the file as a whole: say so where the problem names it
                raise SpecError(f"{w.trace}: {exc.message}", file=doc.file, line=doc.line_of(("workload", "trace")),
                                field="workload.trace", hint=exc.hint) from None
            raise
        gaps = np.diff(tr.arrival_s)
        native_cv = float(np.std(gaps) / np.mean(gaps))
        arrival = w.arrival or "trace"
        cv = native_cv if arrival == "trace" else (w.cv or 1.0)
        inp, out = tr.input_tokens, tr.output_tokens
        desc = (f"trace {Path(w.trace).name} ({len(tr):,} requests, {np.mean(inp):,.0f} in / {np.mean(out):,.0f} out"
                f" on average, {tr.mean_rate:.3g} req/s, cv {native_cv:.2f})")
        from ..traffic.stats import dispersion

        traffic = Traffic(inp, out, cv, arrival, rate, tr, desc, declared,
                          dispersion(tr.arrival_s) if arrival == "trace" else None)
        reserve = float(np.percentile(out, 99))
        wl = Workload(float(np.mean(inp)), float(np.mean(out)), reserve, rate)
        return traffic, wl, desc
    mean_out, reserve_out, desc = output_lengths(w.output_tokens)
    out = output_sample(w.output_tokens)
    arrival = w.arrival or "poisson"
    cv = w.cv or 1.0
    how = f", {arrival} arrivals" + (f" (cv {cv:g})" if arrival == "gamma" else "") if declared else ""
    traffic = Traffic(np.full(out.size, w.input_tokens, dtype=np.int64), out, cv, arrival, rate, None,
                      f"{w.input_tokens} in / {desc} out{how}", declared)
    return traffic, Workload(float(w.input_tokens), mean_out, reserve_out, rate), desc


def _check_limits(doc: _yaml.Located, s: S.SearchIn, model: ModelSpec) -> None:
    """Each degree the file allows must be possible for the model on its own: a TP degree that
    does not divide the heads, more stages than layers or an EP degree that does not divide the
    experts can never be placed (the rules are in docs/placement.md)."""
    from ..space.rules import divisors, experts_problem, pp_problem

    heads = math.gcd(*(g.attention.num_heads for g in model.groups))

    def tp_problem(v: int) -> str | None:
        return None if heads % v == 0 else (f"tp={v} does not divide the {heads} attention heads "
                                            f"(allowed: {', '.join(map(str, divisors(heads)))})")

    # A dense model's ep > 1 was refused above, with its own message.
    checks = (("tp", tp_problem), ("pp", lambda v: pp_problem(model, v)), ("ep", lambda v: experts_problem(model, v)))
    for name, problem_of in checks:
        for i, v in enumerate(getattr(s, name) or ()):
            why = problem_of(v)
            if why:
                raise SpecError(why, file=doc.file, line=doc.line_of(("search", name, i)), field=f"search.{name}")


def _check_context(doc: _yaml.Located, model: ModelSpec, wl: Workload, out: Any) -> None:
    """A sequence (prompt and the output reserved for it) must fit the model's context window."""
    if not model.max_context:
        return
    need = wl.input_tokens + wl.reserved_output
    if need > model.max_context:
        capped = isinstance(out, S.OutputIn) and out.distribution != "fixed" and not out.max
        raise SpecError(f"input_tokens + output ({wl.input_tokens:,.0f} + {wl.reserved_output:,.0f} reserved) = "
                        f"{need:,.0f} tokens, beyond {model.name}'s maximum context of {model.max_context:,} tokens "
                        "(max_position_embeddings)", file=doc.file, line=doc.line_of(("workload",)), field="workload",
                        hint="set output_tokens.max" if capped else "shorten the prompt or the output")


_FILE_STORAGE = re.compile(r"^(sqlite:///)?([A-Za-z0-9._/-]+)$")


def _file_storage(doc: _yaml.Located, value: str, base_dir: Path) -> str:
    """A problem file may keep its study next to it, nothing else: a journal file or a sqlite
    database named by a relative path inside the file's folder. Where else to write, and any
    database server, are the command line's to choose (--storage or PARASEARCH_STORAGE), so that
    running someone's problem file cannot create files elsewhere or open connections."""
    where = dict(file=doc.file, line=doc.line_of(("optuna", "storage")), field="optuna.storage",
                 hint="give other storage on the command line: --storage or PARASEARCH_STORAGE")
    m = _FILE_STORAGE.match(value)
    if not m or Path(m.group(2)).is_absolute() or ".." in Path(m.group(2)).parts:
        raise SpecError("a problem file may only name a journal or sqlite file inside its own folder "
                        "(study.log or sqlite:///study.db)", **where)
    folder = base_dir.resolve()
    target = (folder / m.group(2)).resolve()
    if folder not in target.parents:  # a symbolic link out of the folder
        raise SpecError("the storage file resolves outside the problem file's folder", **where)
    return f"sqlite:///{target}" if m.group(1) else str(target)


def load_problem(source: str | Path | Mapping[str, Any], overrides: dict[str, Any] | None = None) -> Problem:
    """A validated `Problem` from a problem file (YAML, see `problems/`) or from a dict of the same
    form, e.g. `load_problem({"model": "llama-3.1-8b", "cluster": {"hardware": "h100-sxm"},
    "workload": {"input_tokens": 1024, "output_tokens": 1024}})`.

    A dict is checked exactly as a file is (it is written out as YAML and read back, within the same
    bounds); relative paths in it are read from the working directory. `overrides` replaces Optuna
    options (e.g. `{"trials": 200, "seed": 1}`; None leaves one as it is), as the CLI's flags do. Raises
    `SpecError` naming the field (and, for a file, the line) of anything invalid."""
    if isinstance(source, Mapping):
        return problem_from_doc(_yaml.loads(_dict_as_yaml(source), "<dict>"), Path("."), overrides)
    doc = _yaml.load(source)
    return problem_from_doc(doc, Path(source).parent, overrides)


def _dict_as_yaml(doc: Mapping[str, Any]) -> str:
    """YAML text of a problem given as Python values (tuples as lists, paths as text, numpy scalars
    as numbers); anything else YAML cannot hold is a SpecError."""
    import yaml

    def plain(v: Any, where: str) -> Any:
        if isinstance(v, Mapping):
            return {str(k): plain(x, f"{where}.{k}" if where else str(k)) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x, f"{where}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, np.generic):
            return v.item()
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        raise SpecError(f"{where or 'the problem'}: a {type(v).__name__} is not a problem value "
                        "(use numbers, text, lists and dicts)", file="<dict>")

    return yaml.safe_dump(plain(doc, ""), sort_keys=False, allow_unicode=True)


def problem_from_text(text: str, file: str = "<problem>", base_dir: Path | None = None) -> Problem:
    """A validated `Problem` from YAML text (as `load_problem` reads from a file)."""
    return problem_from_doc(_yaml.loads(text, file), base_dir)
