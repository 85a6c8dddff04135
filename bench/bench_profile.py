"""Where the time of the full-scale storyboard goes: CPU seconds per function (cProfile with
the process CPU clock, so figures hold on a shared machine), the numba kernels being single
calls. The run is in this process after a warm-up (JIT cache loaded).

    python bench/bench_profile.py [--scale 1] [--duration S] [--policy v6.12] [--top 15]
                                  [--sort self|cum]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from _common import page_ops, peak_rss_mib, scaled_scenario, warm_up

from reclaimsim.engine import Simulation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--duration", type=float, default=None)
    ap.add_argument("--policy", default="v6.12")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument(
        "--sort", choices=["self", "cum"], default="self", help="own CPU time or cumulative"
    )
    args = ap.parse_args()
    warm_up()
    sc = scaled_scenario(args.scale)
    if args.duration is not None:
        sc = sc.model_copy(update={"duration_s": args.duration})
    prof = cProfile.Profile(time.process_time)
    w0, c0 = time.perf_counter(), time.process_time()
    prof.enable()
    sim = Simulation(sc, args.policy).run()
    prof.disable()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    ops = page_ops(sim.k.vmstat.snapshot(sim.k))
    print(
        f"{args.policy} 1/{args.scale}: sim {sim.k.now:.0f} s, wall {wall:.1f} s, CPU {cpu:.1f} s, "
        f"peak RSS {peak_rss_mib():.0f} MiB, page ops {ops['total']:,} ({ops})"
    )
    st = pstats.Stats(prof)
    col = 3 if args.sort == "cum" else 2
    rows = sorted(st.stats.items(), key=lambda kv: -kv[1][col])[: args.top]  # type: ignore[attr-defined]
    print(f"{'CPU s':>8} {'share':>6} {'cum s':>8} {'calls':>9}  function")
    for (path, line, fn), (_cc, nc, tt, ct, _callers) in rows:
        where = path.rsplit("reclaimsim/", 1)[-1] if "reclaimsim/" in path else path
        print(f"{tt:8.2f} {tt / cpu:6.1%} {ct:8.2f} {nc:9d}  {where}:{line}({fn})")


if __name__ == "__main__":
    main()
