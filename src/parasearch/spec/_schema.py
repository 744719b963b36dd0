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
    input_tokens: PositiveInt = Field(..., le=10_000_000)
    output_tokens: Union[Annotated[int, Field(gt=0, le=100_000_000)], OutputIn]
    arrival_rate: Optional[PositiveFloat] = Field(None, description="requests per second, whole cluster")


class SloIn(_Strict):
    ttft_s: Optional[PositiveFloat] = None
    tpot_s: Optional[PositiveFloat] = None
    e2e_s: Optional[PositiveFloat] = None


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


Objective = Literal["throughput_per_gpu", "tokens_per_user", "ttft", "cost"]


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
