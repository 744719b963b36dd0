"""Figures of a sweep: the reasoning cliff, the capacity trap, TP scaling, MoE strategies."""

from __future__ import annotations

from pathlib import Path

from ..study.sweep import WORKLOADS, SweepPoint

REASONING_AXIS = ["chat-1k/1k", "reasoning-1k/8k", "reasoning-1k/16k", "reasoning-1k/32k"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _models(points):
    out = []
    for p in points:
        if p.model not in out:
            out.append(p.model)
    return out


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")


def _styles(plt, names: list[str]) -> dict[str, dict]:
    """One colour, marker and line style per series, the same in every panel. Past ten series the
    ten-colour cycle would repeat, so twenty colours with markers and dashes keep them apart."""
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {n: {"color": cmap(i % cmap.N), "marker": _MARKERS[i % len(_MARKERS)],
                "linestyle": "-" if len(names) <= 10 or i % 2 == 0 else "--"} for i, n in enumerate(names)}


def _grid(plt, n: int, legend_panel: bool = False):
    """Panels for n plots; with `legend_panel`, one more cell to hold the legend off the data."""
    cells = n + (1 if legend_panel else 0)
    cols = min(cells, 3)
    rows = (cells + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), dpi=110, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _length_ticks(ax, lengths) -> None:
    """x ticks exactly at the measured output lengths, written 1k/8k/16k/32k."""
    ax.set_xticks(sorted(lengths))
    ax.set_xticklabels([f"{x / 1024:g}k" if x >= 1024 else f"{x:g}" for x in sorted(lengths)])
    ax.minorticks_off()


def _outside_legend(fig, ax, handles, labels, spare_ax=None) -> None:
    """The legend in a free panel when there is one, else to the right of the axes."""
    if spare_ax is not None:
        spare_ax.set_visible(True)
        spare_ax.axis("off")
        spare_ax.legend(handles, labels, loc="center", fontsize=7, ncol=2 if len(labels) > 12 else 1,
                        frameon=False)
    else:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False)


def _by_output(points, model, metric, axis_wls):
    series: dict[str, tuple[list, list]] = {}
    for w in axis_wls:
        for p in points:
            if p.model == model and p.workload == w and p.fits:
                xs, ys = series.setdefault(p.strategy, ([], []))
                xs.append(p.output_tokens)
                ys.append(getattr(p, metric))
    return series


def _per_output_figure(points, path, metric, ylabel, title, log=False):
    plt = _plt()
    models = _models(points)
    axis = [w for w in REASONING_AXIS if any(p.workload == w for p in points)]
    series = {m: _by_output(points, m, metric, axis) for m in models}
    names = []
    for m in models:
        names += [n for n in series[m] if n not in names]
    style = _styles(plt, names)
    spare = len(models) % 3 != 0 and len(models) > 1  # a free cell in the grid holds the legend
    fig, axes = _grid(plt, len(models), legend_panel=spare)
    handles = {}
    for ax, m in zip(axes, models):
        for name, (xs, ys) in series[m].items():
            (line,) = ax.plot(xs, ys, ms=4, label=name, **style[name])
            handles.setdefault(name, line)
        held = [(p.output_tokens, getattr(p, metric)) for p in points
                if p.model == m and p.fits and p.cap_binds and p.workload in axis]
        if held:  # points the batch cap, not the KV cache, holds down
            ax.scatter(*zip(*held), marker="x", s=24, color="black", zorder=5, linewidths=1)
        ax.set_xscale("log", base=2)
        _length_ticks(ax, {WORKLOADS[w][1] for w in axis})
        if log:
            ax.set_yscale("log")
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("output tokens (1k input)", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(alpha=0.3)
    ordered = [n for n in names if n in handles]
    _outside_legend(fig, axes[len(models) - 1], [handles[n] for n in ordered], ordered,
                    axes[len(models)] if spare else None)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def cap_note(points) -> str:
    """A title's note when the sweep's batch cap, not the KV cache, holds some points down."""
    cap = next((p.batch_cap for p in points if p.cap_binds), None)
    return "" if cap is None else f"\n(flat where the {cap:,}-sequence batch cap binds instead: marked x)"


def reasoning_cliff(points, path):
    _per_output_figure(points, path, "tokens_per_s_per_gpu", "output tok/s per GPU",
                       "The reasoning cliff: throughput per GPU as outputs grow" + cap_note(points))


def capacity_trap(points, path):
    _per_output_figure(points, path, "concurrency_per_gpu", "sequences in flight per GPU",
                       "The capacity trap: concurrency the KV cache allows" + cap_note(points), log=True)


def tp_scaling(points, path):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    colours = plt.get_cmap("tab10")
    degrees = set()
    for k, m in enumerate(_models(points)):
        for w, style in (("chat-1k/1k", "-o"), ("reasoning-1k/16k", "--s")):
            pts = sorted([p for p in points if p.model == m and p.workload == w and p.fits and p.kind in ("dp", "tp")],
                         key=lambda p: p.tp)
            if pts:  # one colour per model; solid chat, dashed reasoning
                ax.plot([p.tp for p in pts], [p.tokens_per_s_per_gpu for p in pts], style, ms=4,
                        color=colours(k % 10), label=f"{pts[0].size} {w.split('-')[0]}")
                degrees.update(p.tp for p in pts)
    ax.set_xscale("log", base=2)
    if degrees:
        ax.set_xticks(sorted(degrees))
        ax.set_xticklabels([str(d) for d in sorted(degrees)])
        ax.minorticks_off()
    ax.set_yscale("log")
    ax.set_xlabel("tensor-parallel degree (DP fills the cluster)")
    ax.set_ylabel("output tok/s per GPU")
    ax.set_title("TP scaling by model size: where TP overtakes DP", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def moe_strategies(points, path):
    plt = _plt()
    moe = [p for p in points if "deepseek" in p.model or p.ep > 1]
    models = _models(moe)
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    if models:
        m = models[0]
        wls = [w for w in WORKLOADS if any(p.workload == w for p in moe if p.model == m)]
        strats = []
        for p in moe:
            if p.model == m and p.fits and p.strategy not in strats:
                strats.append(p.strategy)
        width = 0.8 / max(len(wls), 1)
        for j, w in enumerate(wls):
            vals = []
            for s in strats:
                p = next((q for q in moe if q.model == m and q.workload == w and q.strategy == s), None)
                vals.append(p.tokens_per_s_per_gpu if p and p.fits else 0.0)
            ax.bar([i + j * width for i in range(len(strats))], vals, width, label=w)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(strats))])
        ax.set_xticklabels(strats, rotation=30, ha="right", fontsize=7)
        ax.set_title(f"{m}: MoE strategies side by side", fontsize=10)
    ax.set_ylabel("output tok/s per GPU")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


FIGURES = {
    "reasoning_cliff.png": reasoning_cliff,
    "capacity_trap.png": capacity_trap,
    "tp_scaling.png": tp_scaling,
    "moe_strategies.png": moe_strategies,
}


def _has_moe(points: list[SweepPoint]) -> bool:
    return any(p.kind in ("ep", "ep+adp") for p in points)


# A figure is drawn only when the sweep holds something for it: no empty MoE figure without an MoE model.
WANTS = {"moe_strategies.png": _has_moe}


def write_figures(points: list[SweepPoint], folder: str | Path) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, fn in FIGURES.items():
        if not WANTS.get(name, bool)(points):
            continue
        fn(points, folder / name)
        out.append(folder / name)
    return out
