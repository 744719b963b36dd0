"""Does `ilp.time_limit_s` keep its word on a large fleet? The generated 32-pool, 12,648-GPU
DeepSeek-R1 problem (tests/search/_fleet.py) is planned through the CLI with time limits of 2 and
5 s, for each objective and solver; the table shows the exit code (never 4: the problem is
feasible), the plan's status and gap, the served rate, and the whole run's wall time (Python
start-up included) against the bound of 3 x the limit + 15 s.

Run: python benchmarks/ilp_limits.py [--limits 2,5] [--solvers cbc,highs] [--objectives cost,goodput]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.search._fleet import fleet_problem  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limits", default="2,5")
    ap.add_argument("--solvers", default="cbc,highs")
    ap.add_argument("--objectives", default="cost,goodput")
    args = ap.parse_args()
    print(f"{'objective':9s} {'solver':6s} {'limit s':>7s} {'exit':>4s} {'status':>12s} {'gap':>7s} "
          f"{'served req/s':>12s} {'GPUs':>6s} {'wall s':>7s} {'bound s':>7s} {'within':>6s}")
    with tempfile.TemporaryDirectory() as tmp:
        for objective in args.objectives.split(","):
            for solver in args.solvers.split(","):
                for limit in (float(x) for x in args.limits.split(",")):
                    f = Path(tmp) / "fleet.yaml"
                    f.write_text(fleet_problem(objective=objective, time_limit_s=limit, solver=solver))
                    t0 = time.perf_counter()
                    p = subprocess.run([sys.executable, "-m", "parasearch", "search", str(f), "--json"],
                                       capture_output=True, text=True)
                    wall = time.perf_counter() - t0
                    bound = 3 * limit + 15
                    plan = json.loads(p.stdout) if p.returncode == 0 else {}
                    gap = plan.get("gap")
                    print(f"{objective:9s} {solver:6s} {limit:7g} {p.returncode:4d} {plan.get('status', '-'):>12s} "
                          f"{'-' if gap is None else f'{gap:.2%}':>7s} {plan.get('served_rate', 0):12.1f} "
                          f"{plan.get('gpus_used', 0):6d} {wall:7.1f} {bound:7.0f} {str(wall <= bound):>6s}")
                    if p.returncode:
                        print("   ", p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "")


if __name__ == "__main__":
    main()
