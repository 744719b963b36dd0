"""Sweep figures: series told apart past ten, ticks at the measured lengths, legends off the data,
and no MoE figure without an MoE model."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from parasearch.catalog.engines import load_engine  # noqa: E402
from parasearch.catalog.hardware import load_hardware  # noqa: E402
from parasearch.report import sweep_plots as sp  # noqa: E402
from parasearch.study.sweep import run_sweep  # noqa: E402

H100, REF = load_hardware("h100-sxm"), load_engine("reference")


@pytest.mark.parametrize("n", [4, 10, 14, 20])
def test_every_series_has_its_own_look(n):
    styles = sp._styles(plt, [f"s{i}" for i in range(n)])
    looks = {(tuple(s["color"]), s["marker"], s["linestyle"]) for s in styles.values()}
    colours = {tuple(s["color"]) for s in styles.values()}
    assert len(looks) == n and len(colours) == n


def test_ticks_sit_at_the_measured_lengths():
    fig, ax = plt.subplots()
    ax.set_xscale("log", base=2)
    sp._length_ticks(ax, {1024, 8192, 16384, 32768})
    assert list(ax.get_xticks()) == [1024, 8192, 16384, 32768]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1k", "8k", "16k", "32k"]
    plt.close(fig)


def test_no_moe_figure_without_an_moe_model(tmp_path):
    dense = run_sweep(H100, REF, nodes=1, gpus_per_node=8, models=("llama-3.1-8b",), workloads=("chat-1k/1k",))
    names = [p.name for p in sp.write_figures(dense, tmp_path / "dense")]
    assert "moe_strategies.png" not in names and not (tmp_path / "dense" / "moe_strategies.png").exists()
    assert names == ["reasoning_cliff.png", "capacity_trap.png", "tp_scaling.png"]
    moe = run_sweep(H100, REF, nodes=1, gpus_per_node=8, models=("qwen3-30b-a3b",), workloads=("chat-1k/1k",))
    assert sp._has_moe(moe) and not sp._has_moe(dense)


def test_legends_stay_off_the_data(tmp_path, monkeypatch):
    """Every legend drawn lies in a panel with no data, or outside the axes it describes."""
    pts = run_sweep(H100, REF, nodes=1, gpus_per_node=8, models=("llama-3.1-8b", "qwen2.5-32b"),
                    workloads=("chat-1k/1k", "reasoning-1k/32k"))
    figures = []
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))
    sp.reasoning_cliff(pts, tmp_path / "a.png")
    sp.tp_scaling(pts, tmp_path / "b.png")
    monkeypatch.setattr(plt, "close", close)
    assert len(figures) == 2
    for fig in figures:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            leg = ax.get_legend()
            if leg is None:
                continue
            if not ax.lines and not ax.collections:
                continue  # a free panel that holds only the legend
            box, area = leg.get_window_extent(renderer), ax.get_window_extent(renderer)
            assert box.x0 >= area.x1 or box.y1 <= area.y0 or box.x1 <= area.x0 or box.y0 >= area.y1
        plt.close(fig)
