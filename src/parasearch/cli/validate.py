"""`parasearch validate`: the oracle next to measurements, row by row and per category.

Three kinds of input: whole-model step times (hardware,model,phase,batch,context,step_time_s,...),
published serving throughput (the columns of data/published/throughput.csv), each row run with
its own engine profile, and the results of a deployment's bench.sh (vLLM, SGLang or trtllm-bench
JSON) with the plan.json they measured.
"""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from ..errors import ParasearchError
from ._common import err, fmt_s, out, print_json, write_file

SPLITS = ("all", "fit", "check", "skip")

MAX_TABLE_ROWS = 200


def validate(
    files: list[str] = typer.Argument(..., metavar="FILE...",
                                      help="Step times (hardware,model,phase,batch,context,step_time_s,...), "
                                           "published throughput (the columns of data/published/throughput.csv), "
                                           "or benchmark results of a deployment (JSON files or folders; "
                                           "each with the plan.json beside or above it)."),
    engine: Optional[str] = typer.Option(None, help="Step-time rows without an engine column: this engine "
                                         "(default: reference, the PyTorch harness the shipped calibration data "
                                         "come from). Benchmark results: predict with this profile instead of the "
                                         "plan's (e.g. one `calibrate` fitted). Throughput rows use their own "
                                         "engine column."),
    plan: Optional[str] = typer.Option(None, help="Benchmark results: the plan.json they measured (default: "
                                       "the plan.json next to each result or in a folder above it)."),
    calibration: Optional[str] = typer.Option(None, help="Calibration profile applied to rows of its hardware."),
    split: str = typer.Option("all", help="Throughput rows: all, fit (rows the shipped profiles were fitted on) "
                              "or check (never fitted; data/published/README.md says which is which)."),
    summary: bool = typer.Option(False, "--summary", help="Throughput rows: only the per-category table."),
    bands: Optional[str] = typer.Option(None, help="Throughput rows: write the error-band table (check rows) here."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Compare estimates with measurements: per-row ratios, then the median and spread per category
    (engine, GPU family, dense/MoE, layout kind) for throughput, or median and max error for step times."""
    from ..calibration.published import looks_published

    if split not in SPLITS:
        raise ParasearchError(f"--split {split!r} is not a split", hint="allowed: " + ", ".join(SPLITS))
    results = [is_bench_result(f) for f in files]
    if any(results):
        if not all(results):
            raise ParasearchError("give benchmark results (JSON files or folders) or CSV files, not both")
        if bands or split != "all" or summary or calibration:
            raise ParasearchError("--bands, --split, --summary and --calibration apply to CSV files only")
        _bench(files, plan, engine, as_json)
        return
    if plan:
        raise ParasearchError("--plan applies to benchmark results")
    engine = engine or "reference"
    kinds = {looks_published(f) for f in files}
    if len(kinds) > 1:
        raise ParasearchError("give either step-time CSVs or published-throughput CSVs, not both")
    if kinds == {True}:
        _throughput(files, calibration, split, summary, bands, as_json)
    else:
        if bands or split != "all" or summary:
            raise ParasearchError("--bands, --split and --summary apply to published-throughput CSVs only")
        for f in files:
            _steps(f, engine, calibration, as_json)


def is_bench_result(path: str) -> bool:
    """A folder, or a .json/.jsonl file: benchmark results (CSV files are the other formats).

    A folder named *.csv is read as a CSV so that the user hears it is a directory."""
    from pathlib import Path

    p = Path(path)
    return p.suffix in (".json", ".jsonl") or (p.is_dir() and p.suffix != ".csv")


def bench_rows(files: list[str], plan: str | None, engine: str | None):
    """(measurements with plans, published-style rows, predictions {output_tokens_per_s, ttft_s,
    tpot_s}, the profile names used) for benchmark results."""
    from ..calibration.bench_results import collect, to_row
    from ..calibration.published import load_inputs, predict_published
    from ..catalog.engines import load_engine
    from ..catalog.hardware import load_hardware
    from ..catalog.models import load_model

    found = collect(files, plan)
    rows = [to_row(m, p) for m, p, _ in found]
    profiles = [engine or p["engine"].get("profile") or p["engine"]["framework"] for _, p, _ in found]
    engines = {name: load_engine(name) for name in dict.fromkeys(profiles)}
    for name, e in engines.items():
        wrong = {p["engine"]["framework"] for (_, p, _), n in zip(found, profiles) if n == name} - {e.framework}
        if wrong:
            raise ParasearchError(f"--engine {name} configures {e.framework}, the results measured {', '.join(wrong)}")
    by_row = dict(zip(map(id, rows), profiles))
    models, hws, _ = load_inputs(rows, files[0], load_model, load_hardware, lambda name: None)
    pred = predict_published(rows, models, hws, engines, lambda r: by_row[id(r)])
    return found, rows, pred, profiles


def _bench(files: list[str], plan: str | None, engine: str | None, as_json: bool) -> None:
    import numpy as np  # the CLI imports numpy only when a command runs

    from pathlib import Path

    from ..report.fmt import compact, duration
    from ..report.table import fitted_table

    found, rows, pred, profiles = bench_rows(files, plan, engine)
    out_rows = []
    for i, ((m, p, plan_path), r, profile) in enumerate(zip(found, rows, profiles)):
        def ratio(predicted, measured):
            return float(predicted / measured) if measured and np.isfinite(predicted) else None
        out_rows.append({
            "result": m.file, "line": m.line, "tool": m.tool, "plan": plan_path, "engine": r.engine,
            "engine_version": r.engine_version, "profile": profile, "placement": p["placement"]["placement"],
            "replicas_measured": r.dp, "concurrency": m.concurrency or (p.get("benchmark") or {}).get("concurrency"),
            "input_tokens": m.input_tokens, "output_tokens": m.output_tokens,
            "measured": {"output_tokens_per_s": m.output_tokens_per_s, "ttft_s": m.ttft_s, "tpot_s": m.tpot_s},
            "predicted": {k: float(pred[k][i]) if np.isfinite(pred[k][i]) else None
                          for k in ("output_tokens_per_s", "ttft_s", "tpot_s")},
            "ratio": {"output_tokens_per_s": ratio(pred["output_tokens_per_s"][i], m.output_tokens_per_s),
                      "ttft_s": ratio(pred["ttft_s"][i], m.ttft_s), "tpot_s": ratio(pred["tpot_s"][i], m.tpot_s)},
        })
    summary = {k: float(np.median(v)) if (v := [r["ratio"][k] for r in out_rows if r["ratio"][k] is not None])
               else None for k in ("output_tokens_per_s", "ttft_s", "tpot_s")}
    if as_json:
        print_json({"results": out_rows, "median_ratio": summary})
        return
    say = lambda text: out.print(text, markup=False, highlight=False)  # noqa: E731
    say("predicted / measured, each benchmark result against the plan it measured")
    cols = [("#", "right"), ("placement", "left"), ("conc", "right"), ("tok/s\nmeas", "right"),
            ("tok/s\npred", "right"), ("pred/\nmeas", "right"), ("TTFT\nmeas", "right"), ("TTFT\npred", "right"),
            ("pred/\nmeas", "right"), ("TPOT\nmeas", "right"), ("TPOT\npred", "right"), ("pred/\nmeas", "right")]
    fmt_r = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
    cells = [[str(k), r["placement"] + (" (1 replica)" if r["replicas_measured"] == 1 and "DP" in r["placement"] else ""),
              str(r["concurrency"] or "-"),
              compact(r["measured"]["output_tokens_per_s"]), compact(r["predicted"]["output_tokens_per_s"]),
              fmt_r(r["ratio"]["output_tokens_per_s"]), duration(r["measured"]["ttft_s"]),
              duration(r["predicted"]["ttft_s"]), fmt_r(r["ratio"]["ttft_s"]), duration(r["measured"]["tpot_s"]),
              duration(r["predicted"]["tpot_s"]), fmt_r(r["ratio"]["tpot_s"])] for k, r in enumerate(out_rows, 1)]
    out.print(fitted_table(cols, cells, out.width, wrap=("placement",)))
    for k, r in enumerate(out_rows, 1):
        version = f" {r['engine_version']}" if r["engine_version"] else ""
        say(f"{k}. {Path(r['result']).name}: {r['tool']}, {r['engine']}{version}")
    for name, key in (("plan", "plan"), ("profile", "profile")):
        values = list(dict.fromkeys(r[key] for r in out_rows))
        say(f"{name}{'s' if len(values) > 1 else ''}: " + ", ".join(values))
    say("median predicted/measured: " + ", ".join(f"{name} {fmt_r(summary[k])}" for name, k in
                                                  (("throughput", "output_tokens_per_s"), ("TTFT", "ttft_s"),
                                                   ("TPOT", "tpot_s"))))


def _hardware_loader(calibration: str | None):
    from ..calibration.profile import load_profile
    from ..catalog.hardware import load_hardware

    profile = load_profile(calibration) if calibration else None

    def load(name: str):
        hw = load_hardware(name)
        if profile and profile[0] in (None, hw.name):
            hw = hw.with_efficiency(profile[1])
        return hw
    return load, profile


def _steps(file: str, engine: str, calibration: str | None, as_json: bool) -> None:
    import numpy as np  # the CLI imports numpy only when a command runs

    from ..calibration.whole_model import estimate_rows, load_row_inputs, read_rows
    from ..catalog.engines import load_engine

    rows = read_rows(file)
    hw_loader, profile = _hardware_loader(calibration)
    if profile and profile[0] and not any(r.hardware == profile[0] for r in rows):
        raise ParasearchError(f"the profile is for '{profile[0]}', which no row of {file} uses")
    models, hws, engines = load_row_inputs(rows, file, hw_loader, lambda e: load_engine(e or engine))
    est = estimate_rows(rows, models, hws, engines, file)
    meas = np.array([r.step_time_s for r in rows])
    pct = (est / meas - 1.0) * 100.0
    summary = {"count": len(rows), "median_abs_pct_error": float(np.median(np.abs(pct))),
               "max_abs_pct_error": float(np.max(np.abs(pct))), "mean_pct_error": float(np.mean(pct))}
    if as_json:
        print_json({"rows": [{"line": r.line, "hardware": r.hardware, "model": r.model, "phase": r.phase,
                              "batch": r.batch, "context": r.context, "tp": r.tp, "pp": r.pp, "ep": r.ep,
                              "engine": engines[r.engine].name, "measured_s": r.step_time_s,
                              "estimated_s": float(e), "pct_error": float(p)}
                             for r, e, p in zip(rows, est, pct)], **summary})
        return
    shown = np.arange(len(rows))
    if len(rows) > MAX_TABLE_ROWS:  # a terminal cannot show them all; the largest errors matter most
        shown = np.sort(np.argsort(-np.abs(pct), kind="stable")[:MAX_TABLE_ROWS])
    t = Table(title=f"validate {file}", title_justify="left")
    for col in ("hardware", "model", "phase", "batch", "context", "placement", "measured", "estimated", "error"):
        t.add_column(col, justify="right" if col not in ("hardware", "model", "phase") else "left")
    for i in shown:
        r, e, p = rows[i], est[i], pct[i]
        color = "green" if abs(p) <= 10 else ("yellow" if abs(p) <= 25 else "red")
        t.add_row(r.hardware, r.model, r.phase, str(r.batch), str(r.context), f"tp{r.tp} pp{r.pp} ep{r.ep}",
                  fmt_s(r.step_time_s), fmt_s(float(e)), f"[{color}]{p:+.1f}%[/]")
    out.print(t)
    if len(shown) < len(rows):
        out.print(f"(the {len(shown)} rows with the largest errors of {len(rows):,}; --json lists every row)")
    out.print(f"median |error| {summary['median_abs_pct_error']:.1f}%   max |error| {summary['max_abs_pct_error']:.1f}%"
              f"   mean error {summary['mean_pct_error']:+.1f}%  ({len(rows)} rows)")


def _throughput(files: list[str], calibration: str | None, split: str, summary: bool, bands_out: str | None,
                as_json: bool) -> None:
    import numpy as np  # the CLI imports numpy only when a command runs

    from ..calibration import bands as B
    from ..calibration.published import (estimate_published, load_inputs, profile_for, read_published, split_of,
                                         unsupported)
    from ..catalog.engines import load_engine
    from ..catalog.models import load_model

    hw_loader, _ = _hardware_loader(calibration)
    rows, est, where = [], [], []
    skipped: dict[str, int] = {}
    for f in files:
        rs = read_published(f)
        models, hws, engines = load_inputs(rs, f, load_model, hw_loader, load_engine)
        e = estimate_published(rs, models, hws, engines, f)
        for i, reason in unsupported(rs, models).items():
            skipped[reason] = skipped.get(reason, 0) + 1
        for r, x in zip(rs, e):
            if np.isfinite(x) and (split == "all" or split_of(r) == split):
                rows.append(r)
                est.append(float(x))
                where.append((f, hws[r.hardware].family, "MoE" if models[r.model].is_moe else "dense"))
    if not rows:
        raise ParasearchError(f"no {split} rows to validate" if split != "all" else "no row could be estimated")
    est_a = np.array(est)
    ratio = est_a / np.array([r.measured for r in rows])
    keys = [(profile_for(r), fam, moe, r.layout_kind) for r, (_, fam, moe) in zip(rows, where)]
    table = B.build(list(zip(keys, ratio)))
    categories = _categories(table)
    overall = _stats(ratio)
    if bands_out:
        check = [(k, x) for k, x, r in zip(keys, ratio, rows) if split_of(r) == "check"]
        write_file(bands_out, "the error bands", lambda p: open(p, "w").write(B.to_csv(B.build(check))))
        err.print(f"wrote {bands_out} ({len(check)} check rows)")
    for reason, n in skipped.items():
        err.print(f"skipped {n} row(s) parasearch cannot lay out: {reason}")
    if as_json:
        print_json({"rows": [{"file": f, "line": r.line, "source": r.source, "engine": r.engine,
                              "profile": profile_for(r),
                              "engine_version": r.engine_version, "model": r.model, "hardware": r.hardware,
                              "family": fam, "moe": moe == "MoE", "layout": r.layout_kind, "tp": r.tp, "pp": r.pp,
                              "ep": r.ep, "dp": r.dp, "attn_dp": r.attn_dp, "input_tokens": r.input_tokens,
                              "output_tokens": r.output_tokens, "measured": r.measured, "predicted": e,
                              "ratio": float(x), "split": split_of(r)}
                             for r, e, x, (f, fam, moe) in zip(rows, est, ratio, where)],
                    "categories": categories, "overall": overall})
        return
    if not summary:
        from ..report.fmt import compact
        from ..report.table import fitted_table
        from ..space.label import placement_label

        cells = [[str(r.line), profile_for(r), r.model, r.hardware,
                  placement_label(r.tp, r.pp, r.ep, r.dp, r.attn_dp), f"{r.input_tokens:g}/{r.output_tokens:g}",
                  compact(r.measured), compact(e), f"{x:.2f}"] for r, e, x in zip(rows, est, ratio)]
        columns = [("line", "right"), ("profile", "left"), ("model", "left"), ("GPU", "left"), ("layout", "left"),
                   ("in/out", "right"), ("measured\ntok/s", "right"), ("predicted\ntok/s", "right"),
                   ("ratio", "right")]
        out.print(f"predicted / measured output tokens/s, each row with its engine's profile ({split} rows; "
                  "--json says each row's half)")
        out.print(fitted_table(columns, cells, out.width, wrap=("model", "layout")))
    _category_table(categories)
    out.print(f"all rows: median ratio {overall['median_ratio']:.2f}, median |error| {overall['median_error']:.1%}, "
              f"{overall['within_25']:.0%} within ±25%  ({overall['rows']} rows, split: {split})")


def _stats(ratio) -> dict:
    import numpy as np

    err = np.abs(ratio - 1.0)
    return {"rows": int(ratio.size), "median_ratio": float(np.median(ratio)), "median_error": float(np.median(err)),
            "p10_ratio": float(np.percentile(ratio, 10)), "p90_ratio": float(np.percentile(ratio, 90)),
            "within_25": float(np.mean(err <= 0.25))}


def _categories(table: list[dict]) -> list[dict]:
    """The one-dimensional categories (engine, GPU family, dense/MoE, layout) from the band rows."""
    from ..calibration.bands import ANY, KEYS

    out = []
    for dim in KEYS:
        for r in table:
            if r[dim] != ANY and all(r[k] == ANY for k in KEYS if k != dim):
                out.append({"dimension": dim, "value": r[dim], "rows": r["rows"], "median_ratio": r["median_ratio"],
                            "error_68": r["error_68"], "error_90": r["error_90"]})
    return out


def _category_table(categories: list[dict]) -> None:
    from ..report.table import fitted_table

    cells = [[c["dimension"], c["value"], str(c["rows"]), f"{c['median_ratio']:.2f}", f"±{c['error_68']:.0%}",
              f"±{c['error_90']:.0%}"] for c in categories]
    columns = [("category", "left"), ("value", "left"), ("rows", "right"), ("median\nratio", "right"),
               ("68% of rows\nwithin", "right"), ("90% of rows\nwithin", "right")]
    out.print("per category (engine profile, GPU family, dense/MoE, layout kind)")
    out.print(fitted_table(columns, cells, out.width))
