"""The throughput-versus-interactivity picture: every feasible placement, the front highlighted."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..search.result import SearchResult
from ..space.label import placement_label


def pareto_plot(problem, result: SearchResult, path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = result.evaluation
    s, lay = ev.serving, ev.space.layout
    # The front's own axis: the whole cluster's throughput on a fixed cluster, else per GPU.
    y = s.output_tokens_per_s if ev.fleet_gpus else s.per_gpu
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    ok = ev.feasible
    if np.any(~ok & s.fits):
        ax.scatter(s.per_user[~ok & s.fits], y[~ok & s.fits], s=8, c="#cccccc", label="misses an SLO")
    ax.scatter(s.per_user[ok], y[ok], s=10, c="#7fa7d9", label="feasible")
    f = result.front
    order = f[np.argsort(s.per_user[f])]
    ax.plot(s.per_user[order], y[order], "-o", c="#d62728", ms=5, label="Pareto front")
    for i in order:
        ax.annotate(placement_label(int(lay.tp[i]), int(lay.pp[i]), int(lay.ep[i]), int(lay.dp[i]),
                                    bool(lay.attn_dp[i])) + f" b{int(s.batch[i])}",
                    (s.per_user[i], y[i]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("tokens/s per user (1 / TPOT)")
    ax.set_ylabel(f"output tokens/s, whole cluster ({ev.fleet_gpus} GPUs)" if ev.fleet_gpus
                  else "output tokens/s per GPU")
    ax.set_title(f"{problem.model.name}: {problem.workload.input_tokens:g} in / {problem.output_description} out",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
