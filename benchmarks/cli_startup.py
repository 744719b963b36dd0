"""Start-up time of the command line: what a user waits for `--help`, `--version` and a shell
completion, which import no numpy, pydantic or solver (the commands import them when they run).

Run: python benchmarks/cli_startup.py   (median of 7 runs each, in seconds, Python start-up included)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

CASES = {
    "python -c pass (floor)": ([sys.executable, "-c", "pass"], {}),
    "parasearch --help": ([sys.executable, "-m", "parasearch", "--help"], {}),
    "parasearch --version": ([sys.executable, "-m", "parasearch", "--version"], {}),
    "completion of `parasearch sea`": ([sys.executable, "-m", "parasearch"],
                                       {"_PARASEARCH_COMPLETE": "complete_bash", "COMP_WORDS": "parasearch sea",
                                        "COMP_CWORD": "1"}),
}


def main() -> None:
    print(f"{'command':34s} {'median s':>9s} {'min s':>7s}")
    for name, (cmd, env) in CASES.items():
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            subprocess.run(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, check=False)
            times.append(time.perf_counter() - t0)
        print(f"{name:34s} {statistics.median(times):9.2f} {min(times):7.2f}")


if __name__ == "__main__":
    main()
