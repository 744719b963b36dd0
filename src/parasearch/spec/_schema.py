"""The problem-file schema (pydantic). Only the loader uses it; the rest of parasearch sees `Problem`."""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

from ..catalog.engines import DEFAULT_ENGINE
from ..cost.precision import KV_FORMATS, WEIGHT_FORMATS
from ..defaults import KV_CACHE


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, allow_inf_nan=False)


Degree = Annotated[int, Field(gt=0, le=100_000)]


class PrecisionIn(_Strict):
    weights: Optional[Literal[WEIGHT_FORMATS]] = None  # None: the model checkpoint's own format
    kv_cache: Literal[KV_FORMATS] = KV_CACHE


class PoolIn(_Strict):
    name: Optional[str] = None
    hardware: str
    nodes: PositiveInt = Field(1, le=100_000)
    gpus_per_node: PositiveInt = Field(8, le=1024)
    price_per_gpu_hour: Optional[PositiveFloat] = None


class ClusterIn(_Strict):
    hardware: Optional[str] = None
    nodes: PositiveInt = Field(1, le=100_000)
    gpus_per_node: PositiveInt = Field(8, le=1024)
    pools: Optional[list[PoolIn]] = Field(None, min_length=1, max_length=32)

    @model_validator(mode="after")
    def _one_form(self) -> "ClusterIn":
        if self.pools is None and self.hardware is None:
            raise ValueError("give either hardware (with nodes, gpus_per_node) or pools")
        if self.pools is not None and self.hardware is not None:
            raise ValueError("give either hardware or pools, not both")
        return self


class OutputIn(_Strict):
    """A distribution of output lengths: reasoning outputs are long and heavy-tailed."""

    distribution: Literal["fixed", "lognormal", "exponential"] = "fixed"
    mean: Optional[PositiveFloat] = None
    median: Optional[PositiveFloat] = None
    sigma: Optional[PositiveFloat] = Field(None, le=5)
    max: Optional[PositiveInt] = Field(None, le=100_000_000)

    @model_validator(mode="after")
    def _enough(self) -> "OutputIn":
        if self.distribution == "lognormal" and not (self.median and self.sigma) and not (self.mean and self.sigma):
            raise ValueError("a lognormal needs sigma and either median or mean")
        if self.distribution in ("fixed", "exponential") and not self.mean:
            raise ValueError(f"a {self.distribution} distribution needs mean")
        return self


class WorkloadIn(_Strict):
    input_tokens: Optional[PositiveInt] = Field(None, le=10_000_000)
    output_tokens: Optional[Union[Annotated[int, Field(gt=0, le=100_000_000)], OutputIn]] = None
    arrival_rate: Optional[PositiveFloat] = Field(None, description="requests per second, whole cluster")
    trace: Optional[str] = Field(None, min_length=1, max_length=4096,
                                 description="request trace (Azure or BurstGPT CSV, vLLM timed_trace JSONL)")
    time_scale: Optional[PositiveFloat] = Field(None, description="seconds per JSONL timestamp unit (0.001 for ms)")
    arrival: Optional[Literal["poisson", "gamma", "trace"]] = None
    rate: Optional[PositiveFloat] = Field(None, description="mean arrival rate, requests per second")
    cv: Optional[PositiveFloat] = Field(None, le=100, description="coefficient of variation of inter-arrival times")

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


class PercentileSloIn(_Strict):
    """Limits on statistics of one latency, in seconds; `mean` is what a plain number means."""

    mean: Optional[PositiveFloat] = None
    p50: Optional[PositiveFloat] = None
    p90: Optional[PositiveFloat] = None
    p95: Optional[PositiveFloat] = None
    p99: Optional[PositiveFloat] = None

    @model_validator(mode="after")
    def _some(self) -> "PercentileSloIn":
        if all(getattr(self, k) is None for k in type(self).model_fields):
            raise ValueError("give at least one of mean, p50, p90, p95, p99")
        return self


SloValue = Union[PositiveFloat, PercentileSloIn]


class SloIn(_Strict):
    ttft_s: Optional[SloValue] = None
    tpot_s: Optional[SloValue] = None
    e2e_s: Optional[SloValue] = None


class SearchIn(_Strict):
    tp: Optional[list[Degree]] = Field(None, min_length=1, max_length=64)
    pp: Optional[list[Degree]] = Field(None, min_length=1, max_length=64)
    ep: Optional[list[Degree]] = Field(None, min_length=1, max_length=64)
    dp: Optional[list[Degree]] = Field(None, min_length=1, max_length=256)
    attn_dp: Optional[list[bool]] = Field(None, min_length=1)
    max_batch: Optional[list[Annotated[int, Field(gt=0, le=1_000_000)]]] = Field(None, min_length=1, max_length=64)
    min_gpus: Optional[Degree] = None
    max_gpus: Optional[Degree] = None
    disaggregation: Optional[bool] = None


class EngineIn(_Strict):
    name: str = DEFAULT_ENGINE
    max_num_tokens: Optional[PositiveInt] = Field(None, le=10_000_000)
    kv_reservation: Optional[Literal["max", "mean"]] = None
    kv_free_fraction: Optional[PositiveFloat] = Field(None, le=1)
    kv_block_tokens: Optional[PositiveInt] = Field(None, le=1_000_000)
    runtime_reserve_bytes: Optional[float] = Field(None, ge=0, le=1e15)


class OptunaIn(_Strict):
    trials: PositiveInt = Field(300, le=1_000_000)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    sampler: Literal["nsga2", "tpe"] = "nsga2"
    population: PositiveInt = Field(40, ge=2, le=10_000)
    storage: Optional[str] = None
    study: Optional[str] = None


class IlpIn(_Strict):
    solver: Literal["cbc", "highs"] = "cbc"
    time_limit_s: PositiveFloat = 60.0
    objective: Literal["goodput", "gpus", "cost"] = "goodput"
    kv_transfer_bytes_per_s: Optional[PositiveFloat] = None
    pareto_points: PositiveInt = Field(6, le=50)


Objective = Literal["throughput_per_gpu", "tokens_per_user", "ttft", "cost", "goodput_per_gpu"]


class ProblemIn(_Strict):
    name: Optional[str] = None
    model: str
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
    price_per_gpu_hour: Optional[PositiveFloat] = None
    calibration: Optional[str] = None
