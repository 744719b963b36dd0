"""The problem-file schema (pydantic). Only the loader uses it; the rest of parasearch sees `Problem`."""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StringConstraints, model_validator

from ..catalog.engines import DEFAULT_ENGINE
from ..cost.precision import KV_FORMATS, WEIGHT_FORMATS
from ..defaults import KV_CACHE


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, allow_inf_nan=False)


def _whole(v):
    """Counts are integers: `true` is not 1 and "8" is not 8; 1e6 (a float YAML reads from a
    number written with an exponent) is 1,000,000 when it is whole."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"must be an integer, got {str(v)[:40]}")
    if isinstance(v, float):
        if not math.isfinite(v) or not v.is_integer():
            raise ValueError(f"must be an integer, got {v:g}")
        v = int(v)
    return v


def _real(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"must be a number, got {str(v)[:40]}")
    if not math.isfinite(v):
        raise ValueError(f"must be a finite number, got {v}")
    return float(v)


def Count(le: int, ge: int = 1):  # noqa: N802 (a type factory)
    return Annotated[int, BeforeValidator(_whole), Field(ge=ge, le=le)]


def Real(le: float, gt: float = 0.0, ge: float | None = None):  # noqa: N802
    return Annotated[float, BeforeValidator(_real), Field(le=le, **({"ge": ge} if ge is not None else {"gt": gt}))]


# Names are shown in tables and launch commands: printable, short.
Name = Annotated[str, StringConstraints(max_length=128, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")]
PathName = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
STUDY_NAME_RULE = "a study name is 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit"


def _study(v):
    if not isinstance(v, str) or not STUDY_NAME.match(v):
        raise ValueError(f"{STUDY_NAME_RULE}; got {str(v)[:40]!r}")
    return v


# Study names reach databases, journal files and shells (a name holding `$(...)` once did).
StudyName = Annotated[str, BeforeValidator(_study)]

# The bounds below are what real clusters and workloads have, with room to spare; a larger value
# is a typo (or an attack) and would only make the search slow or the arithmetic overflow.
MAX_NODES = 100_000
MAX_GPUS_PER_NODE = 1024
MAX_CLUSTER_GPUS = 1_000_000     # the largest training clusters hold a few hundred thousand GPUs
MAX_TOKENS = 100_000_000         # longer than any model's context
MAX_RATE = 1e7                   # requests per second, whole cluster
MAX_PRICE = 1e4                  # dollars per GPU-hour
MAX_SECONDS = 1e6                # SLOs: about eleven days
MIN_SECONDS = 1e-6               # below a microsecond no SLO is meant
Degree = Count(100_000)


class PrecisionIn(_Strict):
    weights: Optional[Literal[WEIGHT_FORMATS]] = None  # None: the model checkpoint's own format
    kv_cache: Literal[KV_FORMATS] = KV_CACHE


class PoolIn(_Strict):
    name: Optional[Name] = None
    hardware: PathName
    nodes: Count(MAX_NODES) = 1
    gpus_per_node: Count(MAX_GPUS_PER_NODE) = 8
    price_per_gpu_hour: Optional[Real(MAX_PRICE)] = None


class ClusterIn(_Strict):
    hardware: Optional[PathName] = None
    nodes: Count(MAX_NODES) = 1
    gpus_per_node: Count(MAX_GPUS_PER_NODE) = 8
    pools: Optional[list[PoolIn]] = Field(None, min_length=1, max_length=32)

    @model_validator(mode="after")
    def _one_form(self) -> "ClusterIn":
        if self.pools is None and self.hardware is None:
            raise ValueError("give either hardware (with nodes, gpus_per_node) or pools")
        if self.pools is not None and self.hardware is not None:
            raise ValueError("give either hardware or pools, not both")
        total = (sum(p.nodes * p.gpus_per_node for p in self.pools) if self.pools
                 else self.nodes * self.gpus_per_node)
        if total > MAX_CLUSTER_GPUS:
            raise ValueError(f"{total:,} GPUs is more than any cluster has (at most {MAX_CLUSTER_GPUS:,})")
        return self


class OutputIn(_Strict):
    """A distribution of output lengths: reasoning outputs are long and heavy-tailed."""

    distribution: Literal["fixed", "lognormal", "exponential"] = "fixed"
    mean: Optional[Real(MAX_TOKENS, ge=1)] = None
    median: Optional[Real(MAX_TOKENS, ge=1)] = None
    sigma: Optional[Real(5)] = None
    max: Optional[Count(MAX_TOKENS)] = None

    @model_validator(mode="after")
    def _enough(self) -> "OutputIn":
        if self.distribution == "lognormal" and not (self.median and self.sigma) and not (self.mean and self.sigma):
            raise ValueError("a lognormal needs sigma and either median or mean")
        if self.distribution in ("fixed", "exponential") and not self.mean:
            raise ValueError(f"a {self.distribution} distribution needs mean")
        return self


class WorkloadIn(_Strict):
    input_tokens: Optional[Count(MAX_TOKENS)] = None
    output_tokens: Optional[Union[Count(MAX_TOKENS), OutputIn]] = None
    arrival_rate: Optional[Real(MAX_RATE)] = Field(None, description="requests per second, whole cluster")
    trace: Optional[PathName] = Field(None, description="request trace (Azure or BurstGPT CSV, vLLM timed_trace JSONL)")
    time_scale: Optional[Real(1e6)] = Field(None, description="seconds per JSONL timestamp unit (0.001 for ms)")
    arrival: Optional[Literal["poisson", "gamma", "trace"]] = None
    rate: Optional[Real(MAX_RATE)] = Field(None, description="mean arrival rate, requests per second")
    cv: Optional[Real(100)] = Field(None, description="coefficient of variation of inter-arrival times")

    @model_validator(mode="after")
    def _consistent(self) -> "WorkloadIn":
        if self.trace is not None:
            if self.input_tokens is not None or self.output_tokens is not None:
                raise ValueError("the trace gives the input and output lengths; drop input_tokens/output_tokens")
        else:
            if self.input_tokens is None or self.output_tokens is None:
                raise ValueError("give input_tokens and output_tokens, or a trace")
            if self.arrival == "trace":
                raise ValueError("arrival: trace needs a trace file")
            if self.time_scale is not None:
                raise ValueError("time_scale applies to a trace file")
        if self.rate is not None and self.arrival_rate is not None:
            raise ValueError("give rate or arrival_rate, not both (they are the same mean rate)")
        if self.arrival == "gamma" and self.cv is None:
            raise ValueError("a gamma arrival process needs cv (1 is Poisson, 2 is bursty)")
        if self.arrival == "poisson" and self.cv is not None and self.cv != 1:
            raise ValueError("Poisson arrivals have cv 1; use arrival: gamma for another cv")
        if self.cv is not None and self.arrival is None:
            raise ValueError("cv describes an arrival process: add arrival: gamma")
        return self


Seconds = Optional[Real(MAX_SECONDS, ge=MIN_SECONDS)]


class PercentileSloIn(_Strict):
    """Limits on statistics of one latency, in seconds; `mean` is what a plain number means."""

    mean: Seconds = None
    p50: Seconds = None
    p90: Seconds = None
    p95: Seconds = None
    p99: Seconds = None

    @model_validator(mode="after")
    def _some(self) -> "PercentileSloIn":
        if all(getattr(self, k) is None for k in type(self).model_fields):
            raise ValueError("give at least one of mean, p50, p90, p95, p99")
        return self


SloValue = Union[Real(MAX_SECONDS, ge=MIN_SECONDS), PercentileSloIn]


class SloIn(_Strict):
    ttft_s: Optional[SloValue] = None
    tpot_s: Optional[SloValue] = None
    e2e_s: Optional[SloValue] = None


class SearchIn(_Strict):
    tp: Optional[list[Degree]] = Field(None, min_length=1, max_length=64)
    pp: Optional[list[Degree]] = Field(None, min_length=1, max_length=64)
    ep: Optional[list[Degree]] = Field(None, min_length=1, max_length=64)
    dp: Optional[list[Degree]] = Field(None, min_length=1, max_length=256)
    attn_dp: Optional[list[StrictBool]] = Field(None, min_length=1, max_length=2)
    max_batch: Optional[list[Count(1_000_000)]] = Field(None, min_length=1, max_length=64)
    min_gpus: Optional[Count(MAX_CLUSTER_GPUS)] = None
    max_gpus: Optional[Count(MAX_CLUSTER_GPUS)] = None
    disaggregation: Optional[StrictBool] = None
    whole_replicas: Optional[StrictBool] = None

    @model_validator(mode="after")
    def _gpu_range(self) -> "SearchIn":
        if self.min_gpus and self.max_gpus and self.min_gpus > self.max_gpus:
            raise ValueError(f"min_gpus ({self.min_gpus}) is larger than max_gpus ({self.max_gpus})")
        return self


class EngineIn(_Strict):
    name: PathName = DEFAULT_ENGINE
    max_num_tokens: Optional[Count(10_000_000)] = None
    kv_reservation: Optional[Literal["max", "mean"]] = None
    kv_free_fraction: Optional[Real(1)] = None
    kv_block_tokens: Optional[Count(1_000_000)] = None
    runtime_reserve_bytes: Optional[Real(1e13, ge=0)] = None


SEED_MAX = 2**32 - 1  # numpy's seed range, which the samplers use


class OptunaIn(_Strict):
    trials: Count(1_000_000) = 300
    seed: Optional[Count(SEED_MAX, ge=0)] = None
    sampler: Literal["nsga2", "tpe"] = "nsga2"
    population: Count(10_000, ge=2) = 40
    storage: Optional[PathName] = None
    study: Optional[StudyName] = None


class IlpIn(_Strict):
    solver: Literal["cbc", "highs"] = "highs"
    time_limit_s: Real(86_400) = 60.0
    objective: Literal["goodput", "gpus", "cost"] = "goodput"
    kv_transfer_bytes_per_s: Optional[Real(1e14)] = None
    pareto_points: Count(50) = 6


Objective = Literal["throughput_per_gpu", "tokens_per_user", "ttft", "cost", "goodput_per_gpu"]


class ProblemIn(_Strict):
    name: Optional[Name] = None
    model: PathName
    precision: PrecisionIn = PrecisionIn()
    cluster: ClusterIn
    workload: WorkloadIn
    slo: SloIn = SloIn()
    objectives: list[Objective] = Field(default_factory=lambda: ["throughput_per_gpu", "tokens_per_user"],
                                        min_length=1, max_length=4)
    search: SearchIn = SearchIn()
    engine: Union[str, EngineIn] = DEFAULT_ENGINE
    method: Literal["auto", "exhaustive", "optuna", "ilp"] = "auto"
    optuna: OptunaIn = OptunaIn()
    ilp: IlpIn = IlpIn()
    price_per_gpu_hour: Optional[Real(MAX_PRICE)] = None
    calibration: Optional[PathName] = None
