"""VM-size storyboard (scenarios/vm-2g1g-hopeless.toml): wall seconds (median of N runs),
simulated seconds per wall second and kernel page operations per wall second, per policy.

    python bench/bench_storyboard.py [-n 5] [--policy v6.12 --policy v6.18 ...] [--lru mglru]

``--lru mglru`` runs the same storyboard with multi-gen LRU (``machine.lru``): ~17 s a run,
most of it the direct-reclaim rotations of MGLRU under this storyboard (docs/performance.md,
"MGLRU"), so use ``-n 1``.
"""

from __future__ import annotations

import argparse

from _common import (
    VMSIZE,
    fmt_transitions,
    load_scenario,
    median,
    page_ops,
    run_once,
    transitions,
    with_lru,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=5, help="runs per policy (median reported)")
    ap.add_argument("--policy", action="append", help="default: v6.12, v6.18, byungchul-v1")
    ap.add_argument("--lru", choices=["classic", "mglru"], default=None, help="machine.lru")
    args = ap.parse_args()
    policies = args.policy or ["v6.12", "v6.18", "byungchul-v1"]
    sc = load_scenario(VMSIZE)
    sc = with_lru(sc, args.lru)
    # load/compile the numba kernels outside the timings (MGLRU: its first 60 s, which
    # reach every kernel, rather than a whole run of minutes)
    warm = sc if args.lru != "mglru" else sc.model_copy(update={"duration_s": 60.0})
    run_once(warm, policies[0])
    print(
        f"{'policy':14s} {'wall_s(med)':>11s} {'min':>6s} {'max':>6s} {'sim_s':>6s} "
        f"{'sim_s/wall_s':>12s} {'page_ops':>10s} {'page_ops/s':>11s}"
    )
    for pol in policies:
        walls = []
        for _ in range(args.n):
            s, wall, sim = run_once(sc, pol)
            walls.append(wall)
        ops = page_ops(sim.k.vmstat.snapshot(sim.k))
        w = median(walls)
        print(
            f"{pol:14s} {w:11.3f} {min(walls):6.3f} {max(walls):6.3f} {s['sim_seconds']:6.1f} "
            f"{s['sim_seconds'] / w:12.1f} {ops['total']:10d} {ops['total'] / w:11.3g}"
        )
        print(f"{'':14s} {fmt_transitions(transitions(s))}")


if __name__ == "__main__":
    main()
