"""Latency against load: P50/P90/P99 TTFT and TPOT as the arrival rate grows, per placement, with the
SLO limits, the knee and the goodput marked.

The knee is where the P99 TTFT curve bends most: Kneedle's point (Satopaa et al., "Finding a
'Kneedle' in a Haystack", ICDCS workshops 2011), the largest gap between the curve and the chord from
its first to its last point once both axes are scaled to [0, 1]. Past it, latency grows faster than
load; the goodput is where the first SLO breaks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

QS = (50, 90, 99)
STYLES = {50: ":", 90: "--", 99: "-"}


def knee(rates: np.ndarray, y: np.ndarray) -> float | None:
    ok = np.isfinite(y)
    x, y = np.asarray(rates)[ok], np.asarray(y)[ok]
    if x.size < 3 or np.ptp(y) <= 0:
        return None
    xn, yn = (x - x[0]) / np.ptp(x), (y - y[0]) / np.ptp(y)
    return float(x[int(np.argmax(xn - yn))])


def _panel(ax, rates, curve: dict, metric: str, color: str, label_prefix: str = "") -> None:
    for q in QS:
        y = curve.get(f"{metric}_p{q}_s")
        if y is None:
            continue
        ax.plot(rates, np.where(np.isfinite(y), y, np.nan), STYLES[q], color=color, lw=1.3,
                label=f"{label_prefix}P{q}")


def _marks(ax, targets, metric: str, goodput: float, knee_rate: float | None) -> None:
    for t in targets:
        if t.metric == metric and t.quantile is not None:
            ax.axhline(t.limit, color="#888888", lw=0.8, ls="-.")
            ax.annotate(f"{t.stat.upper()} SLO {t.limit:g} s", (ax.get_xlim()[1], t.limit), fontsize=7,
                        xytext=(-3, 3), textcoords="offset points", color="#555555", ha="right")
    if goodput > 0:
        ax.axvline(goodput, color="#2ca02c", lw=1.2)
        ax.annotate(f"goodput {goodput:.3g}", (goodput, ax.get_ylim()[1]), fontsize=7, rotation=90,
                    xytext=(-9, -4), textcoords="offset points", va="top", color="#2ca02c")
    if knee_rate:
        ax.axvline(knee_rate, color="#9467bd", lw=1.0, ls="--")
        ax.annotate(f"knee {knee_rate:.3g}", (knee_rate, ax.get_ylim()[1]), fontsize=7, rotation=90,
                    xytext=(-9, -4), textcoords="offset points", va="top", color="#9467bd")


def _style(ax, metric: str, title: str) -> None:
    ax.set_yscale("log")
    ax.set_xlabel("arrival rate (req/s)")
    ax.set_ylabel(f"{metric.upper()} (s)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left")


def load_panels(ax_ttft, ax_tpot, load, i: int, label: str, sim: dict | None = None) -> None:
    """The model's curves for placement i (and simulated points when given) on two axes."""
    top = load.capacity([i])[0] * 0.995
    rates = np.linspace(top / 40, top, 40)
    curve = load.curve(i, rates)
    k = knee(rates, curve.get("ttft_p99_s", np.full(rates.size, np.nan)))
    g = float(load.goodput[i])
    for ax, metric in ((ax_ttft, "ttft"), (ax_tpot, "tpot")):
        _panel(ax, rates, curve, metric, "#1f77b4", "model " if sim else "")
        if sim:
            for q in QS:
                ax.plot(sim["rate"], sim[f"{metric}_p{q}"], "o", color="#d62728", ms=3.5,
                        label=f"simulated P{q}" if q == 99 else None, alpha=0.5 + 0.25 * (q == 99))
        finite = [v for q in QS for v in np.asarray(curve.get(f"{metric}_p{q}_s", []))
                  if np.isfinite(v) and v > 0]
        if finite:
            ax.set_ylim(min(finite) * 0.7, max(finite) * 1.5)
        ax.set_xlim(0, top * 1.02)
        _marks(ax, load.targets, metric, g, k)
        _style(ax, metric, f"{label}: {metric.upper()}")


def simulated_load_plot(problem, load, i: int, res: dict, run, path: str | Path, points: int = 8) -> None:
    """`parasearch simulate --plot`: the model's curves and simulated percentiles at `points` rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = load.capacity([i])[0]
    rates = np.linspace(top / points, top * 0.97, points)
    sim = {"rate": rates}
    for metric in ("ttft", "tpot"):
        for q in QS:
            sim[f"{metric}_p{q}"] = []
    for r in rates:
        s = run(float(r), min(int(res["simulated"]["requests"]), 5000))
        for metric in ("ttft", "tpot"):
            for q in QS:
                sim[f"{metric}_p{q}"].append(s.percentile(metric, q / 100))
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.5), dpi=110)
    load_panels(ax[0], ax[1], load, i, res["placement"], sim)
    fig.suptitle(f"{problem.model.name}: {res['traffic']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def search_load_plot(problem, result, path: str | Path, picks: int = 3) -> None:
    """`parasearch search --plot` under traffic: the front (goodput per GPU against tokens/s per user)
    and the latency-against-load curves of up to `picks` placements spread along it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .rows import placement_label

    ev = result.evaluation
    load, lay = ev.load, ev.space.layout
    front = [int(i) for i in result.front if load.goodput[i] > 0]
    chosen = [front[j] for j in sorted(set(np.linspace(0, len(front) - 1, min(picks, len(front))).round().astype(int)))] \
        if front else []
    fig = plt.figure(figsize=(11, 3.6 * (1 + len(chosen))), dpi=110)
    grid = fig.add_gridspec(1 + len(chosen), 2)
    ax = fig.add_subplot(grid[0, :])
    gp = load.goodput / lay.gpus
    user = ev.metric("per_user")
    ok = ev.feasible
    ax.scatter(user[ok], gp[ok], s=10, c="#7fa7d9", label="meets the SLOs")
    if front:
        order = sorted(front, key=lambda j: user[j])
        ax.plot(user[order], gp[order], "-o", c="#d62728", ms=4, label="Pareto front")
    for j in chosen:
        ax.annotate(placement_label(int(lay.tp[j]), int(lay.pp[j]), int(lay.ep[j]), int(lay.dp[j]),
                                    bool(lay.attn_dp[j])) + f" b{int(ev.space.max_batch[j])}",
                    (user[j], gp[j]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("tokens/s per user at the goodput")
    ax.set_ylabel("goodput per GPU (req/s)")
    ax.set_title(f"{problem.model.name}: {problem.traffic_or_default().description}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    for row, j in enumerate(chosen, 1):
        label = placement_label(int(lay.tp[j]), int(lay.pp[j]), int(lay.ep[j]), int(lay.dp[j]),
                                bool(lay.attn_dp[j])) + f" b{int(ev.space.max_batch[j])}"
        load_panels(fig.add_subplot(grid[row, 0]), fig.add_subplot(grid[row, 1]), load, j, label)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
