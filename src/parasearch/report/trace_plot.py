"""A trace at a glance: arrivals over time, inter-arrival gaps with the fitted Gamma, the joint
distribution of input and output lengths, and the length distributions with their percentiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def trace_plot(trace, summary: dict, path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.special import gammaln

    fig, ax = plt.subplots(2, 2, figsize=(11, 8), dpi=110)
    t = trace.arrival_s
    span = max(trace.duration_s, 1e-9)
    width = span / min(max(len(trace) // 50, 10), 200)
    counts, edges = np.histogram(t, bins=np.arange(0.0, span + width, width))
    ax[0, 0].step(edges[:-1], counts / width, where="post", lw=1)
    ax[0, 0].axhline(summary["rate_rps"], color="#d62728", ls="--", lw=1, label=f"mean {summary['rate_rps']:.3g} req/s")
    ax[0, 0].set(xlabel="time (s)", ylabel="requests/s", title=f"arrivals ({width:.3g} s bins)")
    ax[0, 0].legend(fontsize=8)

    gaps = np.diff(t)
    ia = summary["interarrival"]
    hi = np.percentile(gaps, 99.5) if gaps.size else 1.0
    ax[0, 1].hist(gaps, bins=60, range=(0, hi), density=True, color="#7fa7d9", label="trace")
    k, theta = ia["gamma_shape"], ia["gamma_scale_s"]
    if np.isfinite(k) and k > 0 and theta > 0:
        x = np.linspace(hi / 600, hi, 300)
        pdf = np.exp((k - 1) * np.log(x) - x / theta - gammaln(k) - k * np.log(theta))
        ax[0, 1].plot(x, pdf, color="#d62728", lw=1.2, label=f"Gamma (shape {k:.2g}), CV {ia['cv']:.2f}")
    ax[0, 1].set(xlabel="inter-arrival time (s)", ylabel="density", title="burstiness")
    ax[0, 1].legend(fontsize=8)

    i, o = trace.input_tokens, trace.output_tokens
    bi = np.geomspace(max(i.min(), 1), max(i.max(), 2), 40)
    bo = np.geomspace(max(o.min(), 1), max(o.max(), 2), 40)
    h = ax[1, 0].hist2d(i, o, bins=[bi, bo], cmap="Blues", cmin=1)
    fig.colorbar(h[3], ax=ax[1, 0], label="requests")
    ax[1, 0].set(xscale="log", yscale="log", xlabel="input tokens", ylabel="output tokens",
                 title=f"joint lengths (correlation {summary['input_output_correlation']:+.2f})")

    for data, name, color in ((i, "input", "#1f77b4"), (o, "output", "#ff7f0e")):
        x = np.sort(data)
        ax[1, 1].plot(x, np.arange(1, x.size + 1) / x.size, color=color, label=name)
        for q in (50, 90, 99):
            v = summary[f"{name}_tokens"][f"p{q}"]
            ax[1, 1].plot([v], [q / 100], "o", color=color, ms=4)
            ax[1, 1].annotate(f"P{q} {v:,.0f}", (v, q / 100), fontsize=7, xytext=(4, -10), textcoords="offset points")
    ax[1, 1].set(xscale="log", xlabel="tokens", ylabel="share of requests", title="length distributions")
    ax[1, 1].legend(fontsize=8)
    for a in ax.flat:
        a.grid(alpha=0.3)
    fig.suptitle(f"{Path(trace.source).name}: {len(trace):,} requests", fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
