"""The table of placement-space sizes in docs/placement.md, one row per shipped problem and pool.

Run: python scripts/placement_counts.py          (prints the table)
     python scripts/placement_counts.py --write  (rewrites it in docs/placement.md)

Shapes are the valid (tp, pp, ep, attn_dp) that fit the pool (at least one replica); placements
are what exhaustive search and Optuna search: shapes x batch caps x replica counts (only a
problem with an arrival rate searches the replica count).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from parasearch.space.enumerate import enumerate_space
from parasearch.spec import load_problem

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "placement.md"
BEGIN, END = "<!-- counts:begin -->", "<!-- counts:end -->"


def table() -> str:
    lines = ["| problem | pool | GPUs | shapes | placements |", "|---|---|---:|---:|---:|"]
    for f in sorted((ROOT / "problems").glob("*.yaml")):
        problem = load_problem(f)
        for pool in problem.pools:
            sp = enumerate_space(problem, pool)
            lay = sp.layout
            shapes = len(np.unique(np.stack([lay.tp, lay.pp, lay.ep, lay.attn_dp.astype(np.int64)], axis=1), axis=0)) \
                if len(sp) else 0
            gpus = f"{pool.nodes}x{pool.gpus_per_node}"
            lines.append(f"| {f.stem} | {pool.name} | {gpus} | {shapes:,} | {len(sp):,} |")
    return "\n".join(lines)


def current_section(text: str) -> str:
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def main() -> None:
    t = table()
    if "--write" in sys.argv:
        text = DOC.read_text()
        head, rest = text.split(BEGIN, 1)
        DOC.write_text(head + BEGIN + "\n" + t + "\n" + END + rest.split(END, 1)[1])
    else:
        print(t)


if __name__ == "__main__":
    main()
