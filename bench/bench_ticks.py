"""The cost of an engine step in which nothing happens: a tiny tiered machine (64 MiB DRAM +
32 MiB CXL, NUMA balancing in tiering mode) with one task looping over its 8 MiB hot set in
DRAM for 600 simulated s (60,000 steps of 10 ms): kswapd sleeps, no hint fault is ever due
(every page is on the top tier), the script waits. What is left is the step's own Python:
the script check, the runnable tasks' CPU accounting (task_tick_numa), the hint-fault due
check, the kswapds' timers and the sample clock. Prints the median wall per step and the
cost of each call a step makes.

    python bench/bench_ticks.py [-n 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import timeit
from typing import Any

from _common import Simulation, scenario_from_dict

from reclaimsim.kernel.numa_balancing import handle_hint_faults


def idle_machine(script: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": "idle-steps",
        "duration_s": 600,
        "machine": {
            "nodes": [
                {
                    "id": 0,
                    "cpus": 1,
                    "size": "64MiB",
                    "hmat": {"latency_ns": 100, "bandwidth_MBps": 20480},
                },
                {
                    "id": 1,
                    "cpus": 0,
                    "size": "32MiB",
                    "hmat": {"latency_ns": 300, "bandwidth_MBps": 5120},
                },
            ],
            "swap": 0,
        },
        "sysctl": {"numa_balancing": 2, "demotion_enabled": True},
        "workloads": {"w": {"hot": "8MiB", "cold": "8MiB"}},
        "script": script,
    }


SCRIPTS = {
    "sleep_s": [{"start": "w"}, {"sleep_s": 600}],
    "repeat until expr": [
        {"start": "w"},
        {"until": "node0.unreclaimable", "max_s": 600, "repeat": [{"sleep_s": 5}]},
    ],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=5, help="runs per script (median reported)")
    args = ap.parse_args()
    for name, script in SCRIPTS.items():
        sc = scenario_from_dict(idle_machine(script))
        Simulation(sc, "v6.12").run()  # load the numba kernels outside the timings
        walls = []
        for _ in range(args.n):
            t0 = time.perf_counter()
            sim = Simulation(sc, "v6.12").run()
            walls.append(time.perf_counter() - t0)
        steps = round(sim.k.now / sc.tick_s)
        med = statistics.median(walls)
        print(
            f"{name:18s} {steps} steps: wall {med:.3f} s (median of {args.n}), "
            f"{med / steps * 1e6:.2f} us per step; hint faults "
            f"{sim.k.vmstat.c.get('numa_hint_faults', 0)}, kswapd runs "
            f"{sum(pg.kswapd.runs for pg in sim.k.pgdats)}"
        )
    # each call of a step on the end state of the last run
    k, p = sim.k, sim.procs[0]
    ks = k.pgdats[0].kswapd
    calls = {
        "advance_script": sim.advance_script,
        "runnable": sim.runnable,
        "Process.step (running)": lambda: p.step(k, k.tick_s),
        "handle_hint_faults (none due)": lambda: handle_hint_faults(k, k.now, sim.task_of_region),
        "Kswapd.advance (asleep)": lambda: ks.advance(k.now),
    }
    for name, fn in calls.items():
        n = 100_000
        print(f"  {name:30s} {timeit.timeit(fn, number=n) / n * 1e6:6.3f} us")


if __name__ == "__main__":
    main()
