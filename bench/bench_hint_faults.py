"""CPU cost per NUMA hinting fault of ``handle_hint_faults`` by the number of pending runs
(``change_prot_numa`` batches) it merges, with the run heads merged by a scan or by the
winner tree (``numa_balancing.MERGE_TREE_MIN_RUNS``). The machine is small (its page state
stays in cache), so this is the handler's own work and the merge, not DRAM misses.

    python bench/bench_hint_faults.py [--runs 1,4,8,16,26] [--faults 260000] [-n 3]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

from _common import warm_up

import reclaimsim.kernel.numa_balancing as nb
from reclaimsim.engine import Simulation
from reclaimsim.kernel.page_alloc import GFP_HIGHUSER_MOVABLE, alloc_pages
from reclaimsim.scenario import WorkloadSpec, scenario_from_dict
from reclaimsim.workloads import Process

MACHINE = {
    "name": "hint-fault-bench",
    "duration_s": 60,
    "machine": {
        "nodes": [
            {"id": 0, "cpus": 1, "size": "4GiB",
             "hmat": {"latency_ns": 100, "bandwidth_MBps": 20480}},
            {"id": 1, "cpus": 0, "size": "2GiB",
             "hmat": {"latency_ns": 300, "bandwidth_MBps": 5120}},
        ],
        "swap": 0,
    },
    "sysctl": {"numa_balancing": 2, "demotion_enabled": True},
    "workloads": {},
    "script": [{"sleep_s": 1}],
}  # fmt: skip


def one(runs: int, faults: int, tree_min_runs: int) -> float:
    """ns of CPU per fault: ``faults`` pages on node 1 protected in ``runs`` scans 10 ms
    apart, then every fault handled in one call."""
    nb.MERGE_TREE_MIN_RUNS = tree_min_runs
    k = Simulation(scenario_from_dict(MACHINE), "v6.12").k
    p = Process(k, "W", 1, WorkloadSpec(hot=faults * 4096, access="busy"), {})
    r = p.hot_region
    assert r is not None
    assert alloc_pages(k, faults, GFP_HIGHUSER_MOVABLE, 1, [1], r).got == faults
    p.touch_order.clear()
    p._become_ready(k)
    k.regions.rate[r] = 1.0
    per = faults // runs
    for i in range(runs):
        nb.change_prot_numa(k, p, r, i * per, (i + 1) * per)
        k.now += 0.01
    n = len(k.numa_faults)
    c0 = time.process_time()
    nb.handle_hint_faults(k, math.inf, {r: p})
    return (time.process_time() - c0) / n * 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", default="1,4,8,16,26")
    ap.add_argument("--faults", type=int, default=260_000)
    ap.add_argument("-n", type=int, default=3)
    args = ap.parse_args()
    warm_up()
    default = nb.MERGE_TREE_MIN_RUNS
    print(f"ns per fault (median of {args.n}); the handler uses the tree above {default} runs")
    print(f"{'runs':>5} {'scan':>7} {'tree':>7}")
    for runs in (int(x) for x in args.runs.split(",")):
        scan = statistics.median(one(runs, args.faults, 1 << 30) for _ in range(args.n))
        tree = statistics.median(one(runs, args.faults, 0) for _ in range(args.n))
        print(f"{runs:5d} {scan:7.1f} {tree:7.1f}")
    nb.MERGE_TREE_MIN_RUNS = default


if __name__ == "__main__":
    main()
